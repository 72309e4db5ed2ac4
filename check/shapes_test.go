package main

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// relay serves a reverse proxy of upstream (a base URL) that copies each
// response's status and headers and hands its body to pass, with the
// client's request and the ResponseWriter. It asks upstream for no
// compression, as proxies that compress themselves do.
func relay(t *testing.T, upstream string, pass func(w http.ResponseWriter, r *http.Request, resp *http.Response)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for name, vs := range resp.Header {
			w.Header()[name] = vs
		}
		pass(w, r, resp)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// relayEachRead writes each read of body to w and flushes it, as a proxy
// that does not buffer does. It ends at the body's end or the first error.
func relayEachRead(w io.Writer, body io.Reader, flush func()) {
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			flush()
		}
		if err != nil {
			return
		}
	}
}

// minSizeCompressor relays upstream as Traefik's compress middleware does
// with its default minResponseBodyBytes, 1024: for a client that accepts
// gzip, it holds the response, head and body, until the body reaches
// minSize bytes (or ends), then gzips it and all that follows, flushing
// with every read from upstream. Traefik is not packaged by Debian, so
// this relay stands in for it, behaving as its documentation and the
// issue threads describe.
func minSizeCompressor(t *testing.T, upstream string, minSize int) string {
	return relay(t, upstream, func(w http.ResponseWriter, r *http.Request, resp *http.Response) {
		flush := func() { http.NewResponseController(w).Flush() } //nolint:errcheck // the client's to see
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.WriteHeader(resp.StatusCode)
			relayEachRead(w, resp.Body, flush)
			return
		}
		var held []byte
		buf := make([]byte, 32<<10)
		var gz *gzip.Writer
		for {
			n, err := resp.Body.Read(buf)
			switch {
			case gz == nil && len(held)+n >= minSize:
				w.Header().Del("Content-Length")
				w.Header().Set("Content-Encoding", "gzip")
				w.Header().Add("Vary", "Accept-Encoding")
				w.WriteHeader(resp.StatusCode)
				gz = gzip.NewWriter(w)
				gz.Write(append(held, buf[:n]...)) //nolint:errcheck // to the client
				gz.Flush()                         //nolint:errcheck
				flush()
			case gz == nil:
				held = append(held, buf[:n]...)
			case n > 0:
				gz.Write(buf[:n]) //nolint:errcheck // to the client
				gz.Flush()        //nolint:errcheck
				flush()
			}
			if err != nil {
				break
			}
		}
		if gz == nil { // under the minimum: sent as it came
			w.WriteHeader(resp.StatusCode)
			w.Write(held) //nolint:errcheck // to the client
			return
		}
		gz.Close() //nolint:errcheck // to the client
	})
}

// eventStreamFlusher relays upstream as older cloudflared did: event
// streams flushed as they come, every other response held to its end.
func eventStreamFlusher(t *testing.T, upstream string) string {
	return relay(t, upstream, func(w http.ResponseWriter, r *http.Request, resp *http.Response) {
		w.WriteHeader(resp.StatusCode)
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
			relayEachRead(w, resp.Body, func() { http.NewResponseController(w).Flush() }) //nolint:errcheck // the client's to see
			return
		}
		body, _ := io.ReadAll(resp.Body) // held whole: io.Copy would pass it on as it comes (ReadFrom)
		w.Write(body)                    //nolint:errcheck // to the client
	})
}

// typeCompressor relays upstream as a compression rule that lists
// text/plain and JSON types does (Envoy's compressor defaults; CDN rules):
// those gzipped, with no flush but the compressor's own, for a client that
// accepts gzip; event streams, not listed, flushed as they come.
func typeCompressor(t *testing.T, upstream string) string {
	listed := []string{"text/plain", "application/json", "application/x-ndjson"}
	return relay(t, upstream, func(w http.ResponseWriter, r *http.Request, resp *http.Response) {
		flush := func() { http.NewResponseController(w).Flush() } //nolint:errcheck // the client's to see
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") || !strings.Contains(strings.Join(listed, " "), mt) || mt == "" {
			w.WriteHeader(resp.StatusCode)
			relayEachRead(w, resp.Body, flush)
			return
		}
		w.Header().Del("Content-Length")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(resp.StatusCode)
		gz := gzip.NewWriter(w)
		relayEachRead(gz, resp.Body, flush) // gzip keeps what it has not emitted
		gz.Close()                          //nolint:errcheck // to the client
	})
}

// shapeFields are what TestStreamShapes compares of the findings it
// looks at: whether each passes, its fix, and the verdicts of compression
// and formats (the others' verdicts, batched or buffered, are timing).
var shapeFields = cmp.Options{
	cmpopts.IgnoreFields(Finding{}, "Detail", "MaxHoldMs", "BlockBytes", "ReleaseEveryMs", "Encoding", "ThresholdBytes"),
	cmpopts.IgnoreUnexported(Finding{}),
	cmp.Transformer("timing", func(f Finding) Finding {
		if f.Name != "compression" && f.Name != "formats" {
			f.Verdict = ""
		}
		return f
	}),
}

