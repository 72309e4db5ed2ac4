package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/sse"
)

// errNotTickstream is the error of a URL that answers, but not as
// tickstream does.
var errNotTickstream = errors.New("not a tickstream server")

// browserEncodings is the Accept-Encoding Chromium sends with every
// request, EventSource's and fetch's alike.
const browserEncodings = "gzip, deflate, br, zstd"

// limits are the check's time limits: no connection may take longer than
// header to set up, nor any response to send its headers; no probe may take
// more than slack beyond the time its stream lasts; the whole battery ends
// within run (plus -idle). Stream mode reads a stream for at most stream.
type limits struct {
	header time.Duration
	slack  time.Duration
	run    time.Duration
	stream time.Duration
}

var defaultLimits = limits{header: 10 * time.Second, slack: 15 * time.Second, run: 60 * time.Second, stream: 30 * time.Second}

// A probe is one request of the battery.
type probe struct {
	name    string // says what it is for, in the report and its drawing
	method  string
	target  string
	ask     http.Header // request headers beside Accept: text/event-stream
	body    string
	takes   time.Duration // how long the stream lasts at the server
	endless bool          // read it for takes, then stop: not an error
}

func (p probe) String() string { return p.method + " " + p.target }

// The probes of the battery. /stream/fast sends no X-Accel-Buffering
// header, /events does.
var (
	// What Chromium's EventSource sends besides; every probe also sends
	// Accept: text/event-stream, as EventSource and SSE libraries do.
	browser = http.Header{"Accept-Encoding": {browserEncodings}, "Cache-Control": {"no-cache"}}

	fastProbe    = probe{name: "burst", method: "GET", target: "/stream/fast", takes: 5 * time.Second}
	fastBrowser  = probe{name: "burst, as a browser asks", method: "GET", target: "/stream/fast", ask: browser, takes: 5 * time.Second}
	paddedProbe  = probe{name: "padded burst", method: "GET", target: "/stream/fast?size=1024&count=40", takes: 2 * time.Second}
	accelProbe   = probe{name: "events", method: "GET", target: "/events?interval=50ms&count=40&heartbeat=0", takes: 2 * time.Second}
	accelBrowser = probe{name: "events, as a browser asks", method: "GET", target: "/events?interval=50ms&count=40&heartbeat=0", ask: browser, takes: 2 * time.Second}
	// Padded to 1 KiB: compressors skip small responses (Caddy's encode
	// below 512 bytes).
	tailProbe    = probe{name: "slow padded events, as a browser asks", method: "GET", target: "/events?interval=250ms&count=12&size=1024&heartbeat=0", ask: browser, takes: 3 * time.Second}
	endlessProbe = probe{name: "endless events, as a browser asks", method: "GET", target: "/events?interval=100ms&size=512&heartbeat=0", ask: browser, takes: 3 * time.Second, endless: true}
	resumeProbe  = probe{name: "resumed events", method: "GET", target: "/events?count=42", ask: http.Header{"Last-Event-ID": {"41"}}, takes: 0} // the one event with id 42
	postProbe    = probe{name: "POST burst, as a browser's fetch asks", method: "POST", target: "/stream/fast",
		ask:  http.Header{"Accept-Encoding": {browserEncodings}, "Content-Type": {"application/json"}},
		body: `{"count":40}`, takes: 2 * time.Second}
	idleTarget = "/events?interval=1h&heartbeat=0"
)

// A checker runs the battery against one tickstream base URL.
type checker struct {
	base   string // without a trailing slash
	client *http.Client
	proxy  string        // the forward proxy the client uses, or "direct"
	idle   time.Duration // how long to wait for the path to cut a silent stream; 0: skip
	limits limits
}

// A probeResult is one probe as the client got it.
type probeResult struct {
	probe
	response
}

