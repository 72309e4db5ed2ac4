//go:build js && wasm

// Command edge serves tickstream's handler from WebAssembly to a
// JavaScript fetch runtime: Cloudflare Workers (workerd), Deno and Bun.
// One GOOS=js GOARCH=wasm build of handler.New runs in one Go instance per
// isolate, shared by every request, and glue.mjs turns each fetch(request)
// into a call of the handler and its streamed writes into the Response
// body. `make edge` writes edge/dist/: the wasm, the glue, Go's
// wasm_exec.js, and an entry point per runtime (worker.mjs, deno.mjs,
// bun.mjs) with a workerd config.
//
// # Design
//
// Go has one runtime per instance, and under js/wasm it runs only when
// JavaScript calls into it; when every goroutine sleeps it asks its host
// for one timeout (runtime.scheduleTimeoutEvent) to be woken at the
// earliest timer of all. workerd ties every timer, promise continuation
// and stream to the request whose code created it: another request may
// not touch it, a request whose only pending work belongs to another is
// killed as hung, and a client's departure cancels every task of its
// request. Worse, code that runs after an await, or on another request's
// event (the JavaScript that Go calls as it runs for one request), may
// run in that other request's context, and a timer it sets ends with that
// request: a glue that set timers from there left streams open for good
// (TestStreamsEndingTogether). So nothing here may belong to one request
// on behalf of others, and each request's timers are set by that
// request's own timer only:
//
//   - A request becomes a handler call. The glue sets the request's timer
//     first, reads the request (a POST's body at most 64 KiB and 1 byte,
//     within the body timeout, so that the handler gives its 413 or 408),
//     writes its head and body into Go's memory (the inbox) and calls
//     tickstreamServe, a function Go exports, which builds an http.Request
//     (HTTP/1.1, no client address) and starts ServeHTTP in a goroutine;
//     the glue then runs Go until every goroutine sleeps, so a route that
//     answers at once has answered when the call returns. What passes
//     either way for a request is bytes in arrays made once, not
//     JavaScript strings or objects (bridge).
//   - Each request's bytes are enqueued in its own JavaScript queue. The
//     ResponseWriter buffers writes and, on Flush or when ServeHTTP
//     returns, hands them to the glue (push), which enqueues them for that
//     request's body once Go returns. A stream route's events take another
//     way (WriteStream, plan.go): Go builds a stream's frames ahead, each
//     for the millisecond it is due, and hands them to the glue (plan),
//     whose timer for that request sends each when it is due; Go wakes
//     only to build the next ones (up to 10 s of them, 16 KiB at most),
//     not per event. A body with more than 2 MiB waiting for its client (a
//     client that stopped reading) ends as a write timeout ends one on a
//     socket.
//   - What wakes Go. The glue replaces the two timeout imports of
//     wasm_exec.js: Go's wake-up time is recorded and given to a live
//     request (its owner), whose timer calls into Go when it is due. Any
//     request's timer that runs after that time calls into Go too, and
//     takes the wake-up if its owner has ended; every request's timer runs
//     at least every second, so no request is ever left waiting on
//     another's work alone.
//   - What breaks a response. A handler that panics after its response
//     began has it broken off (the glue errors its ReadableStream, so the
//     client's read fails as when net/http aborts a connection), never
//     ended as if whole. If the Go instance exits, every open response is
//     broken off and the next request starts a new instance; one that
//     cannot start is answered 503 with the reason.
//   - What a departure cancels. When the client leaves, the runtime
//     cancels the response body; the glue calls tickstreamCancel, which
//     cancels that request's context: its stream ends at once, and every
//     other keeps its schedule.
//   - Platform limits. A stream ends, on an event boundary, when the
//     request's context reaches MAX_STREAM_DURATION (as on Lambda before
//     the invocation's deadline), and EventSource clients reconnect with
//     Last-Event-ID; MAX_STREAMS bounds the streams an instance serves
//     (the 503 of handler.WithMaxStreams). Both come from the runtime's
//     environment (wrangler.toml's vars on Workers).
//
// Hop-by-hop headers (Connection) are the runtime's business and are
// dropped from responses; request and response bodies and headers are
// otherwise the handler's own.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall/js"
	"time"
	"unsafe"

	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/clock"
)

// maxQueued is how many bytes a response may have waiting for its client
// before its writes fail: a client that stopped reading.
const maxQueued = 2 << 20

// config is what the glue passes in globalThis.tickstreamConfig.
type config struct {
	maxStreamDuration time.Duration // 0: none
	maxStreams        int
}

