package main

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tickstream/tickstream/handler"
)

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
// padded burst. A hold that only the compressed read shows is the
// compressor's (one with a minimum size if threshold), and gets its fix.
func bufferingFinding(plain, browser, padded probeResult, held, threshold bool) Finding {
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
	if blameCompressor(&f, browser, plain, threshold) {
		return f
	}
	if kind, ok := classifyBuffer(analyze(plain.arrivals), analyze(padded.arrivals)); ok && !held {
		f.Detail += "; " + kind.describe()
		f.BlockBytes = kind.blockBytes
		f.ReleaseEveryMs = kind.every.Milliseconds()
	}
	return f
}

// accelFinding judges /events, which sends X-Accel-Buffering: no, as a
// browser gets it.
func accelFinding(fast, browser, plain probeResult, held, threshold bool) Finding {
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
	case blameCompressor(&f, browser, plain, threshold):
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
//
// A compressor that holds a response until it reaches a minimum size shows
// on the quiet stream of small events (threshold, from
// compressorThreshold): its first events wait for the size, the rest come
// live.
func compressionFinding(r, plain, quiet probeResult, threshold int, hasThreshold bool) Finding {
	f := Finding{Name: "compression", OK: true, Encoding: r.encoding}
	if hasThreshold {
		t := analyze(quiet.arrivals)
		f.Verdict, f.OK, f.Encoding, f.ThresholdBytes = "threshold", false, quiet.encoding, threshold
		f.MaxHoldMs = millis(t.maxHold)
		f.Detail = fmt.Sprintf("%s: a quiet stream's first %d events (%d bytes) arrived together, the first held %v, and the rest one by one: "+
			"the compressor sends nothing until a response reaches a minimum size (at most %d bytes)",
			quiet.encoding, t.releases[0].events, threshold, roundMs(t.maxHold), threshold)
		f.Fix, f.problem = fixThreshold, problemThreshold
		return f
	}
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
func postFinding(post, get, plainGet probeResult, threshold bool) Finding {
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
	if !f.OK && !blameCompressor(&f, post, plainGet, threshold) {
		f.Fix, f.problem = fixBuffering, problemBuffering
	}
	return f
}

// blameCompressor gives f, the finding of a stream that browser, a
// compressed read, got held, the compressor's fix when plain, the same
// stream read uncompressed, came live: then it is not a buffer that holds
// it. threshold says the compressor waits for a minimum size. It reports
// whether it did.
func blameCompressor(f *Finding, browser, plain probeResult, threshold bool) bool {
	if !compressed(browser.encoding) || len(plain.arrivals) == 0 || analyze(plain.arrivals).verdict() != "live" {
		return false
	}
	f.Detail += "; uncompressed, it comes live, so it is the compressor that holds it (see compression)"
	f.Fix, f.problem = fixCompression, problemCompression
	if threshold {
		f.Fix, f.problem = fixThreshold, problemThreshold
	}
	return true
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

// cutAt reports whether a stream read for limit ended before it, and when:
// the path cut it (or ended it cleanly: an endless stream has no end).
func cutAt(r reading, limit time.Duration) (time.Duration, bool) {
	if !r.ended && errors.Is(r.err, context.DeadlineExceeded) || r.endAt >= limit-50*time.Millisecond {
		return 0, false
	}
	return r.endAt, true
}

// sameCut is how close two cuts must come to be one: a cap ends every
// response at the same age, silent or not.
func sameCut(a, b time.Duration) bool {
	d := a - b
	return max(d, -d) <= max(2*time.Second, max(a, b)/10)
}

// idleFinding judges when the path cut a silent stream, if it did within
// limit. When a busy stream read for busyLimit at the same moment was cut
// as soon, the cut is the path's cap on a response's whole time, which
// the cap finding reports: heartbeats would not help, so it advises none.
func idleFinding(r reading, limit time.Duration, busy reading, busyLimit time.Duration) Finding {
	f := Finding{Name: "idle", OK: true}
	at, cut := cutAt(r, limit)
	if !cut {
		f.Verdict = "kept"
		f.Detail = fmt.Sprintf("a stream silent for %v was not cut", limit)
		return f
	}
	f.CutAfterMs = at.Milliseconds()
	if busyAt, busyCut := cutAt(busy, busyLimit); busyLimit > 0 && busyCut && sameCut(at, busyAt) {
		f.Verdict = "capped"
		f.Detail = fmt.Sprintf("the path cut a silent stream after %v, and a busy one after %v: a cap on a response's whole time (see cap), not an idle timeout, so heartbeats would not help",
			at.Round(100*time.Millisecond), busyAt.Round(100*time.Millisecond))
		return f
	}
	cutWords := at.Round(100 * time.Millisecond)
	f.Verdict = "cut"
	f.Detail = fmt.Sprintf("the path cut a silent stream after %v", cutWords)
	f.Fix, f.problem = fmt.Sprintf("send heartbeats more often than every %v (tickstream: -heartbeat, default %v)", cutWords, handler.DefaultHeartbeat), problemIdle
	if at <= handler.DefaultHeartbeat {
		f.OK = false // tickstream's default heartbeats would not keep it open
	}
	return f
}

// capFinding judges whether the path cut a busy stream (an event a
// second) within limit: a cap on a response's whole time, which traffic
// does not prevent.
func capFinding(r reading, limit time.Duration) Finding {
	f := Finding{Name: "cap", OK: true}
	at, cut := cutAt(r, limit)
	if !cut {
		f.Verdict = "none"
		f.Detail = fmt.Sprintf("a stream of an event a second was not cut in %v", limit)
		return f
	}
	f.Verdict, f.OK = "cut", false
	f.CutAfterMs = at.Milliseconds()
	f.Detail = fmt.Sprintf("the path cut a stream of an event a second after %v (%d events): a cap on a response's whole time, which traffic does not prevent",
		at.Round(100*time.Millisecond), len(r.events))
	f.Fix, f.problem = fixCap, problemCap
	return f
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

// compressed reports whether encoding is a compression.
func compressed(encoding string) bool { return encoding != "" && encoding != "identity" }

// compressorThreshold finds, in the quiet stream of small events as a
// browser got it, a compressor that waits for a minimum size: the stream
// was compressed, its first release held at least minRun events, and every
// later one came on its own (two at most, for scheduling noise), at least
// twice. It returns how many bytes the first release held: the threshold,
// to within an event.
func compressorThreshold(quiet probeResult) (int, bool) {
	if !compressed(quiet.encoding) || quiet.undecodable != nil {
		return 0, false
	}
	t := analyze(quiet.arrivals)
	if len(t.releases) < 3 || t.releases[0].events < minRun || t.maxHold < liveHold {
		return 0, false
	}
	for _, r := range t.releases[1:] {
		if r.events > 2 {
			return 0, false
		}
	}
	return t.releases[0].bytes, true
}

// fixFormats is the fix for a path that passes other streams otherwise
// than event streams.
const fixFormats = "the path treats text/event-stream specially: give your stream's type the settings event streams have " +
	"(no response buffering; no compression, or a flush after every record), or serve the stream as text/event-stream"

// fixFormatsSSE is the fix for a path that holds event streams where it
// passes other streams live.
const fixFormatsSSE = "the path holds event streams where it passes other types live: fix what it does to text/event-stream (see buffering and compression)"

// formatsFinding judges the burst as NDJSON and as plain text beside the
// same burst as an event stream, each read as a browser's fetch reads it:
// a path that passes one live and not the other treats text/event-stream
// specially (cloudflared flushed only event streams; compression rules
// list text/plain and JSON types). A tickstream that does not serve
// ?format= (an older one) leaves them untried.
func formatsFinding(events, ndjson, text probeResult) Finding {
	f := Finding{Name: "formats", Verdict: "same", OK: true}
	if ndjson.status != http.StatusOK || text.status != http.StatusOK {
		f.Verdict = "untried"
		f.Detail = fmt.Sprintf("the server answered ?format= with %d and %d: a tickstream older than ?format= cannot show how the path passes NDJSON and text", ndjson.status, text.status)
		return f
	}
	sseLive := deliveryVerdict(events) == "live"
	var seen, differ []string
	problem := problemBuffering
	for i, r := range []probeResult{events, ndjson, text} {
		v := deliveryVerdict(r)
		live := v == "live"
		if compressed(r.encoding) {
			v += " (" + r.encoding + ")"
		}
		seen = append(seen, mediaType(r.header)+" "+v)
		if i > 0 && live != sseLive {
			differ = append(differ, mediaType(r.header))
			if compressed(r.encoding) != compressed(events.encoding) {
				problem = problemCompression
			}
		}
	}
	f.Detail = strings.Join(seen, ", ")
	if len(differ) == 0 {
		f.Detail += "; the path passes them alike"
		return f
	}
	f.Verdict, f.OK = "differ", false
	f.Detail += fmt.Sprintf("; the path passes %s otherwise than text/event-stream", strings.Join(differ, " and "))
	f.Fix, f.problem = fixFormats, problem
	if !sseLive {
		f.Fix = fixFormatsSSE
	}
	return f
}

// deliveryVerdict is how a burst reached the client: broken (no record),
// unreadable, or its timing's verdict.
func deliveryVerdict(r probeResult) string {
	switch {
	case r.undecodable != nil:
		return "unreadable"
	case len(r.arrivals) == 0:
		return "broken"
	}
	return analyze(r.arrivals).verdict()
}

// mediaType is h's Content-Type without its parameters.
func mediaType(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return fmt.Sprintf("%q", h.Get("Content-Type"))
	}
	return mt
}
