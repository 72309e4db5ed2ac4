package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

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
	accept  string        // the Accept header; "": text/event-stream, as EventSource sends it
	lines   bool          // read a text body as lines, not as the chunks reads give
	// A probe of a newer route or parameter: a refusal (an older
	// tickstream's 400) is its finding's to report, not the battery's end.
	optional bool
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
	// The burst as NDJSON and as plain text, as a browser's fetch asks for
	// them: paths that treat text/event-stream specially pass these
	// otherwise.
	ndjsonProbe = probe{name: "NDJSON burst, as a browser's fetch asks", method: "GET", target: "/stream/fast?format=ndjson&count=40",
		ask: browser, accept: "*/*", takes: 2 * time.Second, optional: true}
	textProbe = probe{name: "text burst, as a browser's fetch asks", method: "GET", target: "/stream/fast?format=text&count=40",
		ask: browser, accept: "*/*", lines: true, takes: 2 * time.Second, optional: true}
	// Small events, a few a second: a compressor that waits for a minimum
	// size (Traefik's 1 KiB) holds the first of them for seconds.
	quietProbe = probe{name: "quiet small events, as a browser asks", method: "GET", target: "/events?interval=200ms&count=15&heartbeat=0",
		ask: browser, takes: 3 * time.Second}
	idleTarget = "/events?interval=1h&heartbeat=0"
	// An event a second, no heartbeats: a stream that is never idle, for -duration.
	busyTarget = "/events?interval=1s&heartbeat=0"
)

// A checker runs the battery against one tickstream base URL.
type checker struct {
	base      string // without a trailing slash
	client    *http.Client
	tlsConfig *tls.Config   // the client's, for the HTTP/3 client Alt-Svc calls for
	proxy     string        // the forward proxy the client uses, or "direct"
	idle      time.Duration // how long to wait for the path to cut a silent stream; 0: skip
	duration  time.Duration // how long to hold a busy stream, to find a cap; 0: skip
	limits    limits
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
	ctx, cancel := context.WithTimeout(ctx, c.limits.run+max(c.idle, c.duration))
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
	h3 := c.readH3(ctx, res.fast.header)
	held := heldToEnd(res.fast, res.padded, res.endless)
	threshold, hasThreshold := compressorThreshold(res.quiet)
	findings := []Finding{
		bufferingFinding(res.fast, res.fastBrowser, res.padded, held, hasThreshold),
		accelFinding(res.fast, res.accelBrowser, res.accel, held, hasThreshold),
		compressionFinding(res.tail, res.accel, res.quiet, threshold, hasThreshold),
		formatsFinding(res.fastBrowser, res.ndjson, res.text),
		latencyFinding(rtt, clk, res.all(), res.accelBrowser),
		postFinding(res.post, res.fastBrowser, res.fast, hasThreshold),
		resumeFinding(res.resumed),
		tickstreamHeaders(res.fast.header, res.fast.proto),
		protocolFinding(res.fast.proto, res.fast.tls, h3, res.fastBrowser),
	}
	long, err := c.longStreams(ctx)
	if err != nil {
		return Report{}, err
	}
	if c.duration > 0 {
		findings = append(findings, capFinding(long.busy, c.duration))
	}
	if c.idle > 0 {
		findings = append(findings, idleFinding(long.silent, c.idle, long.busy, c.duration))
	}
	findings = append(findings, endFinding(res.fast.reading))
	rep := Report{Mode: "tickstream", URL: c.base, Proxy: c.proxy, OK: true, Checks: findings, probes: res.all(), clock: clk}
	if h3.result.status != 0 {
		rep.probes = append(rep.probes, h3.result)
	}
	rep.Software = identify(rep.probes)
	rep.settle()
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
	fast, fastBrowser, padded, accel, accelBrowser, tail, endless, resumed, post, ndjson, text, quiet probeResult
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
		{ndjsonProbe, &b.ndjson}, {textProbe, &b.text}, {quietProbe, &b.quiet},
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
	var res batteryResults
	var reads []func(context.Context) error
	for _, s := range res.slots() {
		reads = append(reads, func(ctx context.Context) (err error) {
			*s.result, err = c.stream(ctx, s.probe)
			return err
		})
	}
	err := atOnce(ctx, reads...) // before res is read: the reads fill it
	return res, err
}

// stream runs one probe: it reads the response to its end (or, endless,
// for the time the probe takes) within the probe's limit, and times its
// events as a browser would get them.
func (c *checker) stream(ctx context.Context, p probe) (probeResult, error) {
	limit := p.takes + c.limits.slack
	if p.endless {
		limit = p.takes
	}
	accept := p.accept
	if accept == "" {
		accept = sse.ContentType
	}
	req := request{method: p.method, url: c.base + p.target, header: http.Header{"Accept": {accept}}, lines: p.lines}
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
		if p.method == http.MethodPost || p.optional {
			return r, nil // postFinding and formatsFinding say what the path did with it
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

// longStreams are the streams read for as long as -idle and -duration say.
type longStreams struct {
	silent, busy reading
}

// longStreams reads, at the same moment, the silent stream (with -idle)
// and the busy one (with -duration), so that a cut of both at once shows
// as what it is: a cap on a response's whole time.
func (c *checker) longStreams(ctx context.Context) (longStreams, error) {
	var long longStreams
	var reads []func(context.Context) error
	if c.idle > 0 {
		reads = append(reads, func(ctx context.Context) (err error) {
			long.silent, err = c.silent(ctx)
			return err
		})
	}
	if c.duration > 0 {
		reads = append(reads, func(ctx context.Context) (err error) {
			long.busy, err = c.busy(ctx)
			return err
		})
	}
	err := atOnce(ctx, reads...) // before long is read: the reads fill it
	return long, err
}

// busy opens a stream of an event a second and reads it until the path
// cuts it or c.duration has passed.
func (c *checker) busy(ctx context.Context) (reading, error) {
	r, err := c.stream(ctx, probe{name: "busy events", method: "GET", target: busyTarget, takes: c.duration, endless: true})
	if err != nil {
		return reading{}, err
	}
	if len(r.events) == 0 {
		return reading{}, fmt.Errorf("GET %s: no event arrived", busyTarget)
	}
	return r.reading, nil
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