// run runs the battery. It returns an error wrapping errNotTickstream, or
// the request's, when the URL is not a reachable tickstream, and one naming
// the probe when a probe stalls or its answer goes past a limit.
func (c *checker) run(ctx context.Context) (Report, error) {
	ctx, cancel := context.WithTimeout(ctx, c.limits.run+c.idle)
	defer cancel()
	if err := c.health(ctx); err != nil {
		return Report{}, err
	}
	rtt, err := c.roundTrip(ctx)
	if err != nil {
		return Report{}, err
	}
	clk, err := c.clock(ctx)
	if err != nil {
		return Report{}, err
	}
	res, err := c.streams(ctx)
	if err != nil {
		return Report{}, err
	}
	held := heldToEnd(res.fast, res.padded, res.endless)
	findings := []Finding{
		bufferingFinding(res.fast, res.fastBrowser, res.padded, held),
		accelFinding(res.fast, res.accelBrowser, res.accel, held),
		compressionFinding(res.tail, res.accel),
		latencyFinding(rtt, clk, res.all(), res.accelBrowser),
		postFinding(res.post, res.fastBrowser),
		resumeFinding(res.resumed),
		tickstreamHeaders(res.fast.header, res.fast.proto),
		protocolFinding(res.fast.proto, res.fast.tls),
	}
	if c.idle > 0 {
		idle, err := c.silent(ctx)
		if err != nil {
			return Report{}, err
		}
		findings = append(findings, idleFinding(idle, c.idle))
	}
	findings = append(findings, endFinding(res.fast.reading))
	rep := Report{Mode: "tickstream", URL: c.base, Proxy: c.proxy, OK: true, Checks: findings, probes: res.all(), clock: clk}
	rep.Software = identify(rep.probes)
	for i := range rep.Checks {
		f := &rep.Checks[i]
		if f.problem != "" {
			f.Fix = fixFor(f.problem, rep.Software, f.Fix)
		}
		rep.OK = rep.OK && f.OK
	}
	return rep, nil
}

// get fetches target with no body and returns its status and at most 1 KiB
// of its body.
func (c *checker) get(ctx context.Context, target string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+target, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, describe("GET "+target, err, c.limits.header)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return 0, nil, describe("GET "+target, err, c.limits.header)
	}
	return resp.StatusCode, body, nil
}

// health checks that the URL is a tickstream: /health answers as it does.
func (c *checker) health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.limits.header)
	defer cancel()
	status, body, err := c.get(ctx, "/health")
	if err != nil {
		return err
	}
	var health struct{ Status string }
	if status != http.StatusOK || json.Unmarshal(body, &health) != nil || health.Status != "healthy" {
		return fmt.Errorf("%w: GET %s/health answered %d %s %.60q, want 200 {\"status\":\"healthy\"}", errNotTickstream, c.base, status, http.StatusText(status), body)
	}
	return nil
}

