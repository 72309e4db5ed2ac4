//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A cheat is one kind of client of the soak: what it asks for and what it
// does with the answer. It returns the raw bytes of each response body it
// read (the chunked framing undone), whether each read ended cleanly, and
// a complaint if the server did something it must not.
type cheat struct {
	name  string
	share int // clients of this kind, of every 20
	run   func(addr string) ([]received, error)
}

// received is one response body as a client read it.
type received struct {
	body  []byte
	clean bool // the body ended with its last chunk; else it was cut (a reset, a close)
	first int  // the id its first event must have
}

// soakCheats are the kinds of clients of TestSoakCheatingClients.
var soakCheats = []cheat{
	{"reads", 6, func(addr string) ([]received, error) {
		r, err := readStream(addr, "GET /events?interval=100ms HTTP/1.1\r\nHost: x\r\n\r\n", 0, 2*time.Second, nil)
		return []received{{r.body, r.clean, 1}}, err
	}},
	{"reads slowly", 3, func(addr string) ([]received, error) {
		r, err := readStream(addr, "GET /events?interval=20ms&size=4096 HTTP/1.1\r\nHost: x\r\n\r\n", 512, 3*time.Second, nil)
		return []received{{r.body, r.clean, 1}}, err
	}},
	{"stops reading", 2, func(addr string) ([]received, error) {
		// Takes the head and a few events, then never reads again; the
		// server must drop it within its write timeout, once the socket's
		// buffers are full, with a reset.
		c, err := dialStream(addr, "GET /events?interval=2ms&size=16384 HTTP/1.1\r\nHost: x\r\n\r\n", 4096)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		head := make([]byte, 1024)
		if _, err := c.Read(head); err != nil {
			return nil, err
		}
		time.Sleep(soakWriteTimeout + 3*time.Second) // buffers fill, the write timeout passes
		if _, err := readUntilFailure(c, 5*time.Second); !errors.Is(err, syscall.ECONNRESET) {
			return nil, fmt.Errorf("a client that stopped reading: %v after the write timeout, want a reset", err)
		}
		return nil, nil
	}},
	{"resets mid-frame", 2, func(addr string) ([]received, error) {
		c, err := dialStream(addr, "GET /events?interval=10ms&size=2048 HTTP/1.1\r\nHost: x\r\n\r\n", 0)
		if err != nil {
			return nil, err
		}
		io.ReadFull(c, make([]byte, 3000)) //nolint:errcheck // the head and part of a frame, or what came
		c.(*net.TCPConn).SetLinger(0)
		return nil, c.Close()
	}},
	{"half-closes", 2, func(addr string) ([]received, error) {
		// The server takes the FIN for a departure, as net/http does, and
		// resets the stream: before its head or after some events.
		r, err := readStream(addr, "GET /events?interval=50ms HTTP/1.1\r\nHost: x\r\n\r\n", 0, 2*time.Second, func(c *net.TCPConn) { c.CloseWrite() })
		if errors.Is(err, errCutBeforeHead) {
			return nil, nil
		}
		return []received{{r.body, r.clean, 1}}, err
	}},
	{"pipelines", 2, func(addr string) ([]received, error) {
		r, err := readStream(addr, "GET /stream/fast?count=20&delay=10ms HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n", 0, 10*time.Second, nil)
		if err == nil && !r.clean {
			err = errors.New("a pipelined stream did not end cleanly")
		}
		if err == nil && len(r.after) > 0 {
			err = fmt.Errorf("a pipelined request was answered after the stream: %q", r.after)
		}
		return []received{{r.body, r.clean, 0}}, err
	}},
	{"leaves and resumes", 3, func(addr string) ([]received, error) {
		first, err := readStream(addr, "GET /events?interval=20ms HTTP/1.1\r\nHost: x\r\n\r\n", 0, 500*time.Millisecond, nil)
		if err != nil {
			return nil, err
		}
		events := parseEvents(first.body)
		if len(events) == 0 {
			return nil, errors.New("no event before leaving")
		}
		last := events[len(events)-1]
		again, err := readStream(addr, "GET /events?interval=20ms HTTP/1.1\r\nHost: x\r\nLast-Event-ID: "+strconv.Itoa(last)+"\r\n\r\n", 0, 300*time.Millisecond, nil)
		return []received{{first.body, first.clean, 1}, {again.body, again.clean, last + 1}}, err
	}},
}

// soakWriteTimeout is the runner's -write-timeout in the soak.
const soakWriteTimeout = 2 * time.Second

// dialStream connects to addr, with a receive buffer of rcvbuf bytes if
// not 0, and sends request.
func dialStream(addr, request string, rcvbuf int) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if rcvbuf > 0 {
		c.(*net.TCPConn).SetReadBuffer(rcvbuf)
	}
	if _, err := io.WriteString(c, request); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// errCutBeforeHead is readStream's error for a connection that ended
// before its response head.
var errCutBeforeHead = errors.New("cut before the response head")

// streamRead is what readStream read.
type streamRead struct {
	body  []byte // the body, its chunked framing undone
	clean bool   // it ended with the last chunk
	after []byte // what came after the last chunk
}

