//go:build !unix

package syslog

import "net"

// peek cannot look at a socket here; alive falls back to a short read.
func peek(net.Conn) (closed, data, ok bool) { return false, false, false }
