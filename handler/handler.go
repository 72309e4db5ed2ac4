// Package handler serves tickstream's routes as a plain http.Handler:
//
//	GET /health            {"status":"healthy"}
//	GET /time              the server's clock, to the microsecond
//	GET|POST /events       an endless text/event-stream of "tick" events
//	GET|POST /stream/fast  a burst of 100 events, then a "done" event
//	GET /                  an HTML page that shows the events live
//
// The stream routes take their parameters in the query or, for a POST (as
// LLM token streams and MCP's Streamable HTTP are answered), as the members
// of a JSON object in the body, such as {"count":20,"delay":"50ms"}.
//
// The handler opens no sockets and keeps no global state, so it can be
// mounted in any server, under any prefix, and runs under WebAssembly.
// Streams flush every event as it is written and end as soon as the request's
// context is done.
//
// To serve it as tickstream's own runner (go run ./local) does, with a
// tenth of the memory per stream on Linux (written by a few event loops
// rather than a goroutine each) and a graceful shutdown that ends every
// stream at once on an event boundary: create it with WithDetachedStreams,
// call Handler.ConfigureServer on the http.Server, and at shutdown call
// Handler.Shutdown, which shuts down the server too. The server example
// shows the whole of it.
package handler

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tickstream/tickstream/internal/clock"
	"github.com/tickstream/tickstream/internal/detach"
)

// The options' defaults: what New uses where no option says otherwise, for
// servers that build their flags on them (as tickstream's runner does).
const (
	DefaultInterval     = time.Second           // WithInterval
	DefaultFastDelay    = 50 * time.Millisecond // WithFastDelay
	DefaultRetry        = time.Second           // WithRetry
	DefaultMaxStreams   = 10_000                // WithMaxStreams
	DefaultWriteTimeout = 10 * time.Second      // WithWriteTimeout
	DefaultHeartbeat    = 15 * time.Second      // WithHeartbeat
	DefaultBodyTimeout  = 5 * time.Second       // WithBodyTimeout
	DefaultStreamMemory = 128 << 20             // WithStreamMemory, in bytes
)

// Handler serves the routes. Create one with New; it is safe for concurrent
// use.
type Handler struct {
	mux *http.ServeMux

	interval     time.Duration
	fastDelay    time.Duration
	retry        time.Duration
	maxStreams   int
	writeTimeout time.Duration
	heartbeat    time.Duration
	bodyTimeout  time.Duration
	bufferBudget int64           // bytes the open streams may hold in buffers, in all
	origins      map[string]bool // nil: CORS is off
	detach       bool            // WithDetachedStreams
	detached     *detach.Server  // nil: streams stay with net/http
	logger       *slog.Logger
	pageHTML     []byte // the page, rendered for these settings

	streams  atomic.Int64 // streams being served now
	buffered atomic.Int64 // bytes of buffers they hold (streamPace.buffers)
	released atomic.Int64 // bytes of buffers the streams that ended held, in all

	server atomic.Pointer[http.Server] // set by ConfigureServer, shut down by Shutdown
}

// An Option configures a Handler.
type Option func(*Handler)

// WithInterval sets the time between two /events ticks (default 1s).
// Values below one millisecond are raised to it.
func WithInterval(d time.Duration) Option {
	return func(h *Handler) { h.interval = max(d, time.Millisecond) }
}

// WithFastDelay sets the time between two /stream/fast events (default
// 50ms). Negative values are treated as zero.
func WithFastDelay(d time.Duration) Option {
	return func(h *Handler) { h.fastDelay = max(d, 0) }
}

// WithRetry sets the reconnection delay that /events asks clients to wait
// after its stream ends (default 1s). Zero sends no retry hint.
func WithRetry(d time.Duration) Option {
	return func(h *Handler) { h.retry = max(d, 0) }
}

// WithMaxStreams sets how many streams (/events and /stream/fast) the
// handler serves at once (default 10,000). A stream request
// beyond it gets 503 with Retry-After; /health and the page always answer.
func WithMaxStreams(n int) Option {
	return func(h *Handler) { h.maxStreams = max(n, 0) }
}

