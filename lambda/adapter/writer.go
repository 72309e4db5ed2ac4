package adapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// A prelude is what a response says before its body: its status and
// headers.
type prelude struct {
	status int
	header http.Header
}

// A sink takes the body of a response: a pipe to the Runtime API for a
// streamed response, memory for a buffered one.
type sink interface {
	write(p []byte) error
	// end ends the body: cleanly if err is nil, else with err. It may be
	// called while a write is in progress, which it then fails, and more
	// than once: the first call decides.
	end(err error)
}

// pipeSink streams the body through an unbuffered pipe that the runtime
// reads as it sends the response, so every write reaches the Runtime API as
// it is made.
type pipeSink struct{ w *io.PipeWriter }

func (s pipeSink) write(p []byte) error {
	_, err := s.w.Write(p)
	return err
}

func (s pipeSink) end(err error) { s.w.CloseWithError(err) }

// bufferSink collects the body, up to limit bytes.
type bufferSink struct {
	buf   bytes.Buffer
	limit int
}

// errTooLarge ends a buffered response that outgrew its source's limit.
var errTooLarge = errors.New("response too large")

func (s *bufferSink) write(p []byte) error {
	if s.buf.Len()+len(p) > s.limit {
		return errTooLarge
	}
	s.buf.Write(p)
	return nil
}

func (s *bufferSink) end(error) {}

// responseWriter is the handler's http.ResponseWriter. It behaves as
// net/http's does where Lambda allows: the status and headers are frozen
// into the prelude at the first Write or Flush (or when the handler
// returns), with a Content-Type sniffed from the first write when the
// handler set none; HEAD responses and statuses without a body (1xx, 204,
// 304) carry no body; WriteHeader panics on a code that is not three
// digits; a declared Content-Length is not exceeded. What Lambda cannot
// send is dropped: informational (1xx) responses and trailers.
//
// The handler's goroutine calls its methods; the adapter may end the
// response from another goroutine (at the deadline, or when a buffered
// response outgrows its limit). A one-slot semaphore orders the two: a
// write in progress completes before the response ends, and later writes
// fail with the reason it ended.
type responseWriter struct {
	method  string
	header  http.Header
	status  int // set by WriteHeader; 0 until then
	started chan<- prelude

	// guarded by sem:
	sem      chan struct{}
	done     chan struct{} // closed when the response has ended
	sink     sink
	began    bool
	ended    error // non-nil once the response has ended
	noBody   bool  // the status has no body (1xx, 204, 304)
	declared int64 // the Content-Length the handler set, or -1
	written  int64
}

func newResponseWriter(method string, s sink, started chan<- prelude) *responseWriter {
	return &responseWriter{method: method, header: http.Header{}, sink: s, started: started,
		sem: make(chan struct{}, 1), done: make(chan struct{}), declared: -1}
}

func (w *responseWriter) lock()   { w.sem <- struct{}{} }
func (w *responseWriter) unlock() { <-w.sem }

func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader records the status the response will begin with. Like
// net/http's, it panics on a code that is not three digits, and ignores
// calls after the response has begun; informational (1xx) statuses, which
// Lambda cannot send ahead of the response, are ignored too.
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 200 && w.status == 0 {
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.lock()
	defer w.unlock()
	w.beginLocked(p)
	switch {
	case w.ended != nil:
		return 0, w.ended
	case len(p) == 0:
		return 0, nil
	case w.noBody:
		return 0, http.ErrBodyNotAllowed
	case w.method == http.MethodHead:
		return len(p), nil // as net/http does, a HEAD response eats its body
	case w.declared >= 0 && w.written+int64(len(p)) > w.declared:
		return 0, http.ErrContentLength
	}
	if err := w.sink.write(p); err != nil {
		if err == errTooLarge {
			w.endLocked(err, false)
		}
		return 0, err
	}
	w.written += int64(len(p))
	return len(p), nil
}