// shapeFindings returns rep's buffering, accel, compression, formats and
// post findings, for comparing whole.
func shapeFindings(rep Report) []Finding {
	var out []Finding
	for _, name := range []string{"buffering", "accel", "compression", "formats", "post"} {
		out = append(out, finding(rep, name))
	}
	return out
}

// TestStreamShapes runs the battery through paths that pass streams by
// their shape: a compressor with a minimum size (compression says
// threshold, and the holds it causes get its fix, not a buffer's); a relay
// that flushes only event streams, and one that compresses only text and
// JSON types (formats says which types differ).
func TestStreamShapes(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	live := func(name string) Finding { return Finding{Name: name, OK: true} }
	formatsDiffer := Finding{Name: "formats", Verdict: "differ", Fix: fixFormats}
	type shapeCase struct {
		name  string
		url   string
		want  []Finding
		truth func(t *testing.T, url string) // what a timestamping client sees of the path
	}
	cases := []shapeCase{
		{"a compressor with a 1 KiB minimum size", minSizeCompressor(t, up, 1024), []Finding{
			{Name: "buffering", Fix: fixThreshold},
			{Name: "accel", Fix: fixThreshold},
			{Name: "compression", Verdict: "threshold", Fix: fixThreshold},
			{Name: "formats", Verdict: "same", OK: true},
			{Name: "post", Fix: fixThreshold},
		}, truthThreshold},
		{"a relay that flushes event streams only", eventStreamFlusher(t, up), []Finding{
			live("buffering"), live("accel"), {Name: "compression", Verdict: "none", OK: true}, formatsDiffer, live("post"),
		}, func(t *testing.T, url string) { truthFormats(t, url, up, readTimes) }},
		{"a compressor of text and JSON types", typeCompressor(t, up), []Finding{
			live("buffering"), live("accel"), {Name: "compression", Verdict: "none", OK: true}, formatsDiffer, live("post"),
		}, func(t *testing.T, url string) { truthFormats(t, url, up, gzipReadTimes) }},
	}
	runAtOnce(t, len(cases), cases, func(c shapeCase) string { return c.name }, func(t *testing.T, c shapeCase) {
		var rep Report
		var code int
		var wg sync.WaitGroup
		wg.Go(func() { rep, code = checkJSON(t, c.url) })
		wg.Go(func() { c.truth(t, c.url) })
		wg.Wait()
		if diff := cmp.Diff(c.want, shapeFindings(rep), shapeFields); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		if f := finding(rep, "compression"); f.Verdict == "threshold" && (f.ThresholdBytes < 1024 || f.ThresholdBytes > 1024+200) {
			t.Errorf("threshold_bytes %d, want the 1024 the relay waits for, to within an event", f.ThresholdBytes)
		}
	})
}

// gzipReadTimes is compressedReadTimes without the encoding.
func gzipReadTimes(ctx context.Context, url string) ([]readAt, error) {
	reads, _, err := compressedReadTimes(ctx, url)
	return reads, err
}

// truthThreshold is the ground truth of a compressor that waits for a
// minimum size: a gzip read of the battery's quiet stream through it gets
// nothing for a second or more, then at least 1 KiB at once, then the rest
// a few events at a time.
func truthThreshold(t *testing.T, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	reads, enc, err := compressedReadTimes(ctx, url+quietProbe.target)
	if err != nil || enc != "gzip" || len(reads) < 3 {
		t.Fatalf("ground truth: %d reads, %q, %v; want three or more, gzip", len(reads), enc, err)
	}
	if first := reads[0]; first.n < 1024 || first.at.Sub(start) < time.Second {
		t.Errorf("ground truth: the first read brought %d bytes after %v; want 1 KiB or more after a second or more", first.n, first.at.Sub(start))
	}
}

// truthFormats is the ground truth of a path that passes NDJSON and text
// otherwise than event streams: read (with read, compressed or not) at the
// same moment through the path and directly, the event stream comes live
// and the NDJSON stream held.
func truthFormats(t *testing.T, path, direct string, read func(context.Context, string) ([]readAt, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const burst = "/stream/fast?count=20&delay=50ms"
	var got [4][]readAt
	var errs [4]error
	var wg sync.WaitGroup
	for i, u := range []string{path + burst, direct + burst, path + burst + "&format=ndjson", direct + burst + "&format=ndjson"} {
		wg.Go(func() { got[i], errs[i] = read(ctx, u) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("ground truth: %v", err)
	}
	if sse := byteVerdict(got[0], got[1]); sse != "live" {
		t.Errorf("ground truth: the event stream came %s; want live", sse)
	}
	// Held: nothing through the path until the direct read had it all.
	if first, last := got[2][0].at, got[3][len(got[3])-1].at; first.Before(last.Add(-100 * time.Millisecond)) {
		t.Errorf("ground truth: the NDJSON stream's first bytes came through the path %v before the direct read's last; want it held to the end", last.Sub(first))
	}
}