// roundTrip returns the shortest of three round trips to /health, on a
// connection the health check opened.
func (c *checker) roundTrip(ctx context.Context) (time.Duration, error) {
	best := time.Duration(-1)
	for range 3 {
		ctx, cancel := context.WithTimeout(ctx, c.limits.header)
		start := time.Now()
		_, _, err := c.get(ctx, "/health")
		cancel()
		if err != nil {
			return 0, err
		}
		if d := time.Since(start); best < 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// A clockEstimate relates the server's clock to the client's: server time
// is client time plus offset, within uncertainty.
type clockEstimate struct {
	known       bool // the server has /time
	offset      time.Duration
	uncertainty time.Duration
}

// clock estimates the server's clock from five reads of /time, as NTP
// does: the read with the shortest round trip wins, its server time taken
// as of the round trip's middle, uncertain by half the round trip (and the
// millisecond the events' stamps are truncated to, which latencies add).
// A server without /time (an older tickstream) leaves the clock unknown.
func (c *checker) clock(ctx context.Context) (clockEstimate, error) {
	var est clockEstimate
	best := time.Duration(-1)
	for i := range 5 {
		ctx, cancel := context.WithTimeout(ctx, c.limits.header)
		sent := time.Now()
		// A query of its own keeps every read out of any cache on the path.
		status, body, err := c.get(ctx, fmt.Sprintf("/time?read=%d-%d", sent.UnixNano(), i))
		got := time.Now()
		cancel()
		if err != nil {
			return est, err
		}
		var t struct{ Time time.Time }
		if status != http.StatusOK || json.Unmarshal(body, &t) != nil || t.Time.IsZero() {
			return clockEstimate{}, nil
		}
		rtt := got.Sub(sent)
		if best >= 0 && rtt >= best {
			continue
		}
		best = rtt
		mid := sent.Add(rtt / 2)
		est = clockEstimate{known: true, offset: t.Time.Sub(mid.Round(0)), uncertainty: rtt/2 + time.Millisecond}
	}
	return est, nil
}

// batteryResults are the battery's probes as the client got them.
type batteryResults struct {
	fast, fastBrowser, padded, accel, accelBrowser, tail, endless, resumed, post probeResult
}

// slots pairs each probe of the battery with where its result goes.
func (b *batteryResults) slots() []struct {
	probe  probe
	result *probeResult
} {
	return []struct {
		probe  probe
		result *probeResult
	}{
		{fastProbe, &b.fast}, {fastBrowser, &b.fastBrowser}, {paddedProbe, &b.padded},
		{accelProbe, &b.accel}, {accelBrowser, &b.accelBrowser}, {tailProbe, &b.tail},
		{endlessProbe, &b.endless}, {resumeProbe, &b.resumed}, {postProbe, &b.post},
	}
}

// all returns every result, in the battery's order.
func (b *batteryResults) all() []probeResult {
	var all []probeResult
	for _, s := range b.slots() {
		all = append(all, *s.result)
	}
	return all
}

// streams runs the battery's probes at once. The first probe to fail ends
// the others, and its error is the one returned.
func (c *checker) streams(ctx context.Context) (batteryResults, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		res   batteryResults
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for _, s := range res.slots() {
		wg.Go(func() {
			var err error
			if *s.result, err = c.stream(ctx, s.probe); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return res, first
}

// stream runs one probe: it reads the response to its end (or, endless,
// for the time the probe takes) within the probe's limit, and times its
// events as a browser would get them.
func (c *checker) stream(ctx context.Context, p probe) (probeResult, error) {
	limit := p.takes + c.limits.slack
	if p.endless {
		limit = p.takes
	}
	req := request{method: p.method, url: c.base + p.target, header: http.Header{"Accept": {sse.ContentType}}}
	for k, v := range p.ask {
		req.header[k] = v
	}
	if p.body != "" {
		req.body = []byte(p.body)
	}
	resp, err := fetch(ctx, c.client, req, limit, p.endless)
	r := probeResult{probe: p, response: resp}
	var status *statusError
	var lim *limitError
	switch {
	case err == nil:
		return r, nil
	case errors.As(err, &status):
		if p.method == http.MethodPost {
			return r, nil // postFinding says what the path did with it
		}
		return r, fmt.Errorf("%w: %s %s%s %v", errNotTickstream, p.method, c.base, p.target, status)
	case errors.As(err, &lim):
		return r, fmt.Errorf("%s: the server %w", p, lim)
	case errors.Is(err, context.Canceled):
		return r, err
	case resp.status == 0:
		return r, describe(p.String(), err, min(limit, c.limits.header))
	}
	return r, fmt.Errorf("%s: %w", p, err)
}

// describe words a request's failure: which request, and what stalled.
func describe(what string, err error, limit time.Duration) error {
	var redirect *redirectError
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.As(err, &redirect):
		return fmt.Errorf("%s: %w", what, redirect)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Errorf("%s: stalled: no whole answer within %v", what, limit)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%w (pass the certificate of the CA that signed the server's with -cacert FILE, or skip verification with -insecure)", err)
	}
	return err
}

// protoName writes a protocol as people do: HTTP/2, not HTTP/2.0.
func protoName(proto string) string {
	if proto == "HTTP/2.0" {
		return "HTTP/2"
	}
	return proto
}

// silent opens a stream with no events after the first and no heartbeats,
// and reads it until the path cuts it or c.idle has passed.
func (c *checker) silent(ctx context.Context) (reading, error) {
	r, err := c.stream(ctx, probe{name: "silent events", method: "GET", target: idleTarget, takes: c.idle, endless: true})
	if err != nil {
		return reading{}, err
	}
	if len(r.events) == 0 && r.endAt >= c.idle {
		return reading{}, fmt.Errorf("GET %s: no event within %v", idleTarget, c.idle)
	}
	return r.reading, nil
}

// tenths returns d in milliseconds, to a tenth of one.
func tenths(d time.Duration) *float64 {
	ms := float64(d.Round(100*time.Microsecond)) / float64(time.Millisecond)
	return &ms
}

func millis(d time.Duration) *int64 {
	n := d.Milliseconds()
	return &n
}

// heldToEnd reports whether the path holds every response until it ends:
// both bursts arrived at once at their end, and the endless stream, padded
// past any ordinary buffer, gave nothing at all in its time.
func heldToEnd(fast, padded, endless probeResult) bool {
	atEnd := func(r probeResult) bool {
		t := analyze(r.arrivals)
		return t.events > 0 && len(t.releases) == 1 && r.endAt-t.releases[0].at <= 50*time.Millisecond
	}
	return len(endless.events) == 0 && atEnd(fast) && atEnd(padded)
}

// encoded prefixes what a browser got with its encoding, if it was
// compressed.
func encoded(encoding, s string) string {
	if encoding == "" || encoding == "identity" {
		return s
	}
	return encoding + ": " + s
}

const heldDetail = "held until the response ends: /events and any endless stream get nothing through this path"

// differs says how what a browser gets differs from what a client that
// asks for no compression gets, if it does.
func differs(browser, plain timing, encoding string) string {
	if browser.verdict() == plain.verdict() {
		return ""
	}
	enc := "uncompressed"
	if encoding != "" {
		enc = encoding
	}
	return fmt.Sprintf("; a browser (Accept-Encoding: %s, answered %s) gets it %s, a client asking for no compression %s",
		browserEncodings, enc, browser.verdict(), plain.verdict())
}

// timedFinding starts the finding name of a stream as a browser got it
// (r): judged by its events' holds, live or not. It is final when there is
// nothing to judge: an encoding the check cannot decode, or no event.
func timedFinding(name string, r probeResult) (f Finding, t timing, final bool) {
	t = analyze(r.arrivals)
	f = Finding{Name: name, Verdict: t.verdict(), MaxHoldMs: millis(t.maxHold), Detail: encoded(r.encoding, t.summary()), Encoding: r.encoding}
	f.OK = f.Verdict == "live"
	switch {
	case r.undecodable != nil:
		f.Verdict, f.OK, f.MaxHoldMs, f.Detail = "unreadable", false, nil, r.undecodable.Error()+", so the events cannot be timed"
		f.Fix, f.problem = fixCompression, problemCompression
		return f, t, true
	case t.events == 0:
		f.Verdict, f.OK, f.MaxHoldMs, f.Detail = "broken", false, nil, "no event of "+r.String()+" arrived"
		return f, t, true
	}
	return f, t, false
}

// bufferingFinding judges /stream/fast, which sends no X-Accel-Buffering,
// as a browser gets it, and finds the kind and size of a buffer from the
// padded burst.
func bufferingFinding(plain, browser, padded probeResult, held bool) Finding {
	f, t, final := timedFinding("buffering", browser)
	if final {
		return f
	}
	if held {
		f.Verdict, f.Detail = "held", f.Detail+"; "+heldDetail
	}
	f.Detail += differs(t, analyze(plain.arrivals), browser.encoding)
	if f.OK {
		return f
	}
	f.Fix, f.problem = fixBuffering, problemBuffering
	if kind, ok := classifyBuffer(analyze(plain.arrivals), analyze(padded.arrivals)); ok && !held {
		f.Detail += "; " + kind.describe()
		f.BlockBytes = kind.blockBytes
		f.ReleaseEveryMs = kind.every.Milliseconds()
	}
	return f
}

// accelFinding judges /events, which sends X-Accel-Buffering: no, as a
// browser gets it.
func accelFinding(fast, browser, plain probeResult, held bool) Finding {
	f, t, final := timedFinding("accel", browser)
	if final {
		return f
	}
	small := analyze(fast.arrivals).verdict()
	switch {
	case held:
		// Sending X-Accel-Buffering: no did not help: a fix must not say to.
		f.Verdict, f.Detail = "held", f.Detail+"; "+heldDetail
		f.Fix, f.problem = fixBuffering, problemAccel
	case f.OK && small != "live":
		f.Detail += "; the path honours X-Accel-Buffering: no (as nginx does), which tickstream's /events sends"
	case f.OK:
		f.Detail += "; the path does not buffer, so X-Accel-Buffering: no is not needed"
	default:
		f.Detail += "; the path holds events even with X-Accel-Buffering: no, so the header cannot fix it"
		f.Fix, f.problem = fixBuffering, problemAccel
	}
	f.Detail += differs(t, analyze(plain.arrivals), browser.encoding)
	return f
}

// compressionFinding judges the slow /events stream as a browser gets it:
// compressed or not, and whether compression holds events. plain, the same
// route read without compression, gives the path's own delay, so that what
// compression adds shows.
func compressionFinding(r, plain probeResult) Finding {
	f := Finding{Name: "compression", OK: true, Encoding: r.encoding}
	if r.undecodable != nil {
		f.Verdict, f.OK = "unreadable", false
		f.Detail = r.undecodable.Error() + ", so the events cannot be timed (and a browser may not read them either)"
		f.Fix, f.problem = fixCompression, problemCompression
		return f
	}
	if r.encoding == "" || r.encoding == "identity" {
		f.Verdict = "none"
		f.Detail = "not compressed, though the client accepts " + browserEncodings + " as browsers do"
		return f
	}
	t := analyze(r.arrivals)
	f.Verdict = "compressed"
	f.MaxHoldMs = millis(t.maxHold)
	f.Detail = r.encoding + ": " + t.summary()
	if t.events == 0 {
		f.Verdict, f.OK = "broken", false
		f.Detail = r.encoding + ": no event of " + r.target + " arrived"
		f.Fix, f.problem = fixCompression, problemCompression
		return f
	}
	if lag, gap, ok := tailHeld(r.arrivals, r.start, plain.reading); ok {
		f.Verdict, f.OK = "tail held", false
		f.Detail += fmt.Sprintf("; each event arrives only with the next one: %v late at %v between events, so a quiet stream's last event waits for the next", roundMs(lag), roundMs(gap))
		f.Fix, f.problem = fixCompression, problemCompression
		return f
	}
	if t.verdict() != "live" {
		f.Verdict, f.OK = "holding", false
		f.Detail += "; compression holds events"
		f.Fix, f.problem = fixCompression, problemCompression
		return f
	}
	f.Detail += ", flushed with every event"
	return f
}

// latencyFinding judges how late events arrive even when they come one by
// one: the round trip, the first event's wait, and, where the server's
// clock is known, the events' latency on /events as a browser gets it.
func latencyFinding(rtt time.Duration, clk clockEstimate, results []probeResult, events probeResult) Finding {
	f := Finding{Name: "latency", OK: true, RoundTripMs: tenths(rtt)}
	first := time.Duration(-1)
	for _, r := range results {
		if at, ok := r.firstAt(); ok && !r.endless && (first < 0 || at < first) {
			first = at
		}
	}
	if first >= 0 {
		f.FirstEventMs = tenths(first)
	}
	f.Detail = fmt.Sprintf("round trip %v", short(rtt))
	if first >= 0 {
		f.Detail += fmt.Sprintf(", first event after %v", short(first))
	}
	late := first >= time.Second
	if clk.known && len(events.arrivals) > 0 {
		lat := make([]time.Duration, len(events.arrivals))
		for i, a := range events.arrivals {
			lat[i] = events.start.Add(a.at).Round(0).Sub(a.sent.Add(-clk.offset))
		}
		if m := median(lat); m < -clk.uncertainty-2*time.Millisecond {
			// Events stamped after they arrived: the clocks are not related
			// (a cache answered /time, or the server's clock jumped).
			f.Detail += fmt.Sprintf("; events arrived %v before their stamps by the server's clock as read from /time, so their latency is unknown", short(-m))
		} else {
			f.EventLatencyMs, f.ClockUncertaintyMs = tenths(m), tenths(clk.uncertainty)
			f.Detail += fmt.Sprintf(", events %v late (median, ±%v by the server's clock)", short(m), short(clk.uncertainty))
			late = late || slices.Min(lat) >= time.Second
		}
	} else if !clk.known {
		f.Detail += "; the server has no /time route (an older tickstream), so events' latency is unknown"
	}
	switch {
	case late:
		f.Verdict, f.OK = "late", false
		f.Detail += "; every event arrives a second or more after it was sent"
		f.Fix = fixLatency
	case first >= liveHold || f.EventLatencyMs != nil && *f.EventLatencyMs >= float64(liveHold.Milliseconds()):
		f.Verdict = "lagging"
	default:
		f.Verdict = "prompt"
	}
	return f
}

// postFinding judges a POST-answered stream (as LLM token streams and MCP's
// Streamable HTTP are) against the same burst asked for with GET.
func postFinding(post, get probeResult) Finding {
	if post.status != http.StatusOK {
		return Finding{Name: "post", Verdict: "refused", Encoding: post.encoding,
			Detail: fmt.Sprintf("%s answered %d %s: POST-answered streams do not pass (or the server is a tickstream older than POST streams)",
				post.probe, post.status, http.StatusText(post.status)),
			Fix: "let POST requests with a JSON body through to the server"}
	}
	f, _, final := timedFinding("post", post)
	if final {
		return f
	}
	if g := analyze(get.arrivals).verdict(); g != f.Verdict {
		f.Detail += fmt.Sprintf("; the same burst asked for with GET arrives %s: the path treats POST differently", g)
	}
	if !f.OK {
		f.Fix, f.problem = fixBuffering, problemBuffering
	}
	return f
}

// resumeFinding judges whether Last-Event-ID reached the server.
func resumeFinding(r probeResult) Finding {
	f := Finding{Name: "resume"}
	switch {
	case len(r.ids) == 0:
		f.Verdict, f.Detail = "broken", "no event of "+resumeProbe.target+" arrived"
	case r.ids[0] == "42":
		f.Verdict, f.OK, f.Detail = "passed", true, "Last-Event-ID: 41 reached the server: the stream resumed at id 42"
	case r.ids[0] == "1":
		f.Verdict, f.Detail = "stripped", "Last-Event-ID: 41 did not reach the server: the stream restarted at id 1, so reconnecting clients replay or lose events"
		f.Fix = fixResume
	default:
		f.Verdict, f.Detail = "unexpected", "Last-Event-ID: 41 gave a first id of "+r.ids[0]+", want 42"
	}
	return f
}

// idleFinding judges when the path cut a silent stream, if it did within
// limit.
func idleFinding(r reading, limit time.Duration) Finding {
	f := Finding{Name: "idle", OK: true}
	if !r.ended && errors.Is(r.err, context.DeadlineExceeded) || r.endAt >= limit-50*time.Millisecond {
		f.Verdict = "kept"
		f.Detail = fmt.Sprintf("a stream silent for %v was not cut", limit)
		return f
	}
	cut := r.endAt.Round(100 * time.Millisecond)
	f.Verdict = "cut"
	f.CutAfterMs = r.endAt.Milliseconds()
	f.Detail = fmt.Sprintf("the path cut a silent stream after %v", cut)
	f.Fix, f.problem = fmt.Sprintf("send heartbeats more often than every %v (tickstream: -heartbeat, default %v)", cut, handler.DefaultHeartbeat), problemIdle
	if r.endAt <= handler.DefaultHeartbeat {
		f.OK = false // tickstream's default heartbeats would not keep it open
	}
	return f
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// endFinding judges whether the end of a finished stream reached the client
// with its last event.
func endFinding(r reading) Finding {
	f := Finding{Name: "end"}
	switch {
	case r.doneAt < 0:
		f.Verdict = "broken"
		f.Detail = "the response of " + fastProbe.target + " ended without its done event"
	case r.endAt-r.doneAt > 500*time.Millisecond:
		f.Verdict = "held"
		f.Detail = fmt.Sprintf("the response ended %v after its last event", roundMs(r.endAt-r.doneAt))
		f.Fix = "the path holds the end of a finished response (its chunked terminator): clients see the stream end late"
	default:
		f.Verdict, f.OK = "prompt", true
		f.Detail = fmt.Sprintf("the response ended %v after its last event", short(r.endAt-r.doneAt))
	}
	return f
}
