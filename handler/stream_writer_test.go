package handler_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/clock"
	"github.com/tickstream/tickstream/internal/stream"
)

// aheadWriter is a response writer that writes streams itself
// (stream.Writer), as the edge's does: it asks for every frame at once,
// each for the time it is due, without waiting for any.
type aheadWriter struct {
	*httptest.ResponseRecorder
	dues []time.Duration // when each frame was due, from the first
}

func (w *aheadWriter) WriteStream(ctx context.Context, src stream.Source, frameSize int) error {
	w.WriteHeader(http.StatusOK)
	first := time.Now()
	for at := first; ; {
		frame, next, last := src.Next(nil, at)
		w.Body.Write(frame)
		w.dues = append(w.dues, at.Sub(first))
		if last {
			return nil
		}
		at = next
	}
}

// TestStreamWriterBuildsAhead: a response writer that writes streams
// itself is given the stream, and the frames it builds ahead, each for its
// due time, are the bytes the goroutine driver writes live, due on the
// same schedule; the stream's slot is free once it returns.
func TestStreamWriterBuildsAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := handler.New()
		stamp := func() time.Time { return time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC) }
		request := func() *http.Request {
			req := httptest.NewRequest("GET", "/stream/fast?count=3&delay=50ms", nil)
			return req.WithContext(clock.NewContext(req.Context(), stamp))
		}
		live := serveFor(h, request(), time.Second)
		ahead := &aheadWriter{ResponseRecorder: httptest.NewRecorder()}
		h.ServeHTTP(ahead, request())
		if diff := cmp.Diff(live.Body.String(), ahead.Body.String()); diff != "" {
			t.Errorf("frames built ahead (-live +ahead):\n%s", diff)
		}
		want := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond}
		if diff := cmp.Diff(want, ahead.dues); diff != "" {
			t.Errorf("frames' due times (-want +got):\n%s", diff)
		}
		if n := h.Streams(); n != 0 {
			t.Errorf("%d streams open after the writer returned; want 0", n)
		}
	})
}
