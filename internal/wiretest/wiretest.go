// Package wiretest holds what tickstream's tests share to prove the bytes
// on the wire: a spec-following event-stream parser, the golden-file format
// of a response, and a reader that captures the first frames of a live
// stream. The handler, local-runner and Lambda tests compare against the same
// golden files through it, so all three paths are shown to frame events
// identically.
package wiretest

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/sse"
)

var update = flag.Bool("update", false, "rewrite golden files with the bytes the tests produce")

// A Block is one blank-line-terminated run of lines, as a client that follows
// the WHATWG "Server-sent events" parsing rules reads it: sse.Block without
// its offset, which golden comparisons leave out.
type Block struct {
	// Event holds what the client saw in the block: Comment is its comment
	// lines joined by "\n", Retry the last valid reconnection time it set,
	// ID the client's last event ID after the block (which persists from
	// earlier blocks), and Type and Data the dispatched event's type ("" for
	// "message") and data.
	Event sse.Event

	// Dispatched reports whether the client dispatched an event: only blocks
	// with at least one data line are dispatched.
	Dispatched bool
}

// Parse reads an event stream as a browser does, with sse.Parser, and
// returns one Block for each blank line. Lines after the last blank line are
// an unfinished event, which clients discard.
func Parse(stream []byte) []Block {
	var blocks []Block
	p := sse.NewParser(stream)
	for {
		b, ok := p.Next()
		if !ok {
			return blocks
		}
		blocks = append(blocks, Block{Event: b.Event, Dispatched: b.Dispatched})
	}
}

// Events returns the events a client dispatches from stream.
func Events(stream []byte) []sse.Event {
	var events []sse.Event
	for _, b := range Parse(stream) {
		if b.Dispatched {
			events = append(events, b.Event)
		}
	}
	return events
}

// ReadFrames reads r until it has read n blank-line-terminated frames and
// returns exactly the bytes of those frames. It fails if r ends first.
func ReadFrames(r io.Reader, n int) ([]byte, error) {
	return readUntil(r, n, "frames", func(line []byte) bool { return len(line) == 1 || string(line) == "\r\n" })
}

// ReadLines reads r until it has read n lines and returns exactly their
// bytes. It fails if r ends first.
func ReadLines(r io.Reader, n int) ([]byte, error) {
	return readUntil(r, n, "lines", func([]byte) bool { return true })
}

// readUntil reads r line by line until n lines have ended a unit (named
// units, for the error), and returns exactly the bytes read to there.
func readUntil(r io.Reader, n int, units string, ends func(line []byte) bool) ([]byte, error) {
	br := bufio.NewReader(r)
	var out bytes.Buffer
	for done := 0; done < n; {
		line, err := br.ReadSlice('\n')
		out.Write(line)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			return out.Bytes(), fmt.Errorf("after %d of %d %s: %w", done, n, units, err)
		}
		if ends(line) {
			done++
		}
	}
	return out.Bytes(), nil
}

// goldenHeaders are the response headers a golden file records: those that
// decide how clients and proxies treat the response. Headers a transport
// adds on its own (Date, Transfer-Encoding) are left out.
var goldenHeaders = []string{
	"Access-Control-Allow-Origin",
	"Allow",
	"Cache-Control",
	"Content-Length",
	"Content-Security-Policy",
	"Content-Type",
	"Referrer-Policy",
	"Retry-After",
	"X-Accel-Buffering",
	"X-Content-Type-Options",
}

// Dump formats a response as a golden file records it: the status, the
// headers that matter in a fixed order, a blank line, and the body's exact
// bytes.
func Dump(status int, header http.Header, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d %s\n", status, http.StatusText(status))
	for _, name := range goldenHeaders {
		for _, v := range header.Values(name) {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	b.WriteByte('\n')
	b.Write(body)
	return b.Bytes()
}

// Golden compares got with the golden file at path and fails t with a diff
// if they differ. Run the tests with -update to rewrite the file instead.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run the tests with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("response differs from %s (-want +got):\n%s", path, diff)
	}
}

// A Case is a request whose response is pinned in a golden file under
// handler/testdata. Every transport test (handler, local runner, Lambda)
// serves the same cases and must produce the same bytes.
type Case struct {
	File   string // the golden file's name
	Method string
	Path   string
	Header http.Header
	Body   string // the request's body, for a POST

	// Frames is how many frames a client reads from an endless event stream
	// before it leaves, and Lines how many lines from an endless NDJSON or
	// text stream; both 0 means the response ends by itself.
	Frames, Lines int

	// Period is the time between two events of the stream in the golden
	// file. A transport test that cannot fake time (one on a real socket)
	// runs the stream with no pause and a clock that steps by Period on
	// every event, which yields the same bytes.
	Period time.Duration
}

