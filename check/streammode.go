package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/tickstream/tickstream/sse"
)

// maxRequestBody bounds what -d sends, from the command line or a file.
const maxRequestBody = 1 << 20

// A streamCheck reads one stream, any server's, as a browser would: its
// request, sent to url (and, with -compare, to compare at the same moment).
type streamCheck struct {
	url, compare string
	req          request // without url and Accept-Encoding
	client       *http.Client
	tlsConfig    *tls.Config // the client's, for the HTTP/3 client Alt-Svc calls for
	proxy        string
	limits       limits
	capped       bool // -duration: read for limits.stream to find a cap, and say what was found
}

// streamRequest builds the request of stream mode from the command line's
// request flags, as curl reads them: -d implies POST; -H adds or replaces a
// header; a GET is sent as EventSource sends it, any other method as
// fetch does.
func streamRequest(method string, headers []string, data string) (request, error) {
	req := request{method: method, header: http.Header{}}
	if data != "" {
		body := []byte(data)
		if name, ok := strings.CutPrefix(data, "@"); ok {
			b, err := readBounded(name)
			if err != nil {
				return request{}, fmt.Errorf("-d %s: %w", data, err)
			}
			body = b
		}
		req.body = body
		if req.method == "" {
			req.method = http.MethodPost
		}
		req.header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if req.method == "" {
		req.method = http.MethodGet
	}
	if req.method == http.MethodGet {
		// What Chromium's EventSource sends.
		req.header.Set("Accept", sse.ContentType)
		req.header.Set("Cache-Control", "no-cache")
	} else {
		req.header.Set("Accept", "*/*") // fetch's
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name = textproto.TrimString(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return request{}, fmt.Errorf("-H %q: want 'Name: value'", h)
		}
		if strings.EqualFold(name, "Accept-Encoding") {
			return request{}, fmt.Errorf("-H %q: the check sets Accept-Encoding itself (a browser's, then none)", h)
		}
		req.header.Set(name, textproto.TrimString(value))
	}
	return req, nil
}

// readBounded reads a file of at most maxRequestBody bytes.
func readBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRequestBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRequestBody {
		return nil, fmt.Errorf("larger than %d KiB", maxRequestBody>>10)
	}
	return b, nil
}

// The reads of stream mode: a browser's, the same without compression, and,
// with -compare, a browser's of the other URL.
type streamReads struct {
	browser, plain, compare response
}

// run reads the stream and judges it.
func (s *streamCheck) run(ctx context.Context) (Report, error) {
	reads, err := s.read(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Mode: "stream", URL: s.url, Method: s.req.method, Compare: s.compare, Proxy: s.proxy, OK: true}
	b := reads.browser
	h3 := s.readH3(ctx, b.header)
	rep.Checks = []Finding{
		deliveryFinding(reads, s.compare != ""),
		streamCompression(b, reads.plain),
		streamHeaders(b, s.req),
		protocolFinding(b.proto, b.tls, h3, probeResult{response: b}),
		streamEnd(b, s.limits.stream),
	}
	if s.capped {
		rep.Checks = append(rep.Checks, streamCap(b, s.limits.stream))
	}
	rep.streams = []streamSeries{{name: s.url, response: b}}
	if s.compare != "" {
		rep.streams = append(rep.streams, streamSeries{name: s.compare, response: reads.compare})
	}
	if h3.result.status != 0 {
		rep.streams = append(rep.streams, streamSeries{name: s.url + " over HTTP/3", response: h3.result.response})
	}
	rep.Software = identifyHeaders(b.header)
	rep.settle()
	return rep, nil
}

// read sends the reads at the same moment and waits for them all. The
// first to fail ends the others; its error, naming the request, is the one
// returned.
func (s *streamCheck) read(ctx context.Context) (streamReads, error) {
	var reads streamReads
	one := func(dst *response, url, encoding string) func(context.Context) error {
		return func(ctx context.Context) (err error) {
			req := s.req
			req.url = url
			req.header = req.header.Clone()
			req.header.Set("Accept-Encoding", encoding)
			*dst, err = s.fetch(ctx, req)
			return err
		}
	}
	all := []func(context.Context) error{one(&reads.browser, s.url, browserEncodings), one(&reads.plain, s.url, "identity")}
	if s.compare != "" {
		all = append(all, one(&reads.compare, s.compare, browserEncodings))
	}
	err := atOnce(ctx, all...) // before reads is read: the reads fill it
	return reads, err
}