func main() {
	host := js.Global().Get("tickstreamHost")
	cfg, err := readConfig(js.Global().Get("tickstreamConfig"))
	if err != nil {
		host.Call("fail", err.Error())
		return
	}
	opts := []handler.Option{handler.WithMaxStreams(cfg.maxStreams)}
	b := &bridge{
		h:         testHandler(handler.New(append(opts, testOptions()...)...)),
		host:      newHost(host),
		maxStream: cfg.maxStreamDuration,
		live:      make(map[int]*exchange),
		uint8:     js.Global().Get("Uint8Array"),
	}
	b.staging = b.uint8.New(stagingSize)
	b.inbox = make([]byte, inboxSize)
	served = b
	host.Call("ready")
	select {}
}

// served is the bridge that the functions exported to the glue serve,
// once main has made it.
var served *bridge

// The glue calls into Go through three exported functions, not through
// js.FuncOf callbacks: a callback's call passes an event object whose
// properties syscall/js reads by name, each name decoded by the runtime
// and each value given a finalizer (16% of the Go time a request cost
// workerd). An exported function takes numbers, and what it starts runs
// when the glue then resumes Go (go._resume), until every goroutine
// sleeps. None of them blocks.

// exportInbox is tickstreamInbox(size): it returns where, in Go's memory,
// the glue writes a request of size bytes for tickstreamServe (its head,
// then its body): the bridge's inbox, or an array of its own for a request
// too large for it, kept until the request is served.
//
//go:wasmexport tickstreamInbox
//lint:ignore U1000 the glue calls it (staticcheck does not see go:wasmexport)
func exportInbox(size int32) unsafe.Pointer {
	b := served
	b.large = nil
	if int(size) > len(b.inbox) {
		b.large = make([]byte, size)
		return unsafe.Pointer(unsafe.SliceData(b.large))
	}
	return unsafe.Pointer(unsafe.SliceData(b.inbox))
}

// exportServe is tickstreamServe(id, headSize, bodySize, late): the glue
// has written request id's head (parseHead), headSize bytes, then its
// body, bodySize bytes or -1 if it has none, where tickstreamInbox said;
// late says whether the rest of the body did not come within the body
// timeout. It starts the handler on the request (bridge.serve).
//
//go:wasmexport tickstreamServe
//lint:ignore U1000 the glue calls it (staticcheck does not see go:wasmexport)
func exportServe(id, headSize, bodySize int32, late bool) {
	b := served
	in := b.inbox
	if b.large != nil {
		in, b.large = b.large, nil
	}
	var body []byte
	if bodySize >= 0 {
		body = in[headSize : headSize+bodySize]
	}
	b.serve(int(id), in[:headSize], body, late)
}

// exportCancel is tickstreamCancel(id, stalled): the client of exchange
// id has left, or, if stalled, stopped reading (more than maxQueued bytes
// wait for it), and its stream ends.
//
//go:wasmexport tickstreamCancel
//lint:ignore U1000 the glue calls it (staticcheck does not see go:wasmexport)
func exportCancel(id int32, stalled bool) {
	if x := served.live[int(id)]; x != nil {
		if stalled {
			x.stalled = true
		} else {
			x.gone = true
		}
		x.cancel()
	}
}

// host holds the glue's callbacks (tickstreamHost's methods), each called
// with Invoke: Value.Call would look the method up by name, decoding the
// name from Go's memory, on every call.
type host struct {
	head, push, plan, unplan, end, log js.Value
}

func newHost(v js.Value) host {
	return host{
		head:   v.Get("head"),
		push:   v.Get("push"),
		plan:   v.Get("plan"),
		unplan: v.Get("unplan"),
		end:    v.Get("end"),
		log:    v.Get("log"),
	}
}

// readConfig reads the glue's settings: maxStreamDuration and maxStreams,
// strings as in the environment ("15m", "1000"), empty for the defaults.
func readConfig(v js.Value) (config, error) {
	cfg := config{maxStreams: handler.DefaultMaxStreams}
	if v.Type() != js.TypeObject {
		return cfg, nil
	}
	if s := stringField(v, "maxStreamDuration"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return cfg, fmt.Errorf("MAX_STREAM_DURATION %q: want a duration such as 15m, or 0 for none", s)
		}
		cfg.maxStreamDuration = d
	}
	if s := stringField(v, "maxStreams"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return cfg, fmt.Errorf("MAX_STREAMS %q: want a number of streams", s)
		}
		cfg.maxStreams = n
	}
	return cfg, nil
}

func stringField(v js.Value, name string) string {
	f := v.Get(name)
	if f.Type() != js.TypeString {
		return ""
	}
	return f.String()
}

