package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// TestBadParameters lists every kind of bad query the stream routes refuse,
// with the exact answer each gets.
func TestBadParameters(t *testing.T) {
	tests := []struct {
		target string
		want   string // the error message
	}{
		{"/events?interval=fast", `interval: "fast" is not a duration from 1ms to 1h (such as 250ms or 2s)`},
		{"/events?interval=0", `interval: "0" is not a duration from 1ms to 1h (such as 250ms or 2s)`},
		{"/events?interval=999us", `interval: "999us" is not a duration from 1ms to 1h (such as 250ms or 2s)`},
		{"/events?interval=-1s", `interval: "-1s" is not a duration from 1ms to 1h (such as 250ms or 2s)`},
		{"/events?interval=1h1ns", `interval: "1h1ns" is not a duration from 1ms to 1h (such as 250ms or 2s)`},
		{"/events?interval=10", `interval: "10" is not a duration from 1ms to 1h (such as 250ms or 2s)`},
		{"/events?interval=", `interval: "" is not a duration from 1ms to 1h (such as 250ms or 2s)`},
		{"/events?interval=1s&interval=2s", `interval: given 2 times; give it once`},
		{"/events?count=0", `count: "0" is not a whole number from 1 to 1000000`},
		{"/events?count=-5", `count: "-5" is not a whole number from 1 to 1000000`},
		{"/events?count=1000001", `count: "1000001" is not a whole number from 1 to 1000000`},
		{"/events?count=1e3", `count: "1e3" is not a whole number from 1 to 1000000`},
		{"/events?count=0x10", `count: "0x10" is not a whole number from 1 to 1000000`},
		{"/events?count=99999999999999999999999", `count: "99999999999999999999999" is not a whole number from 1 to 1000000`},
		{"/events?count=" + strings.Repeat("9", 100), `count: "` + strings.Repeat("9", 32) + `..." is not a whole number from 1 to 1000000`},
		{"/events?size=-1", `size: "-1" is not a whole number from 0 to 1048576`},
		{"/events?size=1048577", `size: "1048577" is not a whole number from 0 to 1048576`},
		{"/events?size=1k", `size: "1k" is not a whole number from 0 to 1048576`},
		{"/events?size=%201", `size: " 1" is not a whole number from 0 to 1048576`},
		{"/events?interval=%zz", `malformed query string: invalid URL escape "%zz"`},
		{"/events?count=%00", `count: "\x00" is not a whole number from 1 to 1000000`},
		{"/events?count=%ff", `count: "\xff" is not a whole number from 1 to 1000000`},
		{"/events?interval=bad&count=bad", `interval: "bad" is not a duration from 1ms to 1h (such as 250ms or 2s)`},
		{"/stream/fast?count=0", `count: "0" is not a whole number from 1 to 10000`},
		{"/stream/fast?count=10001", `count: "10001" is not a whole number from 1 to 10000`},
		{"/stream/fast?delay=-1ms", `delay: "-1ms" is not a duration from 0s to 1m (such as 250ms or 2s)`},
		{"/stream/fast?delay=61s", `delay: "61s" is not a duration from 0s to 1m (such as 250ms or 2s)`},
		{"/stream/fast?delay=soon", `delay: "soon" is not a duration from 0s to 1m (such as 250ms or 2s)`},
		{"/stream/fast?size=-1", `size: "-1" is not a whole number from 0 to 1048576`},
		{"/stream/fast?size=1048577", `size: "1048577" is not a whole number from 0 to 1048576`},
		{"/events?heartbeat=500ms", `heartbeat: "500ms" is not 0 (none) or a duration from 1s to 1h (such as 30s)`},
		{"/events?heartbeat=-1s", `heartbeat: "-1s" is not 0 (none) or a duration from 1s to 1h (such as 30s)`},
		{"/events?heartbeat=1h1s", `heartbeat: "1h1s" is not 0 (none) or a duration from 1s to 1h (such as 30s)`},
		{"/stream/fast?heartbeat=off", `heartbeat: "off" is not 0 (none) or a duration from 1s to 1h (such as 30s)`},
	}
	for _, tt := range tests {
		for _, method := range []string{"GET", "HEAD"} {
			rec := httptest.NewRecorder()
			handler.New().ServeHTTP(rec, httptest.NewRequest(method, tt.target, nil))
			body, _ := json.Marshal(map[string]string{"error": tt.want})
			header := http.Header{
				"Content-Type":           {"application/json"},
				"Content-Length":         {fmt.Sprint(len(body))},
				"X-Content-Type-Options": {"nosniff"},
			}
			if method == "HEAD" {
				body = nil
			}
			want := wiretest.Dump(400, header, body)
			if diff := cmp.Diff(string(want), string(wiretest.Dump(rec.Code, rec.Result().Header, rec.Body.Bytes()))); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", method, tt.target, diff)
			}
		}
	}
}