// Flush begins the response if it has not begun. Written bytes are already
// on their way.
func (w *responseWriter) Flush() { w.FlushError() }

// FlushError is Flush for http.ResponseController: it returns the reason
// the response ended, if it has.
func (w *responseWriter) FlushError() error {
	w.lock()
	defer w.unlock()
	w.beginLocked(nil)
	return w.ended
}

// beginLocked freezes the prelude, once, from the status set by WriteHeader
// (200 if none) and the headers, with a Content-Type sniffed from the first
// bytes written, p, when the handler set none.
func (w *responseWriter) beginLocked(p []byte) {
	if w.began {
		return
	}
	w.began = true
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	h := w.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	// Lambda sends no trailers: drop their declaration and any set with
	// http.TrailerPrefix.
	h.Del("Trailer")
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			delete(h, k)
		}
	}
	switch {
	case status == http.StatusNotModified:
		h.Del("Content-Type")
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
		w.noBody = true
	case status < 200 || status == http.StatusNoContent:
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
		w.noBody = true
	default:
		_, haveType := h["Content-Type"]
		if !haveType && h.Get("Content-Encoding") == "" && len(p) > 0 {
			h.Set("Content-Type", http.DetectContentType(p))
		}
	}
	if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
		w.declared = cl
	}
	w.started <- prelude{status: status, header: h}
}

// finish ends the response cleanly when the handler returns; a handler that
// wrote nothing still answers, with 200 or the status it set.
func (w *responseWriter) finish() {
	w.lock()
	defer w.unlock()
	w.beginLocked(nil)
	if w.ended == nil {
		w.endLocked(errHandlerReturned, false)
	}
}

// endLocked ends the response, once: later writes fail with reason, and the
// body ends with reason if cut, else cleanly.
func (w *responseWriter) endLocked(reason error, cut bool) {
	w.ended = reason
	if cut {
		w.sink.end(reason)
	} else {
		w.sink.end(nil)
	}
	close(w.done)
}

// result returns the reason the response ended. Call it once done is closed.
func (w *responseWriter) result() error {
	w.lock()
	defer w.unlock()
	return w.ended
}

// errHandlerReturned fails writes made after the handler returned (by a
// goroutine it left behind).
var errHandlerReturned = errors.New("adapter: write after the handler returned")

// abort ends the response and makes later writes fail with reason: cleanly
// after the last complete write if no write is in progress; if one is (it
// may be blocked in a sink that stopped taking bytes: a Runtime API whose
// client stopped reading), by ending the sink with reason first, which
// fails that write and cuts the body where it was. If the response has not
// begun, it is replacement and body, a short JSON error. If the response
// was still open, it calls report first.
func (w *responseWriter) abort(reason error, replacement prelude, body string, report func()) {
	select {
	case w.sem <- struct{}{}:
	default:
		w.sink.end(reason) // safe beside a write: a pipe's ends are
		w.lock()
	}
	defer w.unlock()
	if w.ended != nil {
		return
	}
	report()
	if !w.began {
		w.began = true
		w.started <- replacement
		w.sink.write([]byte(body)) //nolint:errcheck // a failed write ends the body anyway
	}
	w.endLocked(reason, false)
}

// fail ends the response with err, a panic. A streamed response that has
// begun ends its body with err, which the runtime sends as error trailers;
// otherwise err is sent on failed, for the invocation to fail with it.
func (w *responseWriter) fail(err error, failed chan<- error, streamed bool) {
	w.lock()
	defer w.unlock()
	if w.ended != nil {
		return
	}
	if !w.began || !streamed {
		failed <- err // before done is closed: serve looks for it then
	}
	w.began = true
	w.endLocked(err, true)
}

// jsonError makes the prelude and body of a short JSON error response.
func jsonError(status int, message string) (prelude, string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{message})
	h := http.Header{"Content-Type": {"application/json"}, "X-Content-Type-Options": {"nosniff"}}
	return prelude{status: status, header: h}, string(b) + "\n"
}