// WithWriteTimeout sets how long a stream may wait for its client to take a
// write (default 10s). A client that stops reading fills the
// connection's buffers, a write blocks, and between half and all of the
// timeout later it fails and the stream ends, freeing its slot (a detached
// stream on an event loop: the timeout after its write was parked). Zero
// disables the deadline. It needs a ResponseWriter that supports
// http.ResponseController.SetWriteDeadline, as net/http's does, or
// detached streams.
func WithWriteTimeout(d time.Duration) Option {
	return func(h *Handler) { h.writeTimeout = max(d, 0) }
}

// WithHeartbeat sets the longest a stream stays silent (default
// 15s): when no event is due sooner, it sends a ": keepalive"
// comment, which browsers do not show (some client libraries do, as empty
// events: see the README) and which keeps proxies with idle timeouts
// (nginx and ALB 60 s, Cloudflare 100 s) from closing the connection. Zero
// disables heartbeats.
func WithHeartbeat(d time.Duration) Option {
	return func(h *Handler) { h.heartbeat = max(d, 0) }
}

// WithStreamMemory sets how many bytes of buffers the open streams may hold
// in all (default 128 MiB). Each stream counts as the most it may hold,
// about twice its largest event (the frame it builds and the chunk it
// writes, or the rest it keeps of a write its client was slow to take) and
// 4 KiB besides: about 4.4 KiB for an ordinary /events tick, 2 MiB for one
// padded to the largest size, 1 MiB. A stream that would take the streams past the budget gets
// 503 with Retry-After and a message that says why, however few streams are
// open, so no client can make the server hold more, and /health keeps
// answering. At least one stream of the largest size fits any budget.
func WithStreamMemory(bytes int64) Option {
	largest := streamPace{maxFrame: maxTickSize(time.Hour, maxSize)}.buffers()
	return func(h *Handler) { h.bufferBudget = max(bytes, largest) }
}

// WithBodyTimeout sets how long a POST stream request's body may take to
// arrive (default 5s, the runner's -read-header-timeout): a body not
// complete by then gets 408 Request Timeout and its connection is closed.
// Zero waits as long as the server lets it. It needs a ResponseWriter that
// supports http.ResponseController.SetReadDeadline, as net/http's does.
func WithBodyTimeout(d time.Duration) Option {
	return func(h *Handler) { h.bodyTimeout = max(d, 0) }
}

// WithAllowedOrigins turns on CORS for the listed origins (such as
// "https://example.com"; "*" allows any): their requests get
// Access-Control-Allow-Origin and their preflight requests are answered.
// Without it, CORS is off and browsers allow only same-origin pages to read
// the routes.
func WithAllowedOrigins(origins ...string) Option {
	return func(h *Handler) {
		h.origins = make(map[string]bool, len(origins))
		for _, o := range origins {
			h.origins[o] = true
		}
	}
}

// WithDetachedStreams makes the handler serve HTTP/1.1 streams on connections
// it takes over (http.Hijacker): ServeHTTP returns at once, so net/http
// frees the connection's goroutines and buffers, and the handler writes the
// response itself. On Linux a few event loops (one per P) write every such
// stream, over epoll, with non-blocking writes: a waiting stream holds no
// goroutine, timer or buffer: its schedule and a table entry, a few
// hundred bytes, besides its socket. Elsewhere, and for connections that are not plain
// sockets (TLS), each stream has a goroutine of its own. HTTP/2 streams,
// and writers that cannot be hijacked, are served as usual.
//
// A detached stream ends as soon as its client closes or resets the
// connection, and a stream dropped by a failed or timed-out write is
// closed with a TCP reset, which frees the socket and what it had queued at
// once. The internal/detach package describes the whole lifecycle.
//
// A hijacked connection is no longer the server's: http.Server.Shutdown
// neither ends nor waits for it. A server that uses this option must call
// Handler.Shutdown when it shuts down (which shuts down the server that
// ConfigureServer prepared, too). A detached stream no longer sees its
// request's context, which is done when ServeHTTP returns.
func WithDetachedStreams() Option {
	return func(h *Handler) { h.detach = true }
}

// WithLogger sets the logger for events worth an operator's attention
// (default: slog.Default()). Nothing is logged per event, and no client
// address is ever logged.
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) { h.logger = l }
}

