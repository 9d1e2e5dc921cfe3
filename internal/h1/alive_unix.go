//go:build unix

package h1

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// alive reports whether an idle connection is still open and quiet: a
// non-blocking peek finds neither the upstream's close nor stray bytes.
// net/http learns the same from the reader goroutine each of its
// connections keeps; one system call per reuse is cheaper.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	quiet := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		quiet = err == unix.EAGAIN || err == unix.EWOULDBLOCK
		return true // never wait for the socket to become readable
	})
	return err == nil && quiet
}