// TestUnknownParametersIgnored: parameters a route does not know change
// nothing.
func TestUnknownParametersIgnored(t *testing.T) {
	var bodies []string
	for _, target := range []string{"/events", "/events?foo=bar&delay=5s&seq=2&Count=1"} {
		synctest.Test(t, func(t *testing.T) {
			rec := serveFor(handler.New(), httptest.NewRequest("GET", target, nil), 2500*time.Millisecond)
			bodies = append(bodies, rec.Body.String())
		})
	}
	if diff := cmp.Diff(bodies[0], bodies[1]); diff != "" {
		t.Errorf("unknown parameters changed the stream (-without +with):\n%s", diff)
	}
}

// TestEventsParameters checks count, interval and size together: the stream
// ends by itself after count events, interval apart.
func TestEventsParameters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newFlushRecorder()
		start := time.Now()
		handler.New(handler.WithRetry(0)).ServeHTTP(rec, httptest.NewRequest("GET", "/events?interval=250ms&count=3", nil))
		if elapsed := time.Since(start); elapsed != 500*time.Millisecond {
			t.Errorf("3 events 250ms apart took %v, want 500ms", elapsed)
		}
		var got []string
		for _, f := range rec.flushes {
			got = append(got, fmt.Sprintf("%v %s", f.At, wiretest.Events([]byte(f.Bytes))[0].ID))
		}
		if diff := cmp.Diff([]string{"0s 1", "250ms 2", "500ms 3"}, got); diff != "" {
			t.Errorf("flushes (-want +got):\n%s", diff)
		}
	})
}

// TestEventsSize checks that size pads every tick's data to at least size
// bytes, to exactly size when a "pad" member fits, and keeps it valid JSON.
func TestEventsSize(t *testing.T) {
	const natural = len(`{"id":1,"timestamp":"2000-01-01T00:00:00.000Z","message":"Event #1"}`)
	tests := []struct {
		size, want int
	}{
		{0, natural},
		{natural, natural},
		{natural + 1, natural + len(`,"pad":""`)}, // the smallest pad member
		{natural + len(`,"pad":""`), natural + len(`,"pad":""`)},
		{1024, 1024},
		{65536, 65536},
		{1 << 20, 1 << 20},
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			rec := httptest.NewRecorder()
			handler.New().ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/events?count=1&size=%d", tt.size), nil))
			events := wiretest.Events(rec.Body.Bytes())
			if len(events) != 1 {
				t.Fatalf("size=%d: %d events, want 1", tt.size, len(events))
			}
			data := events[0].Data
			if len(data) != tt.want {
				t.Errorf("size=%d: data is %d bytes, want %d", tt.size, len(data), tt.want)
			}
			var tick struct {
				ID        int    `json:"id"`
				Timestamp string `json:"timestamp"`
				Message   string `json:"message"`
				Pad       string `json:"pad"`
			}
			if err := json.Unmarshal([]byte(data), &tick); err != nil || tick.ID != 1 || tick.Message != "Event #1" {
				t.Errorf("size=%d: data %.80q... is not a valid tick: %v", tt.size, data, err)
			}
		})
	}
}

