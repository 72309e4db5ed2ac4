package main

import (
	"net"
	"sync/atomic"
)

// resettingListener hands out connections that close with a TCP reset
// (SO_LINGER 0) instead of a normal close when a write on them failed, or
// once reset is called. A normal close of a socket whose client stopped
// reading leaves the kernel holding, and retrying to send, everything still
// queued (up to megabytes) for minutes after the server let go of it; a
// reset frees it at once. Connections that net/http serves itself (HTTP/2,
// and HTTP/1.1 without -detach) need this; detached streams abort their own.
type resettingListener struct {
	*net.TCPListener
	resetAll atomic.Bool // set at the end of the grace period
}

// Accept returns the next connection, wrapped.
func (l *resettingListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return &resettingConn{TCPConn: c, listener: l}, nil
}

// reset makes every connection close with a reset from now on: what is
// still open at the end of the grace period belongs to clients that are
// not reading.
func (l *resettingListener) reset() { l.resetAll.Store(true) }

// A resettingConn is a connection of a resettingListener. It embeds the
// *net.TCPConn so that its other methods (SetLinger, SetWriteBuffer,
// SyscallConn, CloseWrite) stay reachable.
type resettingConn struct {
	*net.TCPConn
	listener    *resettingListener
	writeFailed atomic.Bool
}

func (c *resettingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	if err != nil {
		c.writeFailed.Store(true)
	}
	return n, err
}

// Close closes the connection, with a reset if a write failed or the
// listener says so.
func (c *resettingConn) Close() error {
	if c.writeFailed.Load() || c.listener.resetAll.Load() {
		c.SetLinger(0) //nolint:errcheck // a failed setting leaves a normal close
	}
	return c.TCPConn.Close()
}