// A bridge serves the handler to the glue.
//
// What it passes between Go and JavaScript for a request is bytes in
// arrays made once, not strings or objects of their own: each such
// js.Value costs the Go runtime a finalizer (runtime.addspecial, which
// files them, was 2% of workerd's samples serving one-event streams when
// headers came as strings) and the glue an entry in its table of the
// values Go holds. A request comes as bytes in the inbox, in Go's memory,
// and the response's head, its chunks and its plans go back as bytes in
// the staging array, a JavaScript one. The exceptions are rare: a chunk
// too large for its array, and a broken-off response's reason.
type bridge struct {
	h         http.Handler
	host      host
	maxStream time.Duration
	live      map[int]*exchange // by the glue's id
	uint8     js.Value          // Uint8Array
	// inbox is where, in Go's memory, the glue writes a request's head and
	// body for serve (exportInbox), and large where it writes one that
	// does not fit.
	inbox, large []byte
	// staging is where a response's head, its flushed bytes and its plans
	// are copied for the glue, which takes a copy of them: one JavaScript
	// array for every one that fits.
	staging js.Value
	plan    []byte // where WriteStream builds a plan
	head    []byte // where WriteHeader encodes a head
}

// stagingSize is the size of the bridge's staging array: an ordinary
// event fits many times over; a chunk that does not gets an array of its
// own.
const stagingSize = 64 << 10

// inboxSize is the size of the bridge's inbox: a request whose head and
// body do not fit comes in an array of its own.
const inboxSize = 96 << 10

// stage copies p to the staging array, or to an array of its own if it
// does not fit, and returns the array.
func (b *bridge) stage(p []byte) js.Value {
	chunk := b.staging
	if len(p) > stagingSize {
		chunk = b.uint8.New(len(p))
	}
	js.CopyBytesToJS(chunk, p)
	return chunk
}

// serve starts the handler on request id, whose head (parseHead) and body
// (nil if it has none) the glue wrote, neither of which serve keeps; late
// says whether the rest of the body did not come within the body timeout.
// The response comes through the host's head, push, plan and end once Go
// runs its goroutines.
func (b *bridge) serve(id int, head, body []byte, late bool) {
	x := &exchange{id: id, b: b, header: make(http.Header)}
	r, err := newRequest(head, body, late)
	if err != nil {
		go x.answer(http.StatusBadRequest, err)
		return
	}
	// One context, not a timeout's under a cancel's: a child of a
	// cancelable context costs a map entry in its parent besides.
	var ctx context.Context
	var cancel context.CancelFunc
	if b.maxStream > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), b.maxStream)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	x.cancel = cancel
	b.live[id] = x
	r = r.WithContext(testContext(clock.NewContext(ctx, x.now), r))
	go func() {
		defer func() {
			// As net/http does, a handler's panic ends its response, not
			// the instance that serves every request.
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					b.host.log.Invoke(fmt.Sprintf("edge: panic serving %s %s: %v", r.Method, r.URL.Path, p))
				}
				if x.status == 0 {
					x.buf = x.buf[:0]
					x.answer(http.StatusInternalServerError, errors.New("internal error"))
					return
				}
				// Begun: the client must see it broken off, not ended.
				x.abort(fmt.Sprintf("the handler panicked: %v", p))
				return
			}
			x.finish()
		}()
		b.h.ServeHTTP(x, r)
	}()
}

// parseHead reads a request's head as the glue writes it: the method, the
// URL and each header's name and value, UTF-8, separated by NUL bytes,
// which none of them can hold (a fetch Request's method is a token, its
// URL is serialized, and its headers are validated).
func parseHead(head []byte) (method, rawURL string, header http.Header, err error) {
	s := string(head)
	method, s, _ = strings.Cut(s, "\x00")
	rawURL, s, more := strings.Cut(s, "\x00")
	header = make(http.Header)
	for more {
		var name, value string
		name, s, _ = strings.Cut(s, "\x00")
		value, s, more = strings.Cut(s, "\x00")
		header.Add(name, value)
	}
	if method == "" || rawURL == "" {
		return "", "", nil, errors.New("request head: no method or URL")
	}
	return method, rawURL, header, nil
}

// newRequest builds the handler's request from what the glue passes: its
// head (parseHead) and its body, nil if it has none, which it copies. The
// body of a late request reads as what came, then a deadline error, as a
// socket's past its read deadline does: the handler answers it 408.
func newRequest(head, body []byte, late bool) (*http.Request, error) {
	method, rawURL, header, err := parseHead(head)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("request URL: %w", err)
	}
	r := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Body:       http.NoBody,
		Host:       u.Host,
		RequestURI: u.RequestURI(),
	}
	if cl := header.Get("Content-Length"); cl != "" {
		if r.ContentLength, err = strconv.ParseInt(cl, 10, 64); err != nil || r.ContentLength < 0 {
			return nil, fmt.Errorf("Content-Length %q", cl)
		}
	}
	if body != nil {
		content := bytes.Clone(body)
		if r.ContentLength == 0 {
			r.ContentLength = int64(len(content))
		}
		var rest io.Reader = bytes.NewReader(content)
		if late {
			rest = io.MultiReader(rest, lateBody{})
		}
		r.Body = io.NopCloser(rest)
	}
	return r, nil
}

