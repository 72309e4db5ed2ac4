package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// A Report is the check's result: one Finding per check, in a fixed order.
type Report struct {
	URL    string    `json:"url"`
	OK     bool      `json:"ok"` // no finding breaks live streaming
	Checks []Finding `json:"checks"`
}

// A Finding is the result of one check.
type Finding struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`
	Fix     string `json:"fix,omitempty"`

	// Figures, where the check measures them.
	MaxHoldMs      *int64 `json:"max_hold_ms,omitempty"`
	BlockBytes     int    `json:"block_bytes,omitempty"`
	ReleaseEveryMs int64  `json:"release_every_ms,omitempty"`
	CutAfterMs     int64  `json:"cut_after_ms,omitempty"`
}

// errNotTickstream is the error of a URL that answers, but not as
// tickstream does.
var errNotTickstream = errors.New("not a tickstream server")

// A checker runs the battery against one tickstream base URL.
type checker struct {
	base   string // without a trailing slash
	client *http.Client
	idle   time.Duration // how long to wait for the path to cut a silent stream; 0: skip
}

// The streams the battery reads. /stream/fast sends no X-Accel-Buffering
// header, /events does.
const (
	fastTarget   = "/stream/fast" // 100 events 50 ms apart, about 5 s
	paddedTarget = "/stream/fast?size=1024&count=40"
	accelTarget  = "/events?interval=50ms&count=40&heartbeat=0"
	gzipTarget   = "/stream/fast?count=20"
	resumeTarget = "/events?count=42" // with Last-Event-ID: 41, the one event with id 42
	idleTarget   = "/events?interval=1h&heartbeat=0"
)

// fixBuffering is what to do about a path that holds events.
const fixBuffering = "turn response buffering off for text/event-stream on the path: " +
	"nginx: proxy_buffering off (docs/nginx-sse.conf), or have the server send X-Accel-Buffering: no; " +
	"HAProxy: option http-no-delay"

// run runs the battery. It returns an error wrapping errNotTickstream, or
// the request's, when the URL is not a reachable tickstream.
func (c *checker) run(ctx context.Context) (Report, error) {
	if err := c.health(ctx); err != nil {
		return Report{}, err
	}
	fast, err := c.stream(ctx, fastTarget, nil)
	if err != nil {
		return Report{}, err
	}
	padded, err := c.stream(ctx, paddedTarget, nil)
	if err != nil {
		return Report{}, err
	}
	accel, err := c.stream(ctx, accelTarget, nil)
	if err != nil {
		return Report{}, err
	}
	gzipped, err := c.stream(ctx, gzipTarget, http.Header{"Accept-Encoding": {"gzip, br"}})
	if err != nil {
		return Report{}, err
	}
	resumed, err := c.stream(ctx, resumeTarget, http.Header{"Last-Event-ID": {"41"}})
	if err != nil {
		return Report{}, err
	}
	fastTiming := analyze(fast.arrivals)
	findings := []Finding{
		bufferingFinding(fastTiming, analyze(padded.arrivals)),
		accelFinding(fastTiming, analyze(accel.arrivals)),
		compressionFinding(gzipped),
		resumeFinding(resumed),
		headersFinding(fast.header),
		protocolFinding(fast.proto, fast.tls),
	}
	if c.idle > 0 {
		idle, err := c.silent(ctx)
		if err != nil {
			return Report{}, err
		}
		findings = append(findings, idleFinding(idle, c.idle))
	}
	findings = append(findings, endFinding(fast.reading))
	rep := Report{URL: c.base, OK: true, Checks: findings}
	for _, f := range findings {
		rep.OK = rep.OK && f.OK
	}
	return rep, nil
}

// health checks that the URL is a tickstream: /health answers as it does.
func (c *checker) health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return fmt.Errorf("GET %s/health: %w", c.base, err)
	}
	var health struct{ Status string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &health) != nil || health.Status != "healthy" {
		return fmt.Errorf("%w: GET %s/health answered %s %.60q, want 200 {\"status\":\"healthy\"}", errNotTickstream, c.base, resp.Status, body)
	}
	return nil
}

// A streamResult is one stream as the client got it.
type streamResult struct {
	reading
	header   http.Header
	proto    string
	tls      bool
	encoding string // Content-Encoding
}

// stream reads target to its end, decompressing gzip.
func (c *checker) stream(ctx context.Context, target string, header http.Header) (streamResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+target, nil)
	if err != nil {
		return streamResult{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return streamResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return streamResult{}, fmt.Errorf("%w: GET %s%s answered %s %q", errNotTickstream, c.base, target, resp.Status, body)
	}
	r := streamResult{header: resp.Header, proto: resp.Proto, tls: resp.TLS != nil, encoding: resp.Header.Get("Content-Encoding")}
	var body io.Reader = resp.Body
	switch r.encoding {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return streamResult{}, fmt.Errorf("GET %s%s: gzip: %w", c.base, target, err)
		}
		body = zr
	default:
		return r, nil // not readable here; compressionFinding says so
	}
	r.reading = readStream(body, start)
	return r, nil
}

// silent opens a stream with no events after the first and no heartbeats,
// and reads it until the path cuts it or c.idle has passed.
func (c *checker) silent(ctx context.Context) (reading, error) {
	ctx, cancel := context.WithTimeout(ctx, c.idle)
	defer cancel()
	r, err := c.stream(ctx, idleTarget, nil)
	if errors.Is(err, context.DeadlineExceeded) {
		return reading{}, fmt.Errorf("GET %s%s: no answer within %v", c.base, idleTarget, c.idle)
	}
	return r.reading, err
}

func holdMs(t timing) *int64 {
	ms := t.maxHold.Milliseconds()
	return &ms
}

// bufferingFinding judges the stream without X-Accel-Buffering (small
// events), and finds the kind and size of a buffer from padded ones.
func bufferingFinding(small, padded timing) Finding {
	f := Finding{Name: "buffering", Verdict: small.verdict(), MaxHoldMs: holdMs(small), Detail: small.summary()}
	f.OK = f.Verdict == "live"
	if small.events == 0 {
		f.Verdict, f.OK, f.Detail = "broken", false, "no event of "+fastTarget+" arrived"
		return f
	}
	if f.OK {
		return f
	}
	f.Fix = fixBuffering
	if kind, ok := classifyBuffer(small, padded); ok {
		f.Detail += "; " + kind.describe()
		f.BlockBytes = kind.blockBytes
		f.ReleaseEveryMs = kind.every.Milliseconds()
	}
	return f
}

// accelFinding judges the stream that sends X-Accel-Buffering: no.
func accelFinding(small, accel timing) Finding {
	f := Finding{Name: "accel", Verdict: accel.verdict(), MaxHoldMs: holdMs(accel), Detail: accel.summary()}
	f.OK = f.Verdict == "live"
	switch {
	case accel.events == 0:
		f.Verdict, f.OK, f.Detail = "broken", false, "no event of "+accelTarget+" arrived"
	case f.OK && small.verdict() != "live":
		f.Detail += "; the path honours X-Accel-Buffering: no (as nginx does)"
	case f.OK:
		f.Detail += "; the path does not buffer, so the header is not needed"
	default:
		f.Detail += "; the path ignores X-Accel-Buffering: no"
		f.Fix = fixBuffering
	}
	return f
}

// compressionFinding judges the stream asked for with Accept-Encoding.
func compressionFinding(r streamResult) Finding {
	f := Finding{Name: "compression", OK: true}
	switch r.encoding {
	case "", "identity":
		f.Verdict = "none"
		f.Detail = "not compressed, though the client accepts gzip and br"
		return f
	case "gzip":
		t := analyze(r.arrivals)
		f.Verdict = "compressed"
		f.MaxHoldMs = holdMs(t)
		f.OK = t.verdict() == "live"
		f.Detail = "gzip: " + t.summary()
		if !f.OK {
			f.Detail += "; compression holds events"
			f.Fix = "do not compress text/event-stream on the path (nginx: gzip off; or flush the compressor after every event)"
		}
		return f
	}
	f.Verdict = "compressed"
	f.Detail = "compressed with " + r.encoding + ", which this check cannot decode, so it cannot time the events"
	return f
}

// resumeFinding judges whether Last-Event-ID reached the server.
func resumeFinding(r streamResult) Finding {
	f := Finding{Name: "resume"}
	switch {
	case len(r.ids) == 0:
		f.Verdict, f.Detail = "broken", "no event of "+resumeTarget+" arrived"
	case r.ids[0] == "42":
		f.Verdict, f.OK, f.Detail = "passed", true, "Last-Event-ID: 41 reached the server: the stream resumed at id 42"
	case r.ids[0] == "1":
		f.Verdict, f.Detail = "stripped", "Last-Event-ID: 41 did not reach the server: the stream restarted at id 1, so reconnecting clients replay or lose events"
		f.Fix = "forward the Last-Event-ID request header"
	default:
		f.Verdict, f.Detail = "unexpected", "Last-Event-ID: 41 gave a first id of "+r.ids[0]+", want 42"
	}
	return f
}

// headersFinding judges the stream's headers as the client got them.
func headersFinding(h http.Header) Finding {
	f := Finding{Name: "headers", Verdict: "intact", OK: true}
	ct, cc := h.Get("Content-Type"), h.Get("Cache-Control")
	f.Detail = fmt.Sprintf("Content-Type: %s; Cache-Control: %s", orNone(ct), orNone(cc))
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/event-stream" {
		f.Verdict, f.OK = "rewritten", false
		f.Detail += "; browsers' EventSource refuses any Content-Type but text/event-stream"
		f.Fix = "pass the server's Content-Type through"
		return f
	}
	if cc != "no-cache" {
		f.Verdict = "rewritten"
		f.Detail += "; the server sent Cache-Control: no-cache, which tells caches on the way not to hold the stream"
	}
	return f
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// protocolFinding says what protocol the client got.
func protocolFinding(proto string, tls bool) Finding {
	f := Finding{Name: "protocol", Verdict: proto, OK: true}
	transport := "without TLS"
	if tls {
		transport = "over TLS"
	}
	f.Detail = proto + " " + transport
	if strings.HasPrefix(proto, "HTTP/1") {
		f.Detail += "; browsers open at most 6 HTTP/1.1 connections per origin, so a 7th EventSource waits (HTTP/2 lifts that)"
	}
	return f
}

// idleFinding judges when the path cut a silent stream, if it did within
// limit.
func idleFinding(r reading, limit time.Duration) Finding {
	f := Finding{Name: "idle", OK: true}
	if r.err != nil && !r.ended && isTimeout(r.err) || r.endAt >= limit-50*time.Millisecond {
		f.Verdict = "kept"
		f.Detail = fmt.Sprintf("a stream silent for %v was not cut", limit)
		return f
	}
	cut := r.endAt.Round(100 * time.Millisecond)
	f.Verdict = "cut"
	f.CutAfterMs = r.endAt.Milliseconds()
	f.Detail = fmt.Sprintf("the path cut a silent stream after %v", cut)
	f.Fix = fmt.Sprintf("send heartbeats more often than every %v (tickstream: -heartbeat, default 15s)", cut)
	if r.endAt <= 15*time.Second {
		f.OK = false // tickstream's default heartbeats would not keep it open
	}
	return f
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded)
}

// endFinding judges whether the end of a finished stream reached the client
// with its last event.
func endFinding(r reading) Finding {
	f := Finding{Name: "end"}
	switch {
	case !r.ended:
		f.Verdict = "broken"
		f.Detail = fmt.Sprintf("the response of %s did not end properly: %v", fastTarget, r.err)
	case r.doneAt < 0:
		f.Verdict = "broken"
		f.Detail = "the response of " + fastTarget + " ended without its done event"
	case r.endAt-r.doneAt > 500*time.Millisecond:
		f.Verdict = "held"
		f.Detail = fmt.Sprintf("the response ended %v after its last event", roundMs(r.endAt-r.doneAt))
		f.Fix = "the path holds the end of a finished response (its chunked terminator): clients see the stream end late"
	default:
		f.Verdict, f.OK = "prompt", true
		f.Detail = fmt.Sprintf("the response ended %v after its last event", roundMs(r.endAt-r.doneAt))
	}
	return f
}