// ReadBody reads the body of c's response as a client of its golden file
// does: Frames frames or Lines lines of an endless stream, or everything.
func (c Case) ReadBody(body io.Reader) ([]byte, error) {
	switch {
	case c.Frames > 0:
		return ReadFrames(body, c.Frames)
	case c.Lines > 0:
		return ReadLines(body, c.Lines)
	}
	return io.ReadAll(body)
}

// Units is how many frames or lines a client reads from c's endless
// stream, 0 for a response that ends by itself.
func (c Case) Units() int { return c.Frames + c.Lines }

// Cases are the golden cases, in the order of the handler's routes.
var Cases = []Case{
	{File: "health.golden", Method: "GET", Path: "/health"},
	{File: "health-head.golden", Method: "HEAD", Path: "/health"},
	{File: "time.golden", Method: "GET", Path: "/time"},
	{File: "events.golden", Method: "GET", Path: "/events", Frames: 5, Period: time.Second},
	{File: "events-resume.golden", Method: "GET", Path: "/events", Frames: 3, Period: time.Second,
		Header: http.Header{"Last-Event-Id": {"41"}}},
	{File: "events-head.golden", Method: "HEAD", Path: "/events"},
	{File: "events-count-resume.golden", Method: "GET", Path: "/events?count=5", Period: time.Second,
		Header: http.Header{"Last-Event-Id": {"3"}}},
	{File: "events-count-finished.golden", Method: "GET", Path: "/events?count=5",
		Header: http.Header{"Last-Event-Id": {"5"}}},
	{File: "fast.golden", Method: "GET", Path: "/stream/fast", Period: 50 * time.Millisecond},
	{File: "fast-resume.golden", Method: "GET", Path: "/stream/fast?count=5", Period: 50 * time.Millisecond,
		Header: http.Header{"Last-Event-Id": {"2"}}},
	{File: "fast-finished.golden", Method: "GET", Path: "/stream/fast",
		Header: http.Header{"Last-Event-Id": {"100"}}},
	{File: "fast-head.golden", Method: "HEAD", Path: "/stream/fast"},
	{File: "fast-post.golden", Method: "POST", Path: "/stream/fast?size=64", Period: 50 * time.Millisecond,
		Body: `{"count":5,"delay":"50ms","size":64}`},
	{File: "events-post.golden", Method: "POST", Path: "/events", Period: time.Second,
		Body: `{"count":3,"interval":"1s"}`, Header: http.Header{"Content-Type": {"application/json"}}},
	{File: "events-ndjson.golden", Method: "GET", Path: "/events?format=ndjson", Lines: 3, Period: time.Second},
	{File: "events-text.golden", Method: "GET", Path: "/events?format=text&size=40", Lines: 3, Period: time.Second},
	{File: "fast-ndjson.golden", Method: "GET", Path: "/stream/fast?format=ndjson&count=5", Period: 50 * time.Millisecond},
	{File: "fast-text.golden", Method: "GET", Path: "/stream/fast?format=text&count=5", Period: 50 * time.Millisecond},
	{File: "fast-ndjson-post.golden", Method: "POST", Path: "/stream/fast", Period: 50 * time.Millisecond,
		Body: `{"count":3,"format":"ndjson","size":64}`},
	{File: "events-text-post.golden", Method: "POST", Path: "/events?format=text", Period: time.Second,
		Body: `{"count":2,"format":"text"}`, Header: http.Header{"Content-Type": {"application/json"}}},
	{File: "format-unknown.golden", Method: "GET", Path: "/stream/fast?format=xml"},
	{File: "post-disagree.golden", Method: "POST", Path: "/stream/fast?count=5", Body: `{"count":6}`},
	{File: "post-unknown-member.golden", Method: "POST", Path: "/events", Body: `{"count":3,"speed":"fast"}`},
	{File: "not-found.golden", Method: "GET", Path: "/nope"},
	{File: "method-not-allowed.golden", Method: "POST", Path: "/health"},
}

// Request returns a new client request for c against baseURL ("" for a
// server-side request).
func (c Case) Request(baseURL string) *http.Request {
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequest(c.Method, baseURL+c.Path, body)
	if err != nil {
		panic(err) // the cases are constants
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	return req
}

// SteppingClock returns a clock that reads 2000-01-01T00:00:00Z, the time
// testing/synctest starts at, and then step later on every call.
func SteppingClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	next := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := next
		next = next.Add(step)
		return now
	}
}

// Updating reports whether the tests run with -update, to rewrite the files
// they check instead of checking them.
func Updating() bool { return *update }

// CodeBlock returns the body of the fenced block in the Markdown file that
// starts with the line start (such as "```console\n$ go run ./local -h\n"),
// up to its closing fence, so that tests can hold the documentation to what
// a command prints.
func CodeBlock(t testing.TB, file, start string) string {
	t.Helper()
	doc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, block, found := strings.Cut(string(doc), start)
	block, _, closed := strings.Cut(block, "```")
	if !found || !closed {
		t.Fatalf("%s has no block starting %q", file, start)
	}
	return block
}
