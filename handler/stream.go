package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tickstream/tickstream/internal/clock"
	"github.com/tickstream/tickstream/internal/detach"
	"github.com/tickstream/tickstream/internal/stream"
	"github.com/tickstream/tickstream/sse"
)

// maxEventID is the largest id /events sends: the largest integer a
// JavaScript number holds exactly, so browsers parse every id correctly.
const maxEventID = 1<<53 - 1

// heartbeatFrame never changes: it is encoded once.
var heartbeatFrame = mustEncode(sse.AppendComment(nil, "keepalive"))

// events serves GET and POST /events: "tick" events with ids from 1, the first at
// once, then one per interval, until the request's context is done or, with
// count, the event with id count has been sent. A request carrying a valid
// Last-Event-ID resumes after it; one that shows the stream finished (an id
// of count or more) gets 204 No Content, which tells EventSource clients to
// stop reconnecting.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	p, ok := streamParams(h, w, r, eventsParamNames, h.parseEventsParams)
	if !ok {
		return
	}
	id := int64(1)
	if last, ok := parseLastEventID(r.Header.Get("Last-Event-ID")); ok {
		id = last + 1
	}
	end := int64(maxEventID)
	if p.count > 0 {
		if id > p.count {
			streamFinished(w)
			return
		}
		end = p.count
	}
	pace := streamPace{period: p.interval, heartbeat: p.heartbeat, maxFrame: maxTickSize(h.retry, p.size)}
	if !h.startStream(w, r, p.format, true, pace) {
		return
	}
	h.serveStream(w, r, pace, &schedule{kind: ticks, format: p.format, id: id, end: end, retry: h.retry, size: p.size})
}

// fast serves GET and POST /stream/fast: count events (seq 0 to count-1, each with
// its seq as id) delay apart, then a "done" event with id count after one
// more delay, and the response ends. A request carrying a valid
// Last-Event-ID resumes after it; one that shows the burst finished (an id
// of count or more) gets 204 No Content.
func (h *Handler) fast(w http.ResponseWriter, r *http.Request) {
	p, ok := streamParams(h, w, r, fastParamNames, h.parseFastParams)
	if !ok {
		return
	}
	first := int64(0)
	if last, ok := parseLastEventID(r.Header.Get("Last-Event-ID")); ok {
		if last >= p.count {
			streamFinished(w)
			return
		}
		first = last + 1
	}
	pace := streamPace{period: p.delay, heartbeat: p.heartbeat, maxFrame: maxFastSize(p.size)}
	if !h.startStream(w, r, p.format, false, pace) {
		return
	}
	h.serveStream(w, r, pace, &schedule{kind: burst, format: p.format, id: first, end: p.count, size: p.size})
}

// streamFinished answers the reconnection of a client whose stream has
// already ended: 204 No Content, which the EventSource standard defines as
// "stop reconnecting".
func streamFinished(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusNoContent)
}

// startStream answers what comes before a stream's events: it takes a
// stream slot and the buffer memory of a stream written at pace, or refuses
// the request if either is short, and sets the stream's headers: the
// Content-Type of format, and X-Accel-Buffering: no if noBuffering. A HEAD request gets the headers and
// takes nothing. It reports whether the caller is to stream, and so to
// release what it took (serveStream does).
func (h *Handler) startStream(w http.ResponseWriter, r *http.Request, format streamFormat, noBuffering bool, pace streamPace) bool {
	head := r.Method == http.MethodHead
	if !head && !h.acquireStream() {
		h.refuseStream(w, r, "too many open streams (limit "+strconv.Itoa(h.maxStreams)+"); retry later")
		return false
	}
	if !head && !h.acquireBuffers(pace.buffers()) {
		h.releaseStream()
		h.refuseStream(w, r, fmt.Sprintf("not enough stream memory: a stream of %s events needs %s of buffers, "+
			"and the open streams hold %s of the %s the server gives them; retry later, or ask for smaller events (size)",
			byteSize(int64(pace.maxFrame)), byteSize(pace.buffers()), byteSize(h.buffered.Load()), byteSize(h.bufferBudget)))
		return false
	}
	hdr := w.Header()
	for _, name := range framingHeaders {
		// A wrapper's (a middleware that sets Connection: keep-alive, a
		// Content-Length) would contradict the stream's own framing.
		hdr.Del(name)
	}
	hdr.Set("Content-Type", format.contentType())
	hdr.Set("Cache-Control", "no-cache")
	if noBuffering {
		hdr.Set("X-Accel-Buffering", "no")
	}
	if head {
		w.WriteHeader(http.StatusOK)
		if r.ProtoMajor == 3 {
			// quic-go's HTTP/3 server gives a head it sends after the
			// handler returned Content-Length: 0, HEAD or not; a stream has
			// no length, so its head goes now.
			http.NewResponseController(w).Flush() //nolint:errcheck // the client's to see
		}
	}
	return !head
}