// New returns a Handler configured by opts.
func New(opts ...Option) *Handler {
	h := &Handler{
		mux:          http.NewServeMux(),
		interval:     DefaultInterval,
		fastDelay:    DefaultFastDelay,
		retry:        DefaultRetry,
		maxStreams:   DefaultMaxStreams,
		writeTimeout: DefaultWriteTimeout,
		heartbeat:    DefaultHeartbeat,
		bodyTimeout:  DefaultBodyTimeout,
		bufferBudget: DefaultStreamMemory,
	}
	for _, opt := range opts {
		opt(h)
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.detach {
		h.detached = detach.New(detach.Config{WriteTimeout: h.writeTimeout, Logger: h.logger})
	}
	h.pageHTML = h.renderPage()
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /page.js", h.pageScript)
	h.mux.HandleFunc("GET /page.css", h.pageStyle)
	h.mux.HandleFunc("GET /health", h.health)
	h.mux.HandleFunc("GET /time", h.now)
	h.mux.HandleFunc("GET /events", h.events)
	h.mux.HandleFunc("POST /events", h.events)
	h.mux.HandleFunc("GET /stream/fast", h.fast)
	h.mux.HandleFunc("POST /stream/fast", h.fast)
	return h
}

// ServeHTTP dispatches the request to its route. An unknown path gets 404 and
// a method the route does not take gets 405 with an Allow header, both with
// a JSON error body. Only a POST to a stream route takes a request body (at
// most 64 KiB, within the body timeout): any other request that announces
// one gets 400 (or the 404 or 405 it would get anyway), and its body is
// never read or waited for. With allowed origins set, it answers CORS
// preflight requests from them.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !strings.HasPrefix(r.URL.Path, "/") {
		// Mounted with a prefix stripped up to its slash, as
		// http.StripPrefix("/sse/", h) does: "events" is "/events". (The mux
		// would otherwise redirect to "/events", outside the prefix.)
		r2 := new(http.Request)
		*r2 = *r
		r2.URL = new(url.URL)
		*r2.URL = *r.URL
		r2.URL.Path = "/" + r.URL.Path
		if r.URL.RawPath != "" {
			r2.URL.RawPath = "/" + r.URL.RawPath
		}
		r = r2
	}
	_, pattern := h.mux.Handler(r)
	refuseBody := hasBody(r) && !strings.HasPrefix(pattern, http.MethodPost+" ")
	if refuseBody {
		leaveBodyUnread(w, r)
	}
	if h.origins != nil && h.cors(w, r) {
		return
	}
	if pattern == "" {
		h.noRoute(w, r)
		return
	}
	if refuseBody {
		writeError(w, r, http.StatusBadRequest, "request body not allowed: only POST /events and POST /stream/fast take one")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// hasBody reports whether r has a body, or may: over HTTP/3 the length of
// a request without Content-Length is unknown until its stream ends (and
// servers say -1 for every one of them, GETs too), so there only a body
// that Content-Length announces counts.
func hasBody(r *http.Request) bool {
	if r.ProtoMajor == 3 {
		return r.ContentLength > 0
	}
	return r.ContentLength != 0
}

// ConfigureServer prepares srv to serve h as tickstream's runner serves it:
// every request's context ends as soon as srv.Shutdown is called, so open
// streams end at their next event boundary with a properly ended response
// and Shutdown returns once their clients have them (without it, streams
// run on and Shutdown waits until its own context expires). It keeps the
// values of srv.BaseContext's contexts, if srv sets one. Call it before srv
// serves.
//
// Streams detached with WithDetachedStreams are not srv's to wait for:
// shut down with h.Shutdown, which shuts srv down too, at the same time as
// the streams (see the example).
func (h *Handler) ConfigureServer(srv *http.Server) {
	h.server.Store(srv)
	shutdown, endStreams := context.WithCancel(context.Background())
	base := srv.BaseContext
	srv.BaseContext = func(ln net.Listener) context.Context {
		if base == nil {
			return shutdown
		}
		ctx, cancel := context.WithCancel(base(ln))
		context.AfterFunc(shutdown, cancel)
		return ctx
	}
	srv.RegisterOnShutdown(endStreams)
}

// Shutdown shuts down the server that ConfigureServer prepared, if any
// (http.Server.Shutdown: open streams end on an event boundary), and at the
// same time the handler's detached streams (see WithDetachedStreams), which
// the server does not see: each ends after the event it is writing, with a
// properly ended response, and Shutdown waits until they are closed.
// Detached streams still open when ctx is done, whose clients are not taking
// their last bytes, are aborted (their connections reset). It returns the
// server's error and one saying how many streams were reset, joined.
// Streams detached after Shutdown began end at once.
func (h *Handler) Shutdown(ctx context.Context) error {
	served := make(chan error, 1)
	if srv := h.server.Load(); srv != nil {
		go func() { served <- srv.Shutdown(ctx) }()
	} else {
		served <- nil
	}
	var err error
	if h.detached != nil {
		err = h.detached.Shutdown(ctx)
	}
	return errors.Join(<-served, err)
}

// leaveBodyUnread makes sure nothing waits for the body r announces (a
// Content-Length or chunked Transfer-Encoding; with both, a smuggling
// attempt). net/http would otherwise read up to 256 KiB of it after the
// response, for as long as the client takes to send it, and then read what
// follows as the next request. The connection is closed after the answer
// (Connection: close, for HTTP/1.x; an HTTP/2 stream's unread body costs its
// connection nothing) and its read deadline is set in the past, so that any
// read of the body fails at once.
func leaveBodyUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	// A writer without deadlines (http.ErrNotSupported) has no connection
	// to wait on.
	http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0)) //nolint:errcheck
}