// TestFastSize: ?size= pads each /stream/fast event's data to that many
// bytes, as it does /events', so that a proxy's buffer size shows on a
// stream without X-Accel-Buffering.
func TestFastSize(t *testing.T) {
	const natural = len(`{"seq":0,"ts":"2000-01-01T00:00:00.000Z"}`)
	for _, tt := range []struct{ size, want int }{
		{0, natural},
		{natural + 1, natural + len(`,"pad":""`)},
		{1024, 1024},
		{1 << 20, 1 << 20},
	} {
		synctest.Test(t, func(t *testing.T) {
			rec := httptest.NewRecorder()
			handler.New().ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/stream/fast?count=1&delay=0s&size=%d", tt.size), nil))
			events := wiretest.Events(rec.Body.Bytes())
			if len(events) != 2 || events[1].Type != "done" {
				t.Fatalf("size=%d: %d events, want 1 and done", tt.size, len(events))
			}
			data := events[0].Data
			if len(data) != tt.want {
				t.Errorf("size=%d: data is %d bytes, want %d", tt.size, len(data), tt.want)
			}
			var ev struct {
				Seq *int   `json:"seq"`
				TS  string `json:"ts"`
			}
			if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Seq == nil || *ev.Seq != 0 || ev.TS != "2000-01-01T00:00:00.000Z" {
				t.Errorf("size=%d: data %.80q... is not a valid event: %v", tt.size, data, err)
			}
		})
	}
}

// TestHeartbeatParameter: ?heartbeat= sets one stream's heartbeat period;
// 0 turns heartbeats off, so that the check can find a path's idle timeout.
func TestHeartbeatParameter(t *testing.T) {
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"heartbeat=0", []string{"0s tick", "1m0s tick"}},
		{"heartbeat=20s", []string{"0s tick", "20s comment", "40s comment", "1m0s tick"}},
	} {
		synctest.Test(t, func(t *testing.T) {
			h := handler.New(handler.WithHeartbeat(15 * time.Second))
			rec := recordFlushes(h, "/events?interval=1m&count=2&"+tt.query, 2*time.Minute)
			var got []string
			for _, f := range rec.flushes {
				kind := "comment"
				if wiretest.Parse([]byte(f.Bytes))[0].Dispatched {
					kind = "tick"
				}
				got = append(got, fmt.Sprintf("%v %s", f.At, kind))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s: flushes (-want +got):\n%s", tt.query, diff)
			}
		})
	}
}

func TestFastParameters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newFlushRecorder()
		handler.New().ServeHTTP(rec, httptest.NewRequest("GET", "/stream/fast?count=3&delay=1s", nil))
		var got []string
		for _, f := range rec.flushes {
			ev := wiretest.Events([]byte(f.Bytes))[0]
			got = append(got, fmt.Sprintf("%v %s %s", f.At, ev.Type, ev.Data))
		}
		want := []string{
			`0s  {"seq":0,"ts":"2000-01-01T00:00:00.000Z"}`,
			`1s  {"seq":1,"ts":"2000-01-01T00:00:01.000Z"}`,
			`2s  {"seq":2,"ts":"2000-01-01T00:00:02.000Z"}`,
			`3s done complete`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("flushes (-want +got):\n%s", diff)
		}
	})
}

