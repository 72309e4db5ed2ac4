package handler

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tickstream/tickstream/sse"
)

// MaxEventID is the largest id /events sends: the largest integer a
// JavaScript number holds exactly, so browsers parse every id correctly.
const MaxEventID = 1<<53 - 1

// doneFrame ends /stream/fast.
var doneFrame = mustEncode(sse.Event{Type: "done", Data: "complete"})

// events serves GET /events: a "tick" event at once, then one per interval,
// until the request's context is done. A request carrying a valid
// Last-Event-ID resumes the numbering after it.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	setStreamHeaders(w.Header())
	w.Header().Set("X-Accel-Buffering", "no")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	id := int64(1)
	if last, ok := ParseLastEventID(r.Header.Get("Last-Event-ID")); ok {
		id = last + 1
	}

	s := newStream(w)
	ctx := r.Context()
	t := newTicker(h.interval)
	defer t.stop()
	retry := h.retry
	for ; id <= MaxEventID; id++ {
		s.buf = appendTick(s.buf[:0], retry, id, h.now())
		retry = 0
		if err := s.send(); err != nil {
			h.streamEnded(r, err)
			return
		}
		if err := t.wait(ctx); err != nil {
			return
		}
	}
}

// fast serves GET /stream/fast: events seq 0 to 99, fastDelay apart, then a
// "done" event after one more delay, and the response ends.
func (h *Handler) fast(w http.ResponseWriter, r *http.Request) {
	setStreamHeaders(w.Header())
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	s := newStream(w)
	ctx := r.Context()
	t := newTicker(h.fastDelay)
	defer t.stop()
	for seq := 0; seq < DefaultFastCount; seq++ {
		s.buf = appendFast(s.buf[:0], seq, h.now())
		if err := s.send(); err != nil {
			h.streamEnded(r, err)
			return
		}
		if err := t.wait(ctx); err != nil {
			return
		}
	}
	s.buf = append(s.buf[:0], doneFrame...)
	if err := s.send(); err != nil {
		h.streamEnded(r, err)
	}
}

// streamEnded records a stream that ended because a write failed: almost
// always a client that went away, so it is logged at debug level only.
func (h *Handler) streamEnded(r *http.Request, err error) {
	h.logger.LogAttrs(r.Context(), slog.LevelDebug, "stream ended by write error",
		slog.String("route", r.Pattern), slog.Any("err", err))
}

func setStreamHeaders(hdr http.Header) {
	hdr.Set("Content-Type", sse.ContentType)
	hdr.Set("Cache-Control", "no-cache")
}

// A stream writes whole frames to a response and flushes each one.
type stream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	flush bool   // false once the writer has said it cannot flush
	buf   []byte // the frame to send, reused for every frame
}

func newStream(w http.ResponseWriter) *stream {
	return &stream{
		w:     w,
		rc:    http.NewResponseController(w),
		flush: true,
		buf:   make([]byte, 0, 256),
	}
}

// send writes s.buf and flushes it to the client. A writer that cannot flush
// (http.ErrNotSupported) is written to all the same: it delivers the bytes
// when it can.
func (s *stream) send() error {
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	if !s.flush {
		return nil
	}
	if err := s.rc.Flush(); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			s.flush = false
			return nil
		}
		return err
	}
	return nil
}

// A ticker paces a stream on a fixed schedule: the n-th wait ends n periods
// after the ticker was made, so time spent writing does not accumulate as
// drift. A stream that falls more than a period behind (a slow client)
// restarts the schedule from now instead of sending a burst to catch up.
type ticker struct {
	period time.Duration
	next   time.Time
	timer  *time.Timer
}

func newTicker(period time.Duration) *ticker {
	return &ticker{period: period, next: time.Now()}
}

// wait blocks until the next scheduled time, or returns ctx's error as soon
// as ctx is done.
func (t *ticker) wait(ctx context.Context) error {
	t.next = t.next.Add(t.period)
	d := time.Until(t.next)
	if d < -t.period {
		t.next, d = time.Now(), 0
	}
	if t.timer == nil {
		t.timer = time.NewTimer(d)
	} else {
		t.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.timer.C:
		return nil
	}
}

func (t *ticker) stop() {
	if t.timer != nil {
		t.timer.Stop()
	}
}

// ParseLastEventID parses a Last-Event-ID header as /events understands it:
// decimal digits only, at most MaxEventID-1, so that the next id is in range.
// Anything else (empty, signs, spaces, hex, overflow) reports false.
func ParseLastEventID(s string) (int64, bool) {
	if s == "" || len(s) > len("9007199254740991") {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n >= MaxEventID {
		return 0, false
	}
	return n, true
}

// timestampLayout is RFC 3339 in UTC with exactly three fractional digits.
const timestampLayout = "2006-01-02T15:04:05.000Z"

// appendTick appends one /events frame. Every byte of it is a digit, a
// fixed ASCII string or a timestamp, so nothing in it can break the frame;
// it is written here rather than through sse.AppendEvent so that the tick
// path allocates nothing (the id would have to become a string).
func appendTick(dst []byte, retry time.Duration, id int64, ts time.Time) []byte {
	if retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, retry.Milliseconds(), 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, "id: "...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, "\nevent: tick\ndata: {\"id\":"...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"timestamp":"`...)
	dst = ts.UTC().AppendFormat(dst, timestampLayout)
	dst = append(dst, `","message":"Event #`...)
	dst = strconv.AppendInt(dst, id, 10)
	return append(dst, "\"}\n\n"...)
}

// appendFast appends one /stream/fast frame; like appendTick, it cannot
// break its frame.
func appendFast(dst []byte, seq int, ts time.Time) []byte {
	dst = append(dst, `data: {"seq":`...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, `,"ts":"`...)
	dst = ts.UTC().AppendFormat(dst, timestampLayout)
	return append(dst, "\"}\n\n"...)
}

// mustEncode encodes a constant event at package initialisation.
func mustEncode(ev sse.Event) []byte {
	b, err := sse.AppendEvent(nil, ev)
	if err != nil {
		panic(err)
	}
	return b
}