// served reports whether r's path is one of the routes for method.
func (h *Handler) served(r *http.Request, method string) bool {
	probe := r.Clone(r.Context())
	probe.Method = method
	_, pattern := h.mux.Handler(probe)
	return pattern != ""
}

// allowed returns the methods r's path is served for, as an Allow header
// lists them, and in words; "" if none.
func (h *Handler) allowed(r *http.Request) (header, words string) {
	switch {
	case h.served(r, http.MethodPost):
		return "GET, HEAD, POST", "GET, HEAD or POST"
	case h.served(r, http.MethodGet):
		return "GET, HEAD", "GET or HEAD"
	}
	return "", ""
}

// noRoute answers a request that matches no route: 405 if the path is served
// for other methods, 404 otherwise.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request) {
	if allow, words := h.allowed(r); allow != "" {
		w.Header().Set("Allow", allow)
		writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+words)
		return
	}
	writeError(w, r, http.StatusNotFound, "no route for path "+r.URL.Path)
}

// cors adds the CORS response headers for an allowed origin and answers a
// preflight request for a route, reporting whether it did. Requests from
// other origins get no CORS headers, so browsers keep their pages out.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) (answered bool) {
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !(h.origins[origin] || h.origins["*"]) {
		return false
	}
	if h.origins["*"] {
		hdr.Set("Access-Control-Allow-Origin", "*")
	} else {
		hdr.Set("Access-Control-Allow-Origin", origin)
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	allow, _ := h.allowed(r)
	if allow == "" {
		return false
	}
	// EventSource sends Last-Event-ID when it reconnects, which makes its
	// cross-origin request need a preflight; so does a fetch that POSTs JSON.
	hdr.Set("Access-Control-Allow-Methods", allow)
	hdr.Set("Access-Control-Allow-Headers", "Last-Event-ID, Cache-Control, Content-Type")
	hdr.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

var healthBody = []byte(`{"status":"healthy"}`)

func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, healthBody)
}

// timeLayout is RFC 3339 in UTC with exactly six fractional digits.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// now serves GET /time: {"time":"2000-01-01T00:00:00.000000Z"}, the
// server's clock when it answered, to the microsecond, so that a client can
// relate it to its own (as the path check does, NTP-style, to measure how
// late events arrive). Nothing in it is about the client.
func (h *Handler) now(w http.ResponseWriter, r *http.Request) {
	now := clock.From(r.Context())()
	body := append([]byte(`{"time":"`), now.UTC().AppendFormat(nil, timeLayout)...)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, http.StatusOK, append(body, `"}`...))
}

// writeError answers with status and a JSON body {"error": msg}.
func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	// A struct of one string always marshals; invalid UTF-8 becomes U+FFFD.
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	writeJSON(w, r, status, body)
}

// writeJSON answers with status and body, a complete JSON document; HEAD
// gets the same headers, Content-Length included, and no body.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body) //nolint:errcheck // a failed write means the client is gone
	}
}