// framingHeaders are the headers that say how a response is framed or how
// its connection is kept, which net/http, or the detached stream's writer,
// sets for a stream itself: a stream's response drops any that a wrapper
// of the handler set before it.
var framingHeaders = []string{"Connection", "Content-Length", "Keep-Alive", "Proxy-Connection", "Trailer", "Transfer-Encoding", "Upgrade"}

// streamPace is how one stream is written: one frame of at most maxFrame
// bytes every period, and a heartbeat comment after heartbeat of silence
// (none if 0).
type streamPace struct {
	period    time.Duration
	heartbeat time.Duration
	maxFrame  int
}

// buffers is the memory a stream at this pace may hold in buffers, as the
// stream memory budget counts it: the frame it builds, the copy it frames
// as a chunk or keeps unwritten, and what a stream holds besides.
func (p streamPace) buffers() int64 {
	return streamOverhead + 2*int64(p.maxFrame+detach.ChunkOverhead)
}

// streamOverhead is what any stream may hold besides its frames' buffers:
// its state, its context, its response head, its goroutine's stack (a
// stream on an event loop holds less: no goroutine, and a frame only while
// it waits for its client).
const streamOverhead = 4 << 10

// serveStream serves the stream of sched at pace, whose slot and buffers
// startStream took, and releases them when it ends. A detached stream
// (WithDetachedStreams) is written by the handler's detach.Server, on the
// hijacked connection, and serveStream returns at once; any other is
// written here, to w, until it ends or the request's context is done.
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request, pace streamPace, sched *schedule) {
	sched.h, sched.route, sched.buffers = h, r.Pattern, pace.buffers()
	sched.period, sched.heartbeat = pace.period, pace.heartbeat
	sched.stamp = clock.From(r.Context())
	sched.due = time.Now()
	if h.detached != nil && r.ProtoMajor == 1 && r.ProtoMinor == 1 && h.detached.Serve(w, sched, pace.maxFrame) {
		return
	}
	sched.End(h.writeStream(r.Context(), w, r, sched, pace.maxFrame))
}

// acquireStream takes one of the handler's stream slots, reporting false if
// all are taken. The count is exact however many requests race for slots.
func (h *Handler) acquireStream() bool {
	if h.streams.Add(1) > int64(h.maxStreams) {
		h.streams.Add(-1)
		return false
	}
	return true
}

func (h *Handler) releaseStream() { h.streams.Add(-1) }

// acquireBuffers takes n bytes of the streams' buffer budget, reporting
// false if they would take it past the budget. The count is exact however
// many requests race for it.
func (h *Handler) acquireBuffers(n int64) bool {
	if h.buffered.Add(n) > h.bufferBudget {
		h.buffered.Add(-n)
		return false
	}
	return true
}

func (h *Handler) releaseBuffers(n int64) {
	h.buffered.Add(-n)
	h.released.Add(n)
}

// StreamBuffers returns how many bytes of buffers the open streams hold, as
// the budget counts them (WithStreamMemory), and how many the streams that
// ended have held, in all, since the handler was made. A server that
// returns memory to the operating system when big streams end (Go's runtime
// does so only slowly, and only after a collection) can watch the second
// figure grow, as tickstream's runner does.
func (h *Handler) StreamBuffers() (open, released int64) {
	return h.buffered.Load(), h.released.Load()
}

