package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/wiretest"
)

// TestStalledReaderDropped opens a stream that fills its connection with
// 64 KiB events and never reads, beside a client that reads. The stalled
// stream must end at its write timeout and free its slot, while the reading
// client's ids continue without a gap.
func TestStalledReaderDropped(t *testing.T) {
	for _, request := range []string{
		"GET /events?interval=1ms&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 32\r\n\r\n{\"interval\":\"1ms\",\"size\":65536}",
	} {
		t.Run(strings.Fields(request)[0], func(t *testing.T) { testStalledReaderDropped(t, request) })
	}
}

func testStalledReaderDropped(t *testing.T, request string) {
	r := startRunner(t, []string{"-max-streams", "2", "-write-timeout", "300ms"})
	addr := strings.TrimPrefix(r.url, "http://")

	reader, err := http.Get(r.url + "/events?interval=10ms")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Body.Close()
	readerDone := make(chan error, 1)
	go func() { readerDone <- readContinuously(reader.Body, 3*time.Second) }()

	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(stalled, request)

	// Both slots are taken until the stalled stream is dropped.
	start := time.Now()
	for {
		resp, err := http.Get(r.url + "/events?count=1")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("third stream: %d, want 503 and then 200", resp.StatusCode)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the stalled stream still holds its slot after 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := <-readerDone; err != nil {
		t.Errorf("the reading client: %v", err)
	}
}

// readContinuously reads a /events stream for d and checks that its ids
// increase by one.
func readContinuously(body io.Reader, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last int64
	scanner := bufio.NewScanner(body)
	for time.Now().Before(deadline) && scanner.Scan() {
		id, ok := strings.CutPrefix(scanner.Text(), "id: ")
		if !ok {
			continue
		}
		var n int64
		fmt.Sscan(id, &n)
		if last != 0 && n != last+1 {
			return fmt.Errorf("id %d after %d", n, last)
		}
		last = n
	}
	if last < 10 {
		return fmt.Errorf("read only %d events", last)
	}
	return scanner.Err()
}

// rawExchange sends request bytes on a new connection and returns what the
// server answers before it closes the connection (or 5 s pass).
func rawExchange(t *testing.T, addr, request string) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, _ := io.ReadAll(conn)
	return string(answer), time.Since(start)
}

// TestBadRequestsOnTheWire sends what scanners and broken clients send. Each
// gets a clear answer, and the server keeps serving.
func TestBadRequestsOnTheWire(t *testing.T) {
	r := startRunner(t, []string{"-read-header-timeout", "300ms"})
	addr := strings.TrimPrefix(r.url, "http://")
	tests := []struct {
		name    string
		request string
		status  string // the status line the server answers, "" for none
	}{
		{"garbage", "\x00\x01\x02garbage\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"header too large", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n",
			"HTTP/1.1 431 Request Header Fields Too Large"},
		{"no Host", "GET /health HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request: missing required Host header"},
		{"bad method", "G(T /health HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"unsupported version", "GET /health HTTP/9.9\r\nHost: x\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version"},
		{"header never finished", "GET /health HTTP/1.1\r\nHost: x\r\n", ""},
		{"path traversal", "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 404 Not Found"},
		{"absolute URI", "GET http://x/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer, elapsed := rawExchange(t, addr, tt.request)
			status, _, _ := strings.Cut(answer, "\r\n")
			if status != tt.status {
				t.Errorf("answer %q, want status line %q", answer, tt.status)
			}
			if elapsed > 3*time.Second {
				t.Errorf("connection held for %v, want it closed within the read header timeout", elapsed)
			}
		})
	}
	resp, err := http.Get(r.url + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health after the bad requests: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.logs.String(), "level=ERROR") {
		t.Errorf("bad requests were logged as errors:\n%s", r.logs)
	}
}

// TestStreamLimitOverSocket bursts concurrent streams at a runner with a
// limit: exactly the limit are served.
func TestStreamLimitOverSocket(t *testing.T) {
	const limit, burst = 50, 200
	r := startRunner(t, []string{"-max-streams", fmt.Sprint(limit)})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: burst}}
	defer client.CloseIdleConnections()
	codes := make(chan int, burst)
	bodies := make(chan io.Closer, burst)
	for range burst {
		go func() {
			resp, err := client.Get(r.url + "/events")
			if err != nil {
				codes <- 0
				return
			}
			if resp.StatusCode == http.StatusOK {
				wiretest.ReadFrames(resp.Body, 1)
			}
			bodies <- resp.Body
			codes <- resp.StatusCode
		}()
	}
	count := map[int]int{}
	for range burst {
		count[<-codes]++
	}
	close(bodies)
	for b := range bodies {
		b.Close()
	}
	if count[200] != limit || count[503] != burst-limit {
		t.Errorf("status codes of %d concurrent streams with a limit of %d: %v", burst, limit, count)
	}
}