// readStream sends request, reads the response head (which must be a 200
// of a chunked stream that closes its connection) and then its body, in
// reads of at most chunk bytes (0: any) a few milliseconds apart when
// chunk is set, for at most d, then leaves; after, if not nil, runs on the
// connection once the request is sent.
func readStream(addr, request string, chunk int, d time.Duration, after func(*net.TCPConn)) (streamRead, error) {
	c, err := dialStream(addr, request, 0)
	if err != nil {
		return streamRead{}, err
	}
	defer c.Close()
	if after != nil {
		after(c.(*net.TCPConn))
	}
	c.SetReadDeadline(time.Now().Add(d))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return streamRead{}, fmt.Errorf("%w: %v", errCutBeforeHead, err)
	}
	if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 1 || !resp.Close {
		return streamRead{}, fmt.Errorf("the response head: %s, %v, close %v; want a chunked 200 that closes", resp.Status, resp.TransferEncoding, resp.Close)
	}
	var body bytes.Buffer
	cr := httputil.NewChunkedReader(br)
	buf := make([]byte, 32<<10)
	if chunk > 0 {
		buf = buf[:chunk]
	}
	for {
		n, err := cr.Read(buf)
		body.Write(buf[:n])
		if err == io.EOF {
			rest, _ := io.ReadAll(br)
			return streamRead{body: body.Bytes(), clean: true, after: bytes.TrimPrefix(rest, []byte("\r\n"))}, nil
		}
		if err != nil {
			// Cut: a reset, the read's deadline, a close without the last
			// chunk. What came must still be a prefix of a proper stream.
			return streamRead{body: body.Bytes()}, nil
		}
		if chunk > 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// parseEvents returns the ids of the whole events of an /events or
// /stream/fast body, in order.
func parseEvents(body []byte) []int {
	var ids []int
	for _, block := range strings.Split(string(body), "\n\n") {
		for _, line := range strings.Split(block, "\n") {
			if id, ok := strings.CutPrefix(line, "id: "); ok {
				if n, err := strconv.Atoi(id); err == nil {
					ids = append(ids, n)
				}
			}
		}
	}
	return ids
}

// checkFraming checks that r is what a client of the stream may get: whole
// events with consecutive ids from r.first, a partial event only at the end
// of a body that was cut, and, for a clean end, nothing after the last
// whole event.
func checkFraming(r received) error {
	body := string(r.body)
	whole, partial := body, ""
	if i := strings.LastIndex(body, "\n\n"); i >= 0 {
		whole, partial = body[:i+2], body[i+2:]
	} else {
		whole, partial = "", body
	}
	if partial != "" && r.clean {
		return fmt.Errorf("a stream that ended cleanly ends mid-event: %q", partial)
	}
	ids := parseEvents([]byte(whole))
	for i, id := range ids {
		if id != r.first+i {
			return fmt.Errorf("ids %v, want consecutive from %d", ids, r.first)
		}
	}
	for _, block := range strings.Split(strings.TrimSuffix(whole, "\n\n"), "\n\n") {
		if block != "" && !strings.Contains(block, "\ndata: ") && !strings.HasPrefix(block, ":") {
			return fmt.Errorf("a block that is no event: %q", block)
		}
	}
	return nil
}

// TestSoakCheatingClients runs a thousand streams on the event loops at
// once, from a mix of clients: ones that read, read slowly, stop reading,
// reset mid-frame, half-close, pipeline a second request, leave and come
// back with Last-Event-ID. Every byte each received is checked against the
// framing (whole events, consecutive ids, a partial event only where the
// stream was cut), a client that stopped reading is reset once the write
// timeout has passed, and the server's goroutines and descriptors come
// back to what they were, but for the event loops.
func TestSoakCheatingClients(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand streams for several seconds")
	}
	const clients = 1000
	r := startRunner(t, []string{"-write-timeout", soakWriteTimeout.String(), "-max-streams", strconv.Itoa(2 * clients), "-heartbeat", "0"})
	addr := strings.TrimPrefix(r.url, "http://")
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	var kinds []cheat
	for _, c := range soakCheats {
		for range c.share {
			kinds = append(kinds, c)
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems = map[string][]string{}
		events   = map[string]int{} // whole events received, by kind
	)
	complain := func(kind string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems[kind]) < 3 {
			problems[kind] = append(problems[kind], err.Error())
		}
	}
	for i := range clients {
		c := kinds[i%len(kinds)]
		wg.Go(func() {
			got, err := c.run(addr)
			if err != nil {
				complain(c.name, err)
			}
			for _, r := range got {
				if err := checkFraming(r); err != nil {
					complain(c.name, err)
				}
				mu.Lock()
				events[c.name] += len(parseEvents(r.body))
				mu.Unlock()
			}
		})
		if i%50 == 49 {
			time.Sleep(10 * time.Millisecond) // as clients come: not all in one instant
		}
	}
	wg.Wait()
	t.Logf("whole events received, by kind of client: %v", events)
	for _, c := range soakCheats {
		if c.name != "stops reading" && c.name != "resets mid-frame" && c.name != "half-closes" && events[c.name] == 0 {
			t.Errorf("clients that %s received no event", c.name)
		}
	}
	for kind, p := range problems {
		t.Errorf("clients that %s: %s", kind, strings.Join(p, "; "))
	}
	// Back to what it was, but for the event loops: a goroutine and three
	// descriptors each, at most one per P.
	loops := runtime.GOMAXPROCS(0)
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > goroutines+loops || openFDs(t) > fds+3*loops; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("10s after the soak: %d goroutines (%d before) and %d descriptors (%d before)", runtime.NumGoroutine(), goroutines, openFDs(t), fds)
		}
	}
}