// TestStreamLimit starts a burst of concurrent streams against a limit of
// 5: exactly 5 are served and the rest get 503, while /health and the page
// answer. When the streams end, their slots are free again.
func TestStreamLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := handler.New(handler.WithMaxStreams(5))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		recs := make([]*httptest.ResponseRecorder, 40)
		for i := range recs {
			recs[i] = httptest.NewRecorder()
			path := []string{"/events", "/stream/fast"}[i%2]
			wg.Go(func() { h.ServeHTTP(recs[i], httptest.NewRequestWithContext(ctx, "GET", path, nil)) })
		}
		synctest.Wait()
		if got := h.Streams(); got != 5 {
			t.Errorf("Streams() = %d with a limit of 5", got)
		}
		for _, path := range []string{"/health", "/", "/page.js"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code != 200 {
				t.Errorf("GET %s at the stream limit: %d, want 200", path, rec.Code)
			}
		}
		cancel()
		wg.Wait()

		codes := map[int]int{}
		for _, rec := range recs {
			codes[rec.Code]++
			if rec.Code == http.StatusServiceUnavailable {
				want := refusal(`{"error":"too many open streams (limit 5); retry later"}`)
				if diff := cmp.Diff(string(want), string(wiretest.Dump(rec.Code, rec.Result().Header, rec.Body.Bytes()))); diff != "" {
					t.Errorf("refused stream (-want +got):\n%s", diff)
				}
				// The refused client's connection is not kept (a transport
				// header: golden dumps leave it out).
				if got := rec.Header().Get("Connection"); got != "close" {
					t.Errorf("refused stream: Connection %q, want close", got)
				}
			}
		}
		if diff := cmp.Diff(map[int]int{200: 5, 503: 35}, codes); diff != "" {
			t.Errorf("status codes of 40 concurrent streams (-want +got):\n%s", diff)
		}
		if got := h.Streams(); got != 0 {
			t.Errorf("Streams() = %d after every stream ended", got)
		}
		rec := serveFor(h, httptest.NewRequest("GET", "/events", nil), time.Second)
		if rec.Code != 200 {
			t.Errorf("a stream after the others ended: %d, want 200", rec.Code)
		}
	})
}

// refusal is the dump of a stream refused with 503 and body.
func refusal(body string) []byte {
	return wiretest.Dump(503, http.Header{
		"Content-Length":         {fmt.Sprint(len(body))},
		"Content-Type":           {"application/json"},
		"Retry-After":            {"1"},
		"X-Content-Type-Options": {"nosniff"},
	}, []byte(body))
}

// TestStreamMemory: the open streams hold at most the memory budget in
// buffers, however they are asked for. With 6 MiB, two streams of 1 MiB
// events fit (about 2 MiB each) and a third gets 503 saying why, while
// small streams, /health and the page still answer; once the big streams
// end, their budget is free again.
func TestStreamMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := handler.New(handler.WithStreamMemory(6 << 20))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		big := make([]*httptest.ResponseRecorder, 3)
		for i := range big {
			big[i] = httptest.NewRecorder()
			wg.Go(func() {
				h.ServeHTTP(big[i], httptest.NewRequestWithContext(ctx, "GET", "/events?size=1048576", nil))
			})
			synctest.Wait()
		}
		// Each: 4 KiB, and twice its largest frame (1 MiB and 151 bytes of
		// retry, id and fields) as a chunk (20 bytes of framing at most).
		perStream := int64(4<<10 + 2*(1048576+151+20))
		if got, _ := h.StreamBuffers(); got != 2*perStream {
			t.Errorf("StreamBuffers() = %d with two 1 MiB streams, want %d", got, 2*perStream)
		}
		small := serveFor(h, httptest.NewRequest("GET", "/stream/fast?count=2", nil), time.Second)
		health := serveFor(h, httptest.NewRequest("GET", "/health", nil), 0)
		if small.Code != 200 || health.Code != 200 {
			t.Errorf("beside the big streams: a small stream %d, /health %d; want 200 and 200", small.Code, health.Code)
		}
		cancel()
		wg.Wait()
		want := refusal(`{"error":"not enough stream memory: a stream of 1 MiB events needs 2 MiB of buffers, and the open streams hold 4 MiB of the 6 MiB the server gives them; retry later, or ask for smaller events (size)"}`)
		if diff := cmp.Diff(string(want), string(wiretest.Dump(big[2].Code, big[2].Result().Header, big[2].Body.Bytes()))); diff != "" {
			t.Errorf("the third big stream (-want +got):\n%s", diff)
		}
		if big[0].Code != 200 || big[1].Code != 200 {
			t.Errorf("the first two big streams: %d and %d, want 200", big[0].Code, big[1].Code)
		}
		if open, released := h.StreamBuffers(); open != 0 || released < 2*perStream || h.Streams() != 0 {
			t.Errorf("StreamBuffers() = %d, %d and Streams() = %d after every stream ended, want 0, at least %d, 0", open, released, h.Streams(), 2*perStream)
		}
		if rec := serveFor(h, httptest.NewRequest("GET", "/events?size=1048576", nil), time.Second); rec.Code != 200 {
			t.Errorf("a big stream after the others ended: %d, want 200", rec.Code)
		}
	})
}