// lateBody is the end of a body that did not come in time.
type lateBody struct{}

func (lateBody) Read([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }

// An exchange is one request's response: an http.ResponseWriter (and
// http.Flusher) that hands its bytes to the glue.
type exchange struct {
	id     int
	b      *bridge
	header http.Header
	status int    // 0 until the head is sent
	buf    []byte // written, not yet flushed
	cancel context.CancelFunc
	gone   bool // the client left
	ended  bool
	// stalled says that the glue found the client not reading a stream
	// whose frames it sends (WriteStream).
	stalled bool
	// sendAt is when the frame WriteStream builds will be sent, zero
	// before it builds any.
	sendAt time.Time
}

// now is the clock of the request's events: the time the frame being
// built will be sent.
func (x *exchange) now() time.Time {
	if x.sendAt.IsZero() {
		return time.Now()
	}
	return x.sendAt
}

var errClientGone = errors.New("edge: the client left")

var errNotReading = errors.New("edge: the client is not reading: more than 2 MiB wait for it")

func (x *exchange) Header() http.Header { return x.header }

// WriteHeader sends the head, as net/http does: once, 1xx ignored, an
// invalid code a panic.
func (x *exchange) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if x.status != 0 || code < 200 {
		return
	}
	x.status = code
	head := x.b.head[:0]
	for name, values := range x.header {
		if name == "Connection" {
			continue // the runtime's
		}
		for _, v := range values {
			head = appendString(appendString(head, name), v)
		}
	}
	x.b.head = head
	x.b.host.head.Invoke(x.id, code, x.b.stage(head), len(head))
}

// appendString appends s to a head for the glue: its length in bytes (a
// uint32, little-endian), then its bytes.
func appendString(head []byte, s string) []byte {
	head = binary.LittleEndian.AppendUint32(head, uint32(len(s)))
	return append(head, s...)
}

func (x *exchange) Write(p []byte) (int, error) {
	if x.gone || x.ended {
		return 0, errClientGone
	}
	if x.status == 0 {
		x.WriteHeader(http.StatusOK)
	}
	x.buf = append(x.buf, p...)
	return len(p), nil
}

func (x *exchange) Flush() { x.FlushError() } //nolint:errcheck // Flush has no error to return

// FlushError hands what was written to the glue, for the client: the
// response is a stream from now on, however soon it ends.
func (x *exchange) FlushError() error { return x.flush(true) }

// flush hands what was written to the glue; flushed says whether the
// handler asked, or its return did.
func (x *exchange) flush(flushed bool) error {
	if x.gone {
		return errClientGone
	}
	if x.status == 0 {
		x.WriteHeader(http.StatusOK)
	}
	if len(x.buf) == 0 && !flushed {
		return nil
	}
	chunk := x.b.stage(x.buf)
	n := len(x.buf)
	x.buf = x.buf[:0]
	if queued := x.b.host.push.Invoke(x.id, chunk, n, flushed).Int(); queued > maxQueued {
		return errNotReading
	}
	return nil
}

// finish ends the response once ServeHTTP has returned.
func (x *exchange) finish() {
	if !x.gone {
		x.flush(false) //nolint:errcheck // the end follows either way
	}
	x.end("")
}

// abort ends a response that has begun as broken off, why: what was
// flushed reaches the client, what was not is dropped (as net/http drops
// an unflushed buffer when a handler panics), and then the client's read
// fails, as it does when net/http aborts a connection, instead of ending
// as if the response were whole.
func (x *exchange) abort(why string) {
	x.buf = x.buf[:0]
	x.end(why)
}

// end ends the exchange, cleanly if failure is "", else broken off.
func (x *exchange) end(failure string) {
	x.ended = true
	x.cancel()
	delete(x.b.live, x.id)
	if failure == "" {
		x.b.host.end.Invoke(x.id, nil) // null: a string would cost a js.Value
		return
	}
	x.b.host.end.Invoke(x.id, failure)
}

// answer ends an exchange whose request could not be built with status
// and a JSON error.
func (x *exchange) answer(status int, err error) {
	if x.cancel == nil {
		x.cancel = func() {}
	}
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{err.Error()})
	x.header.Set("Content-Type", "application/json")
	x.header.Set("Content-Length", strconv.Itoa(len(body)))
	x.WriteHeader(status)
	x.Write(body) //nolint:errcheck // it goes to the buffer
	x.finish()
}
