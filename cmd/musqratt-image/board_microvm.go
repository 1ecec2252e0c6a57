//go:build tamago && microvm

package main

import _ "github.com/musqratt/musqratt/board/microvm"
