//go:build unix

package main

import "syscall"

// raiseFileLimit lifts the soft open-file limit towards n (one socket per idle client).
func raiseFileLimit(n int) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur >= uint64(n) {
		return
	}
	l.Cur = min(uint64(n), l.Max)
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}