// stallingWriter imitates a connection whose client stopped reading: every
// write after the first n blocks until the write deadline, then fails as
// net/http's does.
type stallingWriter struct {
	*httptest.ResponseRecorder
	n        int
	deadline time.Time
}

func (s *stallingWriter) SetWriteDeadline(t time.Time) error { s.deadline = t; return nil }

func (s *stallingWriter) Write(b []byte) (int, error) {
	if s.n > 0 {
		s.n--
		return s.ResponseRecorder.Write(b)
	}
	if s.deadline.IsZero() {
		select {} // stuck forever: the test fails with a deadlock
	}
	time.Sleep(time.Until(s.deadline))
	return 0, os.ErrDeadlineExceeded
}

// TestStalledReaderDropped: a stream whose client stops reading ends one
// write timeout after the write that stalls, and frees its slot.
func TestStalledReaderDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := handler.New(handler.WithWriteTimeout(3*time.Second), handler.WithMaxStreams(1))
		w := &stallingWriter{ResponseRecorder: httptest.NewRecorder(), n: 2}
		start := time.Now()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/events", nil))
		// Writes at 0s and 1s succeed; the one at 2s stalls until 5s.
		if elapsed := time.Since(start); elapsed != 5*time.Second {
			t.Errorf("stalled stream ended after %v, want 5s", elapsed)
		}
		if h.Streams() != 0 {
			t.Errorf("Streams() = %d after the stalled stream ended", h.Streams())
		}
	})
}

// TestHeartbeats: a stream whose next event is further away than the
// heartbeat period sends a comment each period, and none otherwise.
func TestHeartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := handler.New(handler.WithHeartbeat(15*time.Second), handler.WithRetry(0))
		rec := recordFlushes(h, "/events?interval=1m", 80*time.Second)

		var got []string
		for _, f := range rec.flushes {
			blocks := wiretest.Parse([]byte(f.Bytes))
			if len(blocks) != 1 {
				t.Fatalf("flush at %v holds %d frames", f.At, len(blocks))
			}
			if blocks[0].Dispatched {
				got = append(got, fmt.Sprintf("%v tick %s", f.At, blocks[0].Event.ID))
			} else {
				got = append(got, fmt.Sprintf("%v %q", f.At, f.Bytes))
			}
		}
		want := []string{
			"0s tick 1", `15s ": keepalive\n\n"`, `30s ": keepalive\n\n"`, `45s ": keepalive\n\n"`,
			"1m0s tick 2", `1m15s ": keepalive\n\n"`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("flushes (-want +got):\n%s", diff)
		}
	})
}

func TestNoHeartbeatsBetweenFrequentEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := serveFor(handler.New(handler.WithHeartbeat(time.Second)), httptest.NewRequest("GET", "/events", nil), 30*time.Second)
		for _, b := range wiretest.Parse(rec.Body.Bytes()) {
			if !b.Dispatched {
				t.Fatalf("a heartbeat in a stream with an event every second: %+v", b)
			}
		}
	})
}

