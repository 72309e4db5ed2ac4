package handler_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/clock"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// TestGolden serves every golden case with fake time and compares the exact
// response. For an endless stream the client leaves half a period after the
// last frame it reads.
func TestGolden(t *testing.T) {
	for _, gc := range wiretest.Cases {
		t.Run(gc.File, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				req := httptest.NewRequest(gc.Method, gc.Path, strings.NewReader(gc.Body))
				req.Header = gc.Request("").Header
				run := time.Hour // long enough for any stream that ends by itself
				if gc.Units() > 0 {
					run = time.Duration(gc.Units())*gc.Period - gc.Period/2
				}
				rec := serveFor(handler.New(), req, run)
				got := wiretest.Dump(rec.Code, rec.Result().Header, rec.Body.Bytes())
				wiretest.Golden(t, filepath.Join("testdata", gc.File), got)
			})
		})
	}
}

// serveFor serves req in a goroutine of the current synctest bubble, lets
// the fake clock run for d, then cancels the request, as a client that
// leaves does, and waits for the handler to return.
func serveFor(h http.Handler, req *http.Request, d time.Duration) *httptest.ResponseRecorder {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, req.WithContext(ctx))
	}()
	time.Sleep(d)
	cancel()
	<-done
	return rec
}

// flushRecorder records, for every flush, the fake time since the request
// began and the bytes written since the previous flush.
type flushRecorder struct {
	*httptest.ResponseRecorder
	start   time.Time
	written int
	flushes []flush
}

type flush struct {
	At    time.Duration
	Bytes string
}

func newFlushRecorder() *flushRecorder {
	return &flushRecorder{ResponseRecorder: httptest.NewRecorder(), start: time.Now()}
}

// recordFlushes serves target with h in the current synctest bubble for d of
// fake time, then cancels the request and returns what was flushed.
func recordFlushes(h http.Handler, target string, d time.Duration) *flushRecorder {
	rec := newFlushRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", target, nil))
	}()
	time.Sleep(d)
	cancel()
	<-done
	return rec
}

func (f *flushRecorder) Flush() {
	body := f.Body.String()
	f.flushes = append(f.flushes, flush{At: time.Since(f.start), Bytes: body[f.written:]})
	f.written = len(body)
	f.ResponseRecorder.Flush()
}

// TestEventsFlushedOnSchedule proves that /events writes one whole event at
// once and then one per interval, each flushed on its own.
func TestEventsFlushedOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := handler.New(handler.WithInterval(250 * time.Millisecond))
		rec := recordFlushes(h, "/events", 900*time.Millisecond)

		var want []flush
		for i := range 4 {
			at := time.Duration(i) * 250 * time.Millisecond
			frame := fmt.Sprintf("id: %d\nevent: tick\ndata: {\"id\":%d,\"timestamp\":\"%s\",\"message\":\"Event #%d\"}\n\n",
				i+1, i+1, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(at).Format("2006-01-02T15:04:05.000Z"), i+1)
			if i == 0 {
				frame = "retry: 1000\n" + frame
			}
			want = append(want, flush{At: at, Bytes: frame})
		}
		if diff := cmp.Diff(want, rec.flushes); diff != "" {
			t.Errorf("flushes (-want +got):\n%s", diff)
		}
	})
}

// TestFastFlushedOnSchedule proves that /stream/fast sends 100 events 50 ms
// apart, each flushed on its own and with its seq as id, then "done" (id
// 100) and the end of the response.
func TestFastFlushedOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newFlushRecorder()
		handler.New().ServeHTTP(rec, httptest.NewRequest("GET", "/stream/fast", nil))

		var want []flush
		start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		for seq := range 100 {
			at := time.Duration(seq) * 50 * time.Millisecond
			want = append(want, flush{At: at, Bytes: fmt.Sprintf("id: %d\ndata: {\"seq\":%d,\"ts\":\"%s\"}\n\n",
				seq, seq, start.Add(at).Format("2006-01-02T15:04:05.000Z"))})
		}
		want = append(want, flush{At: 5 * time.Second, Bytes: "id: 100\nevent: done\ndata: complete\n\n"})
		if diff := cmp.Diff(want, rec.flushes); diff != "" {
			t.Errorf("flushes (-want +got):\n%s", diff)
		}
	})
}

// TestClock shows that the clock a request's context carries (which only
// tickstream's own tests can set) stamps every event, in UTC.
func TestClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stamp := time.Date(2024, 2, 29, 23, 59, 59, 999_000_000, time.FixedZone("X", 3600))
		h := handler.New(handler.WithRetry(0))
		req := httptest.NewRequest("GET", "/events", nil)
		req = req.WithContext(clock.NewContext(req.Context(), func() time.Time { return stamp }))
		rec := serveFor(h, req, 1500*time.Millisecond)
		want := "id: 1\nevent: tick\ndata: {\"id\":1,\"timestamp\":\"2024-02-29T22:59:59.999Z\",\"message\":\"Event #1\"}\n\n" +
			"id: 2\nevent: tick\ndata: {\"id\":2,\"timestamp\":\"2024-02-29T22:59:59.999Z\",\"message\":\"Event #2\"}\n\n"
		if diff := cmp.Diff(want, rec.Body.String()); diff != "" {
			t.Errorf("body (-want +got):\n%s", diff)
		}
	})
}