// readH3 reads the stream again, as a browser asks for it, over HTTP/3 if
// header, the browser's read's, offers it in Alt-Svc: after the other
// reads, so a server that answers each request anew answers once more.
func (s *streamCheck) readH3(ctx context.Context, header http.Header) h3Leg {
	return readOverH3(header, s.url, s.proxy, s.tlsConfig, s.limits.header, func(client *http.Client) (probeResult, error) {
		h3s := *s
		h3s.client = client
		req := s.req
		req.url = s.url
		req.header = req.header.Clone()
		req.header.Set("Accept-Encoding", browserEncodings)
		r, err := h3s.fetch(ctx, req)
		return probeResult{response: r}, err
	})
}

// fetch reads one response for at most the stream limit: a stream that
// goes on longer is judged on what came by then; one that breaks off is
// judged cut.
func (s *streamCheck) fetch(ctx context.Context, req request) (response, error) {
	what := req.method + " " + req.url
	if req.header.Get("Accept-Encoding") == "identity" {
		what += " (Accept-Encoding: identity)"
	}
	r, err := fetch(ctx, s.client, req, s.limits.stream, true)
	var status *statusError
	var lim *limitError
	switch {
	case err == nil:
		if r.headAt < 0 {
			return r, fmt.Errorf("%s: stalled: no response head within %v", what, s.limits.stream)
		}
		return r, nil
	case errors.As(err, &status):
		return r, fmt.Errorf("%s: %w: not a stream", what, status)
	case errors.As(err, &lim):
		return r, fmt.Errorf("%s: the server %w", what, lim)
	case errors.Is(err, context.Canceled):
		return r, err
	case r.status == 0:
		return r, describe(what, err, min(s.limits.stream, s.limits.header))
	}
	return r, fmt.Errorf("%s: %w", what, err)
}

// burstsCaveat says what the arrival pattern alone cannot tell.
const burstsCaveat = "; without -compare the check cannot tell a server that sends in bursts from a path that batches: rerun with -compare and the server's own URL"

// textCaveat says what a text stream's arrival pattern cannot show: a path
// that joins its chunks leaves one chunk where there were many.
const textCaveat = "; a path that joins a text stream's chunks shows only beside the server's own: rerun with -compare to be sure"

// deliveryFinding judges how the stream's events reached a browser: from
// their arrival pattern alone or, with a comparison read, by what the path
// adds to each event beside it.
func deliveryFinding(reads streamReads, compared bool) Finding {
	r := reads.browser
	p := arrivalPattern(r.events, r.headAt, r.endAt, r.ended)
	f := Finding{Name: "delivery", Verdict: p.verdict(), Encoding: r.encoding, Events: intPtr(len(r.events)), Format: string(r.format)}
	if r.firstByteAt >= 0 {
		f.FirstByteMs = tenths(r.firstByteAt)
	}
	if len(r.events) > 0 {
		f.FirstEventMs = tenths(r.events[0].at)
	}
	f.Detail = encoded(r.encoding, string(r.format)+": "+p.summary(recordName(r.format))) + firstWords(r)
	switch {
	case r.undecodable != nil:
		f.Verdict, f.Detail, f.Fix, f.problem = "unreadable", r.undecodable.Error()+", so the events cannot be timed", fixCompression, problemCompression
		return f
	case len(r.events) == 0:
		f.Verdict, f.Detail = "broken", "no "+recordName(r.format)+" arrived"+firstWords(r)
		return f
	}
	if compared {
		c := reads.compare
		m := matchEvents(r.format, r.events, c.events)
		if len(m.pairs) == 0 {
			f.Verdict, f.Detail = "unmatched", f.Detail+"; no event matched one of the comparison's, which sent "+fmt.Sprint(len(c.events))
			return f
		}
		added := addedDelays(m, r.reading, c.reading)
		f.Verdict, f.MatchedBy = addedVerdict(added, p), m.by
		f.AddedMsP50, f.AddedMsP99, f.AddedMsMax = tenths(percentile(added, 50)), tenths(percentile(added, 99)), tenths(percentile(added, 100))
		f.Detail += fmt.Sprintf("; beside the comparison (%d of %d matched by %s), the path adds %v at the median, %v at p99, %v at most",
			len(m.pairs), len(r.events), m.by, short(percentile(added, 50)), short(percentile(added, 99)), short(percentile(added, 100)))
	} else if f.Verdict != "live" && !compressedLive(r, reads.plain) {
		f.Detail += burstsCaveat
	} else if r.format == formatText {
		f.Detail += textCaveat
	}
	f.OK = f.Verdict == "live"
	if !f.OK {
		f.Fix, f.problem = fixBuffering, problemBuffering
		if compressedLive(r, reads.plain) {
			f.Detail += "; the same request without compression arrives live, so it is the compressor that holds it"
			f.Fix, f.problem = fixCompression, problemCompression
		}
	}
	return f
}