// TestCORS checks that CORS is off by default and, when on, answers only
// the listed origins.
func TestCORS(t *testing.T) {
	type result struct {
		Code                                 int
		AllowOrigin, AllowMethods, Vary, Err string
	}
	preflight := func(origin, path string) *http.Request {
		r := httptest.NewRequest("OPTIONS", path, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "GET")
		r.Header.Set("Access-Control-Request-Headers", "last-event-id")
		return r
	}
	get := func(origin string) *http.Request {
		r := httptest.NewRequest("GET", "/health", nil)
		r.Header.Set("Origin", origin)
		return r
	}
	allowed := handler.New(handler.WithAllowedOrigins("https://app.example"))
	anyOrigin := handler.New(handler.WithAllowedOrigins("*"))
	tests := []struct {
		name string
		h    *handler.Handler
		req  *http.Request
		want result
	}{
		{"off: GET", handler.New(), get("https://app.example"), result{Code: 200}},
		{"off: preflight", handler.New(), preflight("https://app.example", "/events"),
			result{Code: 405, Err: "method OPTIONS not allowed; use GET, HEAD or POST"}},
		{"listed origin: GET", allowed, get("https://app.example"),
			result{Code: 200, AllowOrigin: "https://app.example", Vary: "Origin"}},
		{"listed origin: preflight", allowed, preflight("https://app.example", "/events"),
			result{Code: 204, AllowOrigin: "https://app.example", AllowMethods: "GET, HEAD, POST", Vary: "Origin"}},
		{"listed origin: preflight of /health", allowed, preflight("https://app.example", "/health"),
			result{Code: 204, AllowOrigin: "https://app.example", AllowMethods: "GET, HEAD", Vary: "Origin"}},
		{"listed origin: preflight of unknown path", allowed, preflight("https://app.example", "/nope"),
			result{Code: 404, AllowOrigin: "https://app.example", Vary: "Origin", Err: "no route for path /nope"}},
		{"other origin: GET", allowed, get("https://evil.example"), result{Code: 200, Vary: "Origin"}},
		{"other origin: preflight", allowed, preflight("https://evil.example", "/events"),
			result{Code: 405, Vary: "Origin", Err: "method OPTIONS not allowed; use GET, HEAD or POST"}},
		{"origin differing in case", allowed, get("https://APP.example"), result{Code: 200, Vary: "Origin"}},
		{"no origin", allowed, httptest.NewRequest("GET", "/health", nil), result{Code: 200, Vary: "Origin"}},
		{"any origin", anyOrigin, get("https://x.example"), result{Code: 200, AllowOrigin: "*", Vary: "Origin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, tt.req)
			got := result{
				Code:         rec.Code,
				AllowOrigin:  rec.Header().Get("Access-Control-Allow-Origin"),
				AllowMethods: rec.Header().Get("Access-Control-Allow-Methods"),
				Vary:         rec.Header().Get("Vary"),
			}
			if rec.Code >= 400 {
				var body struct{ Error string }
				json.Unmarshal(rec.Body.Bytes(), &body)
				got.Err = body.Error
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRequestBodyRefused: only a POST to a stream route takes a body. Any
// other request that announces one gets 400 (or the 404 or 405 it would get anyway) and, over HTTP/1.x,
// Connection: close; the body is never read.
func TestRequestBodyRefused(t *testing.T) {
	for _, tt := range []struct {
		method, target string
		status         int
		header         http.Header
		msg            string
	}{
		{"GET", "/health", 400, nil, "request body not allowed: only POST /events and POST /stream/fast take one"},
		{"GET", "/events", 400, nil, "request body not allowed: only POST /events and POST /stream/fast take one"},
		{"HEAD", "/stream/fast", 400, nil, "request body not allowed: only POST /events and POST /stream/fast take one"},
		{"POST", "/health", 405, http.Header{"Allow": {"GET, HEAD"}}, "method POST not allowed; use GET or HEAD"},
		{"GET", "/upload", 404, nil, "no route for path /upload"},
	} {
		req := httptest.NewRequest(tt.method, tt.target, strings.NewReader("hello"))
		body := &readCounter{Reader: strings.NewReader("hello")}
		req.Body = body
		rec := httptest.NewRecorder()
		handler.New().ServeHTTP(rec, req)
		msg, _ := json.Marshal(map[string]string{"error": tt.msg})
		header := http.Header{
			"Content-Type":           {"application/json"},
			"Content-Length":         {fmt.Sprint(len(msg))},
			"X-Content-Type-Options": {"nosniff"},
		}
		for k, v := range tt.header {
			header[k] = v
		}
		if tt.method == "HEAD" {
			msg = nil
		}
		want := wiretest.Dump(tt.status, header, msg)
		if diff := cmp.Diff(string(want), string(wiretest.Dump(rec.Code, rec.Result().Header, rec.Body.Bytes()))); diff != "" {
			t.Errorf("%s %s with a body (-want +got):\n%s", tt.method, tt.target, diff)
		}
		// A transport header, which golden dumps leave out.
		if got := rec.Header().Get("Connection"); got != "close" {
			t.Errorf("%s %s with a body: Connection %q, want close", tt.method, tt.target, got)
		}
		if body.n != 0 {
			t.Errorf("%s %s: %d bytes of the body read, want none", tt.method, tt.target, body.n)
		}
	}
}

// TestHTTP3GetWithUnknownLength: over HTTP/3 a GET's length is unknown
// until its stream ends, and servers (quic-go's http3) give it
// ContentLength -1 and a body; it is served, its body unread, while one
// whose Content-Length announces a body is refused as over TCP.
func TestHTTP3GetWithUnknownLength(t *testing.T) {
	for _, tt := range []struct {
		length int64
		status int
	}{{-1, 200}, {5, 400}} {
		req := httptest.NewRequest("GET", "/health", nil)
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/3.0", 3, 0
		body := &readCounter{Reader: strings.NewReader("hello")}
		req.Body, req.ContentLength = body, tt.length
		rec := httptest.NewRecorder()
		handler.New().ServeHTTP(rec, req)
		if rec.Code != tt.status || body.n != 0 {
			t.Errorf("HTTP/3 GET /health with ContentLength %d: %d, %d body bytes read; want %d, none read", tt.length, rec.Code, body.n, tt.status)
		}
	}
}

// readCounter counts the bytes read from it.
type readCounter struct {
	io.Reader
	n int
}

func (r *readCounter) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	r.n += n
	return n, err
}

func (r *readCounter) Close() error { return nil }

// TestPostBodies lists what a POST stream's body may be and what each bad
// one gets: the members set the query's parameters, and a body that is not
// a JSON object of them is refused with the reason.
func TestPostBodies(t *testing.T) {
	for _, tt := range []struct {
		target, body string
		status       int
		want         string // the error message, or the stream's first event's data
	}{
		{"/stream/fast", ``, 200, `{"seq":0,"ts":"2000-01-01T00:00:00.000Z"}`},
		{"/stream/fast", ` {} `, 200, `{"seq":0,"ts":"2000-01-01T00:00:00.000Z"}`},
		{"/stream/fast", `null`, 200, `{"seq":0,"ts":"2000-01-01T00:00:00.000Z"}`},
		{"/stream/fast", `{"size":60}`, 200, `{"seq":0,"ts":"2000-01-01T00:00:00.000Z","pad":".........."}`},
		{"/stream/fast?size=60", `{"size":60}`, 200, `{"seq":0,"ts":"2000-01-01T00:00:00.000Z","pad":".........."}`},
		{"/stream/fast?delay=50ms", `{"delay":"0.05s"}`, 200, `{"seq":0,"ts":"2000-01-01T00:00:00.000Z"}`},
		{"/events", `{"count":"2"}`, 200, `{"id":1,"timestamp":"2000-01-01T00:00:00.000Z","message":"Event #1"}`},
		{"/stream/fast?size=60", `{"size":61}`, 400, `size: the query says "60" and the body "61"; give it once`},
		{"/stream/fast?count=0", `{"count":1}`, 400, `count: "0" is not a whole number from 1 to 10000`},
		{"/stream/fast", `{"count":0}`, 400, `request body: count: "0" is not a whole number from 1 to 10000`},
		{"/stream/fast", `{"count":2.5}`, 400, `request body: count: "2.5" is not a whole number from 1 to 10000`},
		{"/stream/fast", `{"delay":50}`, 400, `request body: delay: "50" is not a duration from 0s to 1m (such as 250ms or 2s)`},
		{"/stream/fast", `{"count":true}`, 400, `request body: count: want a number or a string`},
		{"/stream/fast", `{"count":[1]}`, 400, `request body: count: want a number or a string`},
		{"/stream/fast", `{"interval":"1s"}`, 400, `request body: unknown member "interval"; the members are count, delay, size, heartbeat, format`},
		{"/events", `{"delay":"1s"}`, 400, `request body: unknown member "delay"; the members are interval, count, size, heartbeat, format`},
		{"/events", `[{"count":1}]`, 400, `request body: want a JSON object such as {"count":20}, not array`},
		{"/events", `"count=1"`, 400, `request body: want a JSON object such as {"count":20}, not string`},
		{"/events", `{"count":1`, 400, `request body: invalid JSON: unexpected EOF`},
		{"/events", `{"count":1} {"count":2}`, 400, `request body: invalid JSON: more than one value`},
		{"/events", `count=1`, 400, `request body: invalid JSON: invalid character 'c' looking for beginning of value`},
		{"/events", `{"count":1}` + strings.Repeat(" ", 64<<10), 413, `request body over 64 KiB; send a JSON object such as {"count":20}`},
	} {
		synctest.Test(t, func(t *testing.T) {
			req := httptest.NewRequest("POST", tt.target, strings.NewReader(tt.body))
			rec := serveFor(handler.New(), req, 10*time.Millisecond)
			got := ""
			if rec.Code == 200 {
				if events := wiretest.Events(rec.Body.Bytes()); len(events) > 0 {
					got = events[0].Data
				}
			} else {
				var body struct{ Error string }
				json.Unmarshal(rec.Body.Bytes(), &body)
				got = body.Error
			}
			if rec.Code != tt.status || got != tt.want {
				t.Errorf("POST %s %.40q: %d %q, want %d %q", tt.target, tt.body, rec.Code, got, tt.status, tt.want)
			}
		})
	}
}

// TestPostStreamsAsGet: a POST whose body sets the parameters streams the
// same bytes as the GET whose query does.
func TestPostStreamsAsGet(t *testing.T) {
	for _, tt := range []struct{ get, post, body string }{
		{"/stream/fast?count=3&delay=10ms&size=80", "/stream/fast", `{"count":3,"delay":"10ms","size":80}`},
		{"/events?count=3&interval=250ms&heartbeat=0", "/events?heartbeat=0", `{"count":3,"interval":"250ms"}`},
	} {
		var bodies [2]string
		for i, req := range []*http.Request{
			httptest.NewRequest("GET", tt.get, nil),
			httptest.NewRequest("POST", tt.post, strings.NewReader(tt.body)),
		} {
			synctest.Test(t, func(t *testing.T) {
				bodies[i] = serveFor(handler.New(), req, time.Hour).Body.String()
			})
		}
		if bodies[0] == "" || bodies[0] != bodies[1] {
			t.Errorf("GET %s and POST %s %s differ:\n%s\n%s", tt.get, tt.post, tt.body, bodies[0], bodies[1])
		}
	}
}

// TestPostRefusedForItsQuery: a POST stream whose query is bad is refused
// without its body being read, and over HTTP/1.x its connection is closed,
// as every refused body's is.
func TestPostRefusedForItsQuery(t *testing.T) {
	for _, target := range []string{"/stream/fast?count=0", "/events?interval=%zz"} {
		req := httptest.NewRequest("POST", target, nil)
		body := &readCounter{Reader: strings.NewReader(`{"size":10}`)}
		req.Body, req.ContentLength = body, 11
		rec := httptest.NewRecorder()
		handler.New().ServeHTTP(rec, req)
		if rec.Code != 400 || rec.Header().Get("Connection") != "close" || body.n != 0 {
			t.Errorf("POST %s: %d, Connection %q, %d body bytes read; want 400, close, none", target, rec.Code, rec.Header().Get("Connection"), body.n)
		}
	}
}
