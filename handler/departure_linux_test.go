//go:build linux

package handler_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// serveDetachedTCP serves target with h on the server end of a loopback TCP
// connection and returns the client end, after reading the response head
// and first event from it, and the server end.
func serveDetachedTCP(t *testing.T, h http.Handler, target string) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	req := httptest.NewRequest("GET", target, nil)
	h.ServeHTTP(&hijackable{httptest.NewRecorder(), s}, req)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wiretest.ReadFrames(resp.Body, 1); err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestDepartureWatcher: detached streams that will not write for an hour
// end as soon as their clients close or reset the connection, noticed by
// the epoll of the event loops that serve them: no goroutine per stream,
// only the loops, at most one per P.
func TestDepartureWatcher(t *testing.T) {
	const n = 100
	h := handler.New(handler.WithDetachedStreams(), handler.WithInterval(time.Hour), handler.WithHeartbeat(0))
	before := runtime.NumGoroutine()
	clients := make([]*net.TCPConn, n)
	for i := range clients {
		clients[i], _ = serveDetachedTCP(t, h, "/events")
	}
	if got, most := runtime.NumGoroutine()-before, runtime.GOMAXPROCS(0); got < 1 || got > most {
		t.Errorf("%d more goroutines with %d detached streams, want the loops: 1 to %d", got, n, most)
	}
	for i, c := range clients {
		if i%2 == 1 {
			c.SetLinger(0) // a reset rather than a FIN
		}
		c.Close()
	}
	start := time.Now()
	for h.Streams() != 0 {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("Streams() = %d 2s after every client left", h.Streams())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDetachedSendBuffer: a detached stream's socket send buffer is bounded
// to a few frames (64 KiB for small ones; Linux reports twice what was
// set), not left to grow to the megabytes Linux autotunes it to.
func TestDetachedSendBuffer(t *testing.T) {
	h := handler.New(handler.WithDetachedStreams(), handler.WithInterval(time.Hour))
	_, server := serveDetachedTCP(t, h, "/events")
	raw, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var sockErr error
	raw.Control(func(fd uintptr) {
		size, sockErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	if sockErr != nil {
		t.Fatal(sockErr)
	}
	if want := 2 * 64 << 10; size != want {
		t.Errorf("SO_SNDBUF = %d, want %d", size, want)
	}
}
