//go:build js && wasm && edgetest

package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/clock"
)

// The tests' build (-tags edgetest) serves the golden files' requests as
// local's tests do: streams without a pause between events (an interval of
// 1 ms, bursts without delay, unless the request asks otherwise), stamped
// by a clock that starts at 2000-01-01T00:00:00Z and steps by the duration
// in the request's X-Tickstream-Clock-Step header on every reading.
func testOptions() []handler.Option {
	return []handler.Option{handler.WithInterval(time.Millisecond), handler.WithFastDelay(0)}
}

// testHandler adds the routes of the tests of what breaks a response:
// GET /test/panic, whose handler panics before it answers;
// /test/panic-streamed, after it flushed an event; /test/panic-unflushed,
// after it wrote one; and /test/exit, which flushes an event and ends the
// Go instance.
func testHandler(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /test/panic", func(http.ResponseWriter, *http.Request) { panic("a test's panic") })
	event := func(w http.ResponseWriter, flush bool) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n") //nolint:errcheck // the test reads it
		if flush {
			http.NewResponseController(w).Flush() //nolint:errcheck // the test reads it
		}
	}
	mux.HandleFunc("GET /test/panic-streamed", func(w http.ResponseWriter, _ *http.Request) {
		event(w, true)
		panic("a test's panic mid-stream")
	})
	mux.HandleFunc("GET /test/panic-unflushed", func(w http.ResponseWriter, _ *http.Request) {
		event(w, false)
		panic("a test's panic before a flush")
	})
	mux.HandleFunc("GET /test/exit", func(w http.ResponseWriter, _ *http.Request) {
		event(w, true)
		os.Exit(3)
	})
	mux.Handle("/", h)
	return mux
}

func testContext(ctx context.Context, r *http.Request) context.Context {
	step, err := time.ParseDuration(r.Header.Get("X-Tickstream-Clock-Step"))
	if err != nil {
		return ctx
	}
	var mu sync.Mutex
	next := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	return clock.NewContext(ctx, func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := next
		next = next.Add(step)
		return now
	})
}