// plainWriter is a ResponseWriter that cannot flush, like many middleware
// wrappers that do not implement Unwrap.
type plainWriter struct {
	header http.Header
	body   strings.Builder
	status int
}

func (p *plainWriter) Header() http.Header         { return p.header }
func (p *plainWriter) WriteHeader(code int)        { p.status = code }
func (p *plainWriter) Write(b []byte) (int, error) { return p.body.Write(b) }

// TestStreamBehindWriterThatCannotFlush proves that a stream keeps writing,
// without panicking, to a writer that cannot flush.
func TestStreamBehindWriterThatCannotFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &plainWriter{header: http.Header{}}
		handler.New().ServeHTTP(w, httptest.NewRequest("GET", "/stream/fast", nil))
		events := wiretest.Events([]byte(w.body.String()))
		if len(events) != 101 || events[100].Type != "done" {
			t.Fatalf("got %d events, the last %+v; want 100 data events and done", len(events), events[len(events)-1])
		}
	})
}

// failingWriter fails every write after the first n.
type failingWriter struct {
	*httptest.ResponseRecorder
	n int
}

func (f *failingWriter) Write(b []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("connection reset")
	}
	f.n--
	return f.ResponseRecorder.Write(b)
}

// TestStreamEndsOnWriteError proves that a stream whose write fails returns
// at once, without waiting for its context.
func TestStreamEndsOnWriteError(t *testing.T) {
	for _, tt := range []struct {
		path   string
		failAt time.Duration // when the third write, the one that fails, is due
	}{
		{"/events", 2 * time.Second},
		{"/stream/fast", 100 * time.Millisecond},
	} {
		t.Run(tt.path, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := &failingWriter{ResponseRecorder: httptest.NewRecorder(), n: 2}
				start := time.Now()
				handler.New().ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
				if got := len(wiretest.Events(w.Body.Bytes())); got != 2 {
					t.Errorf("wrote %d events, want the 2 that succeeded", got)
				}
				if elapsed := time.Since(start); elapsed != tt.failAt {
					t.Errorf("handler returned after %v, want %v, right after the failed write", elapsed, tt.failAt)
				}
			})
		})
	}
}

// TestClientGoneEndsStream proves that a stream returns as soon as its
// request's context is done, and leaves no goroutine behind: synctest.Test
// fails if any goroutine of the bubble outlives it.
func TestClientGoneEndsStream(t *testing.T) {
	for _, path := range []string{"/events", "/stream/fast"} {
		t.Run(path, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() {
					defer close(done)
					handler.New().ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", path, nil))
				}()
				time.Sleep(1200 * time.Millisecond)
				start := time.Now()
				cancel()
				<-done
				if elapsed := time.Since(start); elapsed != 0 {
					t.Errorf("stream returned %v after the client left, want at once", elapsed)
				}
			})
		})
	}
}

func TestLastEventID(t *testing.T) {
	tests := []struct {
		header string
		first  string // the first id the stream sends
	}{
		{"", "1"},
		{"0", "1"},
		{"41", "42"},
		{"007", "8"},
		{"9007199254740990", "9007199254740991"},
		{"9007199254740991", "1"},     // the next id would not be exact in JavaScript
		{"99999999999999999", "1"},    // too many digits
		{"18446744073709551616", "1"}, // overflows uint64
		{"-1", "1"},
		{"+5", "1"},
		{" 5", "1"},
		{"5 ", "1"},
		{"0x10", "1"},
		{"1e3", "1"},
		{"abc", "1"},
		{"٣", "1"}, // a digit, but not an ASCII one
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.header), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				req := httptest.NewRequest("GET", "/events", nil)
				if tt.header != "" {
					req.Header.Set("Last-Event-ID", tt.header)
				}
				rec := serveFor(handler.New(), req, 0)
				events := wiretest.Events(rec.Body.Bytes())
				if len(events) != 1 || events[0].ID != tt.first {
					t.Errorf("Last-Event-ID %q: events %+v, want one with id %s", tt.header, events, tt.first)
				}
			})
		})
	}
}

