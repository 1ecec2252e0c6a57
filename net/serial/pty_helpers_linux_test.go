package serial

import (
	"os"

	"github.com/musqratt/musqratt/net/serve"
	"golang.org/x/sys/unix"
)

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	unix.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func packetsTo(b *Bind, f []byte) []serve.Packet {
	return []serve.Packet{{Buf: f, Addr: b.Addr()}}
}