// compressedLive reports whether browser, a read that held records, was
// compressed where plain, the same request without compression, arrived
// live: the path's compressor, not a buffer, held them.
func compressedLive(browser, plain response) bool {
	if browser.encoding == "" || browser.encoding == "identity" || len(plain.events) == 0 || plain.undecodable != nil {
		return false
	}
	return arrivalPattern(plain.events, plain.headAt, plain.endAt, plain.ended).verdict() == "live"
}

// firstWords says when the first byte and the first event came.
func firstWords(r response) string {
	s := ""
	if r.headAt >= 0 {
		s = fmt.Sprintf("; head after %v", short(r.headAt))
	}
	if r.firstByteAt >= 0 {
		s += fmt.Sprintf(", first byte after %v", short(r.firstByteAt))
	}
	if len(r.events) > 0 {
		s += fmt.Sprintf(", first %s after %v", strings.TrimSuffix(recordName(r.format), "s"), short(r.events[0].at))
	}
	return s
}

// recordName names the records of format f.
func recordName(f format) string {
	switch f {
	case formatNDJSON:
		return "lines"
	case formatText:
		return "chunks"
	}
	return "events"
}

// streamCompression judges whether compression holds the stream's events:
// the browser's read against the same request's without compression.
func streamCompression(browser, plain response) Finding {
	f := Finding{Name: "compression", OK: true, Encoding: browser.encoding}
	switch {
	case browser.undecodable != nil:
		f.Verdict, f.OK = "unreadable", false
		f.Detail = browser.undecodable.Error() + ", so the events cannot be timed (and a browser may not read them either)"
		f.Fix, f.problem = fixCompression, problemCompression
		return f
	case browser.encoding == "" || browser.encoding == "identity":
		f.Verdict = "none"
		f.Detail = "not compressed, though the client accepts " + browserEncodings + " as browsers do"
		return f
	case len(browser.events) == 0:
		f.Verdict, f.OK = "broken", false
		f.Detail = browser.encoding + ": nothing readable arrived"
		f.Fix, f.problem = fixCompression, problemCompression
		return f
	}
	f.Verdict = "compressed"
	f.Detail = browser.encoding
	m := matchEvents(browser.format, browser.events, plain.events)
	if len(m.pairs) == 0 {
		f.Detail += "; the read without compression gave nothing to set it against"
		return f
	}
	// Both reads take the same path, so even a lag common to every event
	// is the compressor's (one that keeps each event until the next).
	added := addedDelays(m, browser.reading, plain.reading)
	lag := percentile(added, 50)
	f.MaxHoldMs = millis(percentile(added, 100))
	if lag >= liveHold {
		f.Verdict, f.OK = "holding", false
		f.Detail += fmt.Sprintf(": each event readable %v later (median) than without compression: the compressor keeps events until more come", roundMs(lag))
		f.Fix, f.problem = fixCompression, problemCompression
		return f
	}
	f.Detail += fmt.Sprintf(", flushed with every event (at most %v behind the read without compression)", short(percentile(added, 100)))
	return f
}

// streamHeaders judges the stream's headers: headersFinding's, with what
// tells proxies not to hold or transform it. A GET that accepts
// text/event-stream is read as EventSource reads it, so its Content-Type
// must be that; anything else is read as fetch reads it, any type.
func streamHeaders(r response, req request) Finding {
	eventSource := req.method == http.MethodGet && strings.Contains(req.header.Get("Accept"), sse.ContentType)
	f := headersFinding(r.header, r.proto, eventSource)
	if !f.OK {
		return f
	}
	// nginx takes X-Accel-Buffering off what it relays: behind it, the
	// header's absence says nothing of the server.
	f.Detail += "; X-Accel-Buffering: " + orNone(r.header.Get("X-Accel-Buffering"))
	if !strings.Contains(strings.ToLower(r.header.Get("Cache-Control")), "no-transform") {
		f.Detail += "; without Cache-Control: no-transform, compressors on the path may take the stream"
	}
	return f
}