// byteSize writes n bytes as people read them: 512 B, 64 KiB, 1.5 MiB.
func byteSize(n int64) string {
	unit, size := "MiB", float64(n)/(1<<20)
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		unit, size = "KiB", float64(n)/(1<<10)
	}
	return strings.TrimSuffix(strconv.FormatFloat(size, 'f', 1, 64), ".0") + " " + unit
}

// Streams returns the number of streams being served now.
func (h *Handler) Streams() int { return int(h.streams.Load()) }

// refuseStream answers a stream request beyond the limit. Browsers do not
// retry a 503 on their own; the page does, and other clients should honour
// Retry-After. An HTTP/1.x connection is closed after the answer, so that
// refused clients do not keep idle connections (and the server's file
// descriptors) while the streams they wait for hold theirs.
func (h *Handler) refuseStream(w http.ResponseWriter, r *http.Request, why string) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Retry-After", "1")
	writeError(w, r, http.StatusServiceUnavailable, why)
}

// streamEnded records why a stream ended early. A client that leaves or a
// server that shuts down is expected; a failed write (a client that went
// away or stopped reading) is logged at debug level only: it is routine for
// a server with many clients, and says nothing about the server.
func (h *Handler) streamEnded(route string, err error) {
	if endedCleanly(err) || errors.Is(err, detach.ErrClientLeft) { // a departure is no failed write
		return
	}
	h.logger.LogAttrs(context.Background(), slog.LevelDebug, "stream ended by a failed write",
		slog.String("route", route), slog.Any("err", err))
}

