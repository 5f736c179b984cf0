//go:build unix

package syslog

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peek looks at the socket under conn (a TLS connection's TCP socket)
// without blocking and without consuming anything: closed when the peer
// closed it (end of stream, or an error such as ECONNRESET), data when
// bytes wait to be read. ok is false when conn has no socket to look at.
func peek(conn net.Conn) (closed, data, ok bool) {
	type netConner interface{ NetConn() net.Conn } // *tls.Conn
	if nc, isTLS := conn.(netConner); isTLS {
		conn = nc.NetConn()
	}
	sc, isSock := conn.(syscall.Conn)
	if !isSock {
		return false, false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false, false
	}
	var n int
	var rerr error
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true // never wait for readiness
	})
	switch {
	case err != nil: // the descriptor is closed
		return true, false, true
	case errors.Is(rerr, unix.EAGAIN) || errors.Is(rerr, unix.EINTR):
		return false, false, true
	case rerr != nil:
		return true, false, true
	case n == 0:
		return true, false, true
	}
	return false, true, true
}