// streamEnd judges how the stream ended: with its own end marker ([DONE],
// or a done record), by the response's end, still open when the check
// stopped reading, or cut, even where what arrived ends with a whole line.
func streamEnd(r response, window time.Duration) Finding {
	f := Finding{Name: "end", OK: true}
	done := -1
	for i, e := range r.events {
		if e.isDone(r.format) {
			done = i
		}
	}
	switch {
	case r.headAt < 0 || r.undecodable != nil:
		f.Verdict, f.OK, f.Detail = "unknown", false, "the body could not be read"
	case r.err != nil && errors.Is(r.err, context.DeadlineExceeded):
		f.Verdict = "open"
		f.Detail = fmt.Sprintf("still open after %v, when the check stopped reading", window)
	case r.err != nil:
		f.Verdict, f.OK = "cut", false
		f.Detail = fmt.Sprintf("the response broke off after %v (%d bytes): %v", roundMs(r.endAt), r.bodyBytes, r.err)
		f.Fix = "something on the path ends streams early: a total or idle timeout (see -idle), or a size limit; streams should end before it and resume with Last-Event-ID"
	case r.unfinished > 0:
		f.Verdict, f.OK = "cut", false
		f.Detail = fmt.Sprintf("the response ended with %d bytes of an unfinished %s after its last whole one: it was cut, though it ended cleanly", r.unfinished, strings.TrimSuffix(recordName(r.format), "s"))
		f.Fix = "something on the path ends the response early and closes it as if whole"
	case done >= 0:
		f.Verdict = "done"
		f.Detail = fmt.Sprintf("ended with its end marker (%.40s)", r.events[done].data)
		if gap := r.endAt - r.events[done].at; gap >= markResolution {
			f.Detail += fmt.Sprintf(", the response %v after it", short(gap))
		} else {
			f.Detail += " and the response with it"
		}
	default:
		f.Verdict = "ended"
		f.Detail = fmt.Sprintf("the response ended after %v", roundMs(r.endAt))
	}
	return f
}

// streamCap judges whether the path cut the stream before limit (with
// -duration): a stream cut while records still came is cut by a cap on a
// response's whole time, or a size limit; one that ended by itself says
// nothing of one.
func streamCap(r response, limit time.Duration) Finding {
	f := Finding{Name: "cap", OK: true}
	switch {
	case r.err != nil && errors.Is(r.err, context.DeadlineExceeded):
		f.Verdict = "none"
		f.Detail = fmt.Sprintf("the stream was not cut in %v", limit)
	case r.err != nil || r.unfinished > 0:
		f.Verdict, f.OK = "cut", false
		f.CutAfterMs = r.endAt.Milliseconds()
		f.Detail = fmt.Sprintf("the path cut the stream after %v (%d %s): a cap on a response's whole time or size, if records were still coming",
			r.endAt.Round(100*time.Millisecond), len(r.events), recordName(r.format))
		f.Fix, f.problem = fixCap, problemCap
	default:
		f.Verdict = "ended"
		f.Detail = fmt.Sprintf("the stream ended by itself after %v, before the %v it was to be read for: a stream that lasts longer would show a cap", r.endAt.Round(100*time.Millisecond), limit)
	}
	return f
}

func intPtr(n int) *int { return &n }

// checkStream reads the stream at rawURL (stream mode).
func checkStream(ctx context.Context, rawURL string, o options) (Report, error) {
	if _, err := httpURL(rawURL); err != nil {
		return Report{}, err
	}
	if o.compare != "" {
		if _, err := httpURL(o.compare); err != nil {
			return Report{}, fmt.Errorf("-compare: %w", err)
		}
	}
	if o.idle != 0 {
		return Report{}, errors.New("-idle goes with tickstream's battery, not with -stream")
	}
	if o.duration < 0 {
		return Report{}, errors.New("-duration must not be negative")
	}
	req, err := streamRequest(o.method, o.headers, o.data)
	if err != nil {
		return Report{}, err
	}
	tlsConfig, err := clientTLS(o)
	if err != nil {
		return Report{}, err
	}
	client, proxy, err := newClient(rawURL, o, tlsConfig)
	if err != nil {
		return Report{}, err
	}
	s := &streamCheck{url: rawURL, compare: o.compare, req: req, client: client, tlsConfig: tlsConfig, proxy: proxy, limits: o.limits}
	if o.duration > 0 {
		s.limits.stream, s.capped = o.duration, true
	}
	return s.run(ctx)
}