// TestHeadEndsAtOnce proves that HEAD of every route answers the headers GET
// answers, with no body, without waiting.
func TestHeadEndsAtOnce(t *testing.T) {
	for _, path := range []string{"/", "/page.js", "/page.css", "/health", "/events", "/stream/fast"} {
		t.Run(path, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := handler.New()
				head := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(head, httptest.NewRequest("HEAD", path, nil))
				if elapsed := time.Since(start); elapsed != 0 {
					t.Errorf("HEAD took %v, want no wait", elapsed)
				}
				get := serveFor(h, httptest.NewRequest("GET", path, nil), 0)
				if head.Code != http.StatusOK || get.Code != http.StatusOK {
					t.Errorf("status HEAD %d, GET %d; want 200", head.Code, get.Code)
				}
				if diff := cmp.Diff(get.Result().Header, head.Result().Header); diff != "" {
					t.Errorf("HEAD headers differ from GET (-get +head):\n%s", diff)
				}
			})
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, tt := range []struct {
		paths   []string
		methods []string
		allow   string
		words   string
	}{
		{[]string{"/", "/health", "/time", "/page.js"}, []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"}, "GET, HEAD", "GET or HEAD"},
		{[]string{"/events", "/stream/fast"}, []string{"PUT", "DELETE", "PATCH", "OPTIONS", "BREW"}, "GET, HEAD, POST", "GET, HEAD or POST"},
	} {
		for _, path := range tt.paths {
			for _, method := range tt.methods {
				rec := httptest.NewRecorder()
				handler.New().ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader("x")))
				want := fmt.Sprintf(`{"error":"method %s not allowed; use %s"}`, method, tt.words)
				if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != tt.allow || rec.Body.String() != want {
					t.Errorf("%s %s: %d Allow=%q %s; want 405 Allow=%q %s",
						method, path, rec.Code, rec.Header().Get("Allow"), rec.Body, tt.allow, want)
				}
			}
		}
	}
}

func TestNotFound(t *testing.T) {
	for _, path := range []string{"/index.html", "/events/", "/stream", "/stream/fast/x", "/HEALTH", "/favicon.ico"} {
		rec := httptest.NewRecorder()
		handler.New().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		want := fmt.Sprintf(`{"error":"no route for path %s"}`, path)
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != want {
			t.Errorf("GET %s: %d %q %s; want 404 application/json %s", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body, want)
		}
	}
}

// TestPage checks the page's headers and that its assets are served as
// embedded. The page itself is pinned in golden files, rendered for the
// default settings and for others: it says what the streams do.
func TestPage(t *testing.T) {
	for _, tt := range []struct {
		opts   []handler.Option
		golden string
	}{
		{nil, "page.golden"},
		{[]handler.Option{handler.WithInterval(250 * time.Millisecond), handler.WithFastDelay(0)}, "page-250ms.golden"},
	} {
		rec := httptest.NewRecorder()
		handler.New(tt.opts...).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		wiretest.Golden(t, filepath.Join("testdata", tt.golden), wiretest.Dump(rec.Code, rec.Result().Header, rec.Body.Bytes()))
	}
	for _, tt := range []struct{ path, file string }{
		{"/page.js", "page/page.js"},
		{"/page.css", "page/page.css"},
	} {
		rec := httptest.NewRecorder()
		handler.New().ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		want, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusOK || rec.Body.String() != string(want) {
			t.Errorf("GET %s: %d, body %d bytes; want 200 and the %d bytes of %s", tt.path, rec.Code, rec.Body.Len(), len(want), tt.file)
		}
	}
}

// TestPageURLsAreRelative keeps the page working under a prefix: no URL in
// the page or its script may be absolute or root-relative.
func TestPageURLsAreRelative(t *testing.T) {
	html, err := os.ReadFile("page/index.html")
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile("page/page.js")
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, m := range regexp.MustCompile(`(?:href|src)="([^"]*)"`).FindAllSubmatch(html, -1) {
		urls = append(urls, string(m[1]))
	}
	for _, m := range regexp.MustCompile(`new EventSource\("([^"]*)"\)`).FindAllSubmatch(js, -1) {
		urls = append(urls, string(m[1]))
	}
	want := []string{"data:,", "page.css", "page.js", "health", "time", "events", "stream/fast", "./", "events", "stream/fast"}
	if diff := cmp.Diff(want, urls); diff != "" {
		t.Errorf("URLs in the page (-want +got):\n%s", diff)
	}
}

// TestMountedUnderPrefix serves every route through http.StripPrefix in
// another mux, as a user embedding the handler does.
func TestMountedUnderPrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("/sse/", http.StripPrefix("/sse", handler.New()))
		for _, path := range []string{"/sse/", "/sse/page.js", "/sse/page.css", "/sse/health", "/sse/events", "/sse/stream/fast"} {
			rec := serveFor(mux, httptest.NewRequest("GET", path, nil), 0)
			if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
				t.Errorf("GET %s: %d with %d bytes; want 200 and a body", path, rec.Code, rec.Body.Len())
			}
		}
	})
}

// TestHandlersAreIndependent runs two handlers with different settings side
// by side: nothing is shared between them.
func TestHandlersAreIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := handler.New(handler.WithInterval(time.Second), handler.WithRetry(0))
		fast := handler.New(handler.WithInterval(100*time.Millisecond), handler.WithRetry(0))
		a := serveFor(slow, httptest.NewRequest("GET", "/events", nil), 950*time.Millisecond)
		b := serveFor(fast, httptest.NewRequest("GET", "/events", nil), 950*time.Millisecond)
		if got, want := [2]int{len(wiretest.Events(a.Body.Bytes())), len(wiretest.Events(b.Body.Bytes()))}, [2]int{1, 10}; got != want {
			t.Errorf("events from the 1s and 100ms handlers: %v, want %v", got, want)
		}
	})
}