// endedCleanly reports whether a stream's error means it ended on an event
// boundary: it finished (nil), or its context ended it (the client left, or
// the server shuts down).
func endedCleanly(err error) bool {
	return err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// A schedule is one stream's events and when each is due: what the
// handler knows of a stream, whoever writes it (a stream.Source).
//
// Frames follow a fixed schedule: the n-th event is due n periods after
// the first, so time spent writing does not accumulate as drift, and a
// stream that falls more than a period behind (a slow client) restarts the
// schedule from now instead of sending a burst to catch up. A stream that
// would stay silent longer than the heartbeat period sends a comment in
// between, which keeps proxies with idle timeouts from closing the
// connection.
type schedule struct {
	due       time.Time // when the next event is due
	period    time.Duration
	heartbeat time.Duration    // 0: none
	stamp     func() time.Time // the clock of the events' timestamps
	kind      streamKind
	format    streamFormat
	id        int64         // the next event's id (or seq)
	end       int64         // ticks: the last id; burst: the count, the done event's id
	retry     time.Duration // sent with the first tick only
	size      int           // the least data an event carries

	h       *Handler
	route   string // the route's pattern, for the log
	buffers int64  // the budget the stream took (streamPace.buffers)
}

// A streamKind is what a schedule's events are.
type streamKind uint8

const (
	ticks streamKind = iota // /events: "tick" events, the last with id end
	burst                   // /stream/fast: events seq id to end-1, then "done"
)

// Next appends to dst the frame due at now: the next event, or a heartbeat
// if the event is not due yet. It returns the frame, when the next frame is
// due, and whether this one was the stream's last.
func (s *schedule) Next(dst []byte, now time.Time) (frame []byte, next time.Time, last bool) {
	if now.Before(s.due) {
		return append(dst, s.format.heartbeat()...), s.wake(now), false
	}
	switch s.kind {
	case ticks:
		dst = appendTick(dst, s.format, s.retry, s.id, s.stamp(), s.size)
		s.retry = 0
		last = s.id == s.end
	case burst:
		if s.id < s.end {
			dst = appendFast(dst, s.format, s.id, s.stamp(), s.size)
		} else {
			dst = appendDone(dst, s.format, s.end)
			last = true
		}
	}
	s.id++
	s.due = s.due.Add(s.period)
	if s.due.Before(now.Add(-s.period)) {
		s.due = now
	}
	return dst, s.wake(now), last
}

// wake is when the frame after one written at now is due: the next event,
// or a heartbeat if that is longer than the heartbeat period away.
func (s *schedule) wake(now time.Time) time.Time {
	if s.heartbeat > 0 && s.due.Sub(now) > s.heartbeat {
		return alignWake(now.Add(s.heartbeat))
	}
	return alignWake(s.due)
}

// End releases the stream's slot and buffers and records why it ended.
func (s *schedule) End(err error) {
	s.h.releaseStream()
	s.h.releaseBuffers(s.buffers)
	s.h.streamEnded(s.route, err)
}

// writeStream writes the frames of sched to w with the goroutine driver
// (stream.Write): each frame is written with a write deadline and flushed.
// It returns nil after the last frame, ctx's error as soon as ctx is done,
// or the error of a failed write; a writer that cannot flush or set
// deadlines (http.ErrNotSupported) is written to all the same. A writer
// that writes streams itself (a stream.Writer: the edge's) is given the
// stream instead.
func (h *Handler) writeStream(ctx context.Context, w http.ResponseWriter, r *http.Request, sched *schedule, maxFrame int) error {
	if sw, ok := w.(stream.Writer); ok {
		return sw.WriteStream(ctx, sched, maxFrame)
	}
	rw := &responseWriter{
		w:             w,
		rc:            http.NewResponseController(w),
		canFlush:      true,
		canDeadline:   h.writeTimeout > 0,
		clearDeadline: r.ProtoMajor >= 2,
		writeTimeout:  h.writeTimeout,
	}
	return stream.Write(ctx, sched, maxFrame, func(frame []byte, _ bool) error { return rw.send(frame) })
}

// A responseWriter writes whole frames to one response and flushes each.
// Each is written with a write deadline, so a client that stops reading is
// dropped after the write timeout instead of holding its slot forever.
type responseWriter struct {
	w           http.ResponseWriter
	rc          *http.ResponseController
	canFlush    bool // false once the writer has said it cannot flush
	canDeadline bool // false once the writer has said it has no deadlines
	// HTTP/2's write deadline resets the stream when it passes, even when
	// no write is pending, so there it is cleared after each write.
	clearDeadline bool
	deadline      time.Time // the write deadline set last
	writeTimeout  time.Duration
}

// send writes frame and flushes it to the client.
func (rw *responseWriter) send(frame []byte) error {
	if err := rw.armDeadline(); err != nil {
		return err
	}
	if _, err := rw.w.Write(frame); err != nil {
		return err
	}
	if rw.canFlush {
		err := rw.rc.Flush()
		if errors.Is(err, http.ErrNotSupported) {
			rw.canFlush = false
		} else if err != nil {
			return err
		}
	}
	if rw.clearDeadline && rw.canDeadline {
		rw.deadline = time.Time{}
		return rw.rc.SetWriteDeadline(rw.deadline)
	}
	return nil
}

// armDeadline makes sure the next write has between half and all of the
// write timeout to complete. Moving a deadline costs a runtime timer
// update, so it is moved only once less than half the timeout remains: a
// client that stops reading is dropped between half and all of the write
// timeout later.
func (rw *responseWriter) armDeadline() error {
	if !rw.canDeadline {
		return nil
	}
	now := time.Now()
	if rw.deadline.Sub(now) >= rw.writeTimeout/2 {
		return nil
	}
	rw.deadline = now.Add(rw.writeTimeout)
	err := rw.rc.SetWriteDeadline(rw.deadline)
	if errors.Is(err, http.ErrNotSupported) {
		rw.canDeadline = false
		return nil
	}
	return err
}

// parseLastEventID parses a Last-Event-ID header as the streams understand it:
// decimal digits only, at most maxEventID-1, so that the next id is in range.
// Anything else (empty, signs, spaces, hex, overflow) reports false.
func parseLastEventID(s string) (int64, bool) {
	if s == "" || len(s) > len("9007199254740991") {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n >= maxEventID {
		return 0, false
	}
	return n, true
}

// mustEncode returns the frame of a constant event, encoded at package
// initialisation.
func mustEncode(frame []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return frame
}
