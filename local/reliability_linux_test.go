//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/wiretest"
)

// sockstat is the TCP line of /proc/net/sockstat: sockets orphaned by their
// process (closed, still sending what was queued), and the pages of memory
// all TCP sockets hold. Both count the whole network namespace, so the
// tests below allow for other packages' tests running beside them.
type sockstat struct{ orphans, memPages int }

func readSockstat(t *testing.T) sockstat {
	t.Helper()
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "TCP: "); ok {
			var s sockstat
			var inuse, tw, alloc int
			if _, err := fmt.Sscanf(rest, "inuse %d orphan %d tw %d alloc %d mem %d", &inuse, &s.orphans, &tw, &alloc, &s.memPages); err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return s
		}
	}
	t.Fatalf("no TCP line in /proc/net/sockstat:\n%s", b)
	return sockstat{}
}

// stallStream opens /events with 64 KiB events every millisecond on a
// connection with a small receive buffer, and never reads it.
func stallStream(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tcp := c.(*net.TCPConn)
	tcp.SetReadBuffer(4096)
	if _, err := fmt.Fprintf(c, "GET /events?interval=1ms&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return tcp
}

// readUntilFailure reads c until a read fails and returns how much it read
// and the error; io.EOF means a normal close, ECONNRESET a reset.
func readUntilFailure(c net.Conn, timeout time.Duration) (int64, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	n, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	return n, err
}

// TestDroppedStalledReadersFreeKernelMemory: 200 clients that stop reading
// 64 KiB events are dropped at the write timeout with a TCP reset, which
// frees what their sockets had queued at once: no orphan sockets, and TCP
// memory back to its idle level within 2 s. A normal close would leave
// about 4 MB queued per client for minutes, and the client reading it.
func TestDroppedStalledReadersFreeKernelMemory(t *testing.T) {
	for _, detach := range []string{"-detach=true", "-detach=false"} {
		t.Run(detach, func(t *testing.T) {
			const clients = 200
			const writeTimeout = 500 * time.Millisecond
			r := startRunner(t, []string{detach, "-write-timeout", writeTimeout.String(), "-max-streams", "1000"})
			addr := strings.TrimPrefix(r.url, "http://")
			idle := readSockstat(t)

			conns := make([]*net.TCPConn, clients)
			for i := range conns {
				conns[i] = stallStream(t, addr)
			}
			// Each is dropped between half and all of the write timeout
			// after its buffers fill; then a client that reads gets what
			// was in flight and the reset, not megabytes more.
			time.Sleep(2 * writeTimeout)
			for i, c := range conns {
				n, err := readUntilFailure(c, 5*time.Second)
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("client %d: read %d bytes, then %v; want a connection reset", i, n, err)
				}
				if n > 1<<20 {
					t.Errorf("client %d read %d bytes after it was dropped, want what was in flight (< 1 MiB)", i, n)
				}
				c.Close()
			}
			// Allow 10% over idle, and 1 MiB for other tests' sockets.
			limit := idle.memPages + idle.memPages/10 + 256
			var now sockstat
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				now = readSockstat(t)
				if now.orphans <= idle.orphans && now.memPages <= limit {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("2s after %d stalled clients were dropped: %d orphan sockets and %d pages of TCP memory; idle: %d and %d",
						clients, now.orphans, now.memPages, idle.orphans, idle.memPages)
				}
			}
		})
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// openRawStreams opens n /events?interval=1h streams on raw connections,
// one after the other, and reads each one's first event.
func openRawStreams(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		io.WriteString(c, "GET /events?interval=1h HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %s", i, resp.Status)
		}
		if _, err := wiretest.ReadFrames(resp.Body, 1); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	return conns
}

// TestDepartedClientsFreeSlotsAtOnce: 2,000 clients of silent streams
// (an hour between events, no heartbeats) close their connections. The
// server, which will not write to them for an hour, must notice and free
// their slots and descriptors within 2 s, in the default (detached) mode.
func TestDepartedClientsFreeSlotsAtOnce(t *testing.T) {
	const n = 2000
	r := startRunner(t, []string{"-heartbeat", "0", "-max-streams", fmt.Sprint(n)})
	addr := strings.TrimPrefix(r.url, "http://")
	before := openFDs(t)
	conns := openRawStreams(t, addr, n)
	if during := openFDs(t); during < before+2*n {
		t.Fatalf("%d descriptors with %d streams open, %d before: want the clients' and the server's", during, n, before)
	}
	for _, c := range conns {
		c.Close()
	}
	// The departure watcher holds three descriptors of its own.
	const watcher = 3
	for deadline := time.Now().Add(2 * time.Second); openFDs(t) > before+watcher; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open 2s after %d clients left, %d before", openFDs(t), n, before)
		}
	}
	// Every slot is free again.
	openRawStreams(t, addr, n)
}
