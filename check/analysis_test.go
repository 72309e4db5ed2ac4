package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is when the synthetic streams' first event was sent, by the server's
// clock, which is an hour off the client's: only differences count.
var t0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const ms = time.Millisecond

// trace makes n events sent every period, frame bytes each, arriving at
// arrive(i) (counted from the request).
func trace(n int, period time.Duration, frame int, arrive func(i int) time.Duration) []arrival {
	out := make([]arrival, n)
	for i := range out {
		out[i] = arrival{sent: t0.Add(time.Duration(i) * period), at: time.Hour + arrive(i), bytes: (i + 1) * frame}
	}
	return out
}

// live: each event arrives 2 ms after it was sent, give or take 1 ms.
func liveTrace(n, frame int) []arrival {
	return trace(n, 50*ms, frame, func(i int) time.Duration { return time.Duration(i)*50*ms + 2*ms + time.Duration(i%2)*ms })
}

// everyTrace: a buffer released by a clock every `every`.
func everyTrace(n, frame int, every time.Duration) []arrival {
	return trace(n, 50*ms, frame, func(i int) time.Duration {
		return (time.Duration(i)*50*ms/every + 1) * every
	})
}

// blocksTrace: a buffer released when it holds block bytes; the rest at
// the end of the stream.
func blocksTrace(n, frame, block int) []arrival {
	end := time.Duration(n) * 50 * ms
	perBlock := block / frame
	return trace(n, 50*ms, frame, func(i int) time.Duration {
		full := (i/perBlock + 1) * perBlock // the event that fills i's block
		if full > n {
			return end
		}
		return time.Duration(full-1) * 50 * ms
	})
}

func ptr(n int64) *int64 { return &n }

// TestVerdicts judges synthetic arrival traces of the shapes real paths
// produce, and compares whole findings.
func TestVerdicts(t *testing.T) {
	tests := []struct {
		name          string
		small, padded []arrival
		want          Finding
	}{
		{"live", liveTrace(100, 52), liveTrace(40, 1060), Finding{
			Name: "buffering", Verdict: "live", OK: true, MaxHoldMs: ptr(1),
			Detail: "100 events, largest hold 1ms",
		}},
		{"batched every 250ms (HAProxy's default)", everyTrace(100, 52, 250*ms), everyTrace(40, 1060, 250*ms), Finding{
			Name: "buffering", Verdict: "batched", OK: false, MaxHoldMs: ptr(200), ReleaseEveryMs: 250,
			Detail: "100 events, largest hold 200ms, in 20 releases; releases every 250ms: a time-based buffer",
			Fix:    fixBuffering, problem: problemBuffering,
		}},
		{"buffered in 4 KiB blocks (nginx's default)", blocksTrace(100, 52, 4096), blocksTrace(40, 1024, 4096), Finding{
			Name: "buffering", Verdict: "buffered", OK: false, MaxHoldMs: ptr(3850), BlockBytes: 4096,
			Detail: "100 events, largest hold 3.85s, in 2 releases; releases in blocks of about 4 KiB (4096 bytes): a size-based buffer",
			Fix:    fixBuffering, problem: problemBuffering,
		}},
		{"buffered to the end", trace(100, 50*ms, 52, func(int) time.Duration { return 5 * time.Second }), trace(40, 50*ms, 1060, func(int) time.Duration { return 2 * time.Second }), Finding{
			Name: "buffering", Verdict: "buffered", OK: false, MaxHoldMs: ptr(4950),
			Detail: "100 events, largest hold 4.95s, all arriving together",
			Fix:    fixBuffering, problem: problemBuffering,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			small := probeResult{response: response{reading: reading{arrivals: tt.small}}}
			got := bufferingFinding(small, small, probeResult{response: response{reading: reading{arrivals: tt.padded}}}, false, false)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(Finding{})); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIdleVerdicts: a silent stream cut at 50 s (HAProxy's default
// timeouts), at 10 s (shorter than tickstream's default heartbeat), and one
// not cut within the limit.
func TestIdleVerdicts(t *testing.T) {
	limit := 2 * time.Minute
	notRead := reading{}
	busyCut := func(at time.Duration) reading { return reading{endAt: at, ended: true} }
	tests := []struct {
		name      string
		in        reading
		busy      reading       // the busy stream read beside it
		busyLimit time.Duration // for how long; 0: not read (no -duration)
		want      Finding
	}{
		{"cut at 50s", reading{endAt: 50*time.Second + 3*ms, ended: true}, notRead, 0, Finding{
			Name: "idle", Verdict: "cut", OK: true, CutAfterMs: 50003,
			Detail: "the path cut a silent stream after 50s",
			Fix:    "send heartbeats more often than every 50s (tickstream: -heartbeat, default 15s)", problem: problemIdle,
		}},
		{"cut at 10s", reading{endAt: 10 * time.Second}, notRead, 0, Finding{
			Name: "idle", Verdict: "cut", OK: false, CutAfterMs: 10000,
			Detail: "the path cut a silent stream after 10s",
			Fix:    "send heartbeats more often than every 10s (tickstream: -heartbeat, default 15s)", problem: problemIdle,
		}},
		{"kept", reading{endAt: limit}, notRead, 0, Finding{
			Name: "idle", Verdict: "kept", OK: true, Detail: "a stream silent for 2m0s was not cut",
		}},
		{"cut with the busy stream: the cap", reading{endAt: 20*time.Second + 400*ms}, busyCut(20*time.Second + 900*ms), limit, Finding{
			Name: "idle", Verdict: "capped", OK: true, CutAfterMs: 20400,
			Detail: "the path cut a silent stream after 20.4s, and a busy one after 20.9s: a cap on a response's whole time (see cap), not an idle timeout, so heartbeats would not help",
		}},
		{"cut long before the busy stream: idleness", reading{endAt: 50 * time.Second}, busyCut(100 * time.Second), limit, Finding{
			Name: "idle", Verdict: "cut", OK: true, CutAfterMs: 50000,
			Detail: "the path cut a silent stream after 50s",
			Fix:    "send heartbeats more often than every 50s (tickstream: -heartbeat, default 15s)", problem: problemIdle,
		}},
		{"cut while the busy stream was kept", reading{endAt: 60 * time.Second}, reading{endAt: limit, err: context.DeadlineExceeded}, limit, Finding{
			Name: "idle", Verdict: "cut", OK: true, CutAfterMs: 60000,
			Detail: "the path cut a silent stream after 1m0s",
			Fix:    "send heartbeats more often than every 1m0s (tickstream: -heartbeat, default 15s)", problem: problemIdle,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, idleFinding(tt.in, limit, tt.busy, tt.busyLimit), cmp.AllowUnexported(Finding{})); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCapVerdicts: a busy stream (an event a second) held for -duration:
// not cut, cut cleanly (an endless stream has no end), cut mid-body.
func TestCapVerdicts(t *testing.T) {
	limit := time.Minute
	twenty := make([]event, 20)
	tests := []struct {
		name string
		in   reading
		want Finding
	}{
		{"not cut", reading{endAt: limit, err: context.DeadlineExceeded, events: twenty}, Finding{
			Name: "cap", Verdict: "none", OK: true, Detail: "a stream of an event a second was not cut in 1m0s",
		}},
		{"ended cleanly at 20s", reading{endAt: 20*time.Second + 30*ms, ended: true, events: twenty}, Finding{
			Name: "cap", Verdict: "cut", CutAfterMs: 20030, Fix: fixCap, problem: problemCap,
			Detail: "the path cut a stream of an event a second after 20s (20 events): a cap on a response's whole time, which traffic does not prevent",
		}},
		{"broken off at 15s", reading{endAt: 15 * time.Second, err: io.ErrUnexpectedEOF, events: twenty[:15]}, Finding{
			Name: "cap", Verdict: "cut", CutAfterMs: 15000, Fix: fixCap, problem: problemCap,
			Detail: "the path cut a stream of an event a second after 15s (15 events): a cap on a response's whole time, which traffic does not prevent",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, capFinding(tt.in, limit), cmp.AllowUnexported(Finding{})); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHeadersVerdicts: the stream's headers as the client got them: as
// sent, with Cache-Control changed, with another Content-Type (which
// EventSource refuses), and from a cache (Age), which replays old events.
func TestHeadersVerdicts(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		in   http.Header
		want Finding
	}{
		{h("Content-Type", "text/event-stream", "Cache-Control", "no-cache", "Age", "0"), Finding{
			Name: "headers", Verdict: "intact", OK: true, Detail: "Content-Type: text/event-stream; Cache-Control: no-cache",
		}},
		{h("Content-Type", "text/event-stream; charset=utf-8"), Finding{
			Name: "headers", Verdict: "rewritten", OK: true,
			Detail: "Content-Type: text/event-stream; charset=utf-8; Cache-Control: (none); the server sent Cache-Control: no-cache, which tells caches on the way not to hold the stream",
		}},
		{h("Content-Type", "text/plain", "Cache-Control", "no-cache"), Finding{
			Name: "headers", Verdict: "rewritten", Fix: "pass the server's Content-Type through",
			Detail: "Content-Type: text/plain; Cache-Control: no-cache; browsers' EventSource refuses any Content-Type but text/event-stream",
		}},
		{h("Content-Type", "text/event-stream", "Age", "6"), Finding{
			Name: "headers", Verdict: "cached", Fix: "have caches on the path pass text/event-stream through uncached, one fetch per client", problem: problemCache,
			Detail: "Content-Type: text/event-stream; Cache-Control: (none); Age: 6: the stream came from a cache, so clients get old events replayed",
		}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tickstreamHeaders(tt.in, "HTTP/1.1"), cmp.AllowUnexported(Finding{})); diff != "" {
			t.Errorf("%v: finding (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestCompressionVerdicts: the slow padded stream as a browser gets it:
// not compressed; compressed and flushed per event; compressed with each
// event's tail kept until the next (one gap late, beyond what the same
// route uncompressed is late); compressed and held; compressed in an
// encoding no decoder here reads.
func TestCompressionVerdicts(t *testing.T) {
	plain := synthetic("events", 40, 50*ms, func(i int) time.Duration { return time.Duration(i)*50*ms + 2*ms })
	slow := func(encoding string, arrive func(i int) time.Duration) probeResult {
		r := synthetic("slow", 12, 250*ms, arrive)
		r.encoding = encoding
		return r
	}
	onTime := func(i int) time.Duration { return time.Duration(i)*250*ms + 3*ms }
	tests := []struct {
		name string
		in   probeResult
		want Finding
	}{
		{"none", slow("", onTime), Finding{
			Name: "compression", Verdict: "none", OK: true, Detail: "not compressed, though the client accepts gzip, deflate, br, zstd as browsers do",
		}},
		{"flushed", slow("br", onTime), Finding{
			Name: "compression", Verdict: "compressed", OK: true, Encoding: "br", MaxHoldMs: ptr(0),
			Detail: "br: 12 events, largest hold 0s, flushed with every event",
		}},
		{"tail held", slow("gzip", func(i int) time.Duration { return time.Duration(i+1)*250*ms + 3*ms }), Finding{
			Name: "compression", Verdict: "tail held", Encoding: "gzip", MaxHoldMs: ptr(0), Fix: fixCompression, problem: problemCompression,
			Detail: "gzip: 12 events, largest hold 0s; each event arrives only with the next one: 251ms late at 250ms between events, so a quiet stream's last event waits for the next",
		}},
		{"held", slow("zstd", func(int) time.Duration { return 3 * time.Second }), Finding{
			Name: "compression", Verdict: "holding", Encoding: "zstd", MaxHoldMs: ptr(2750), Fix: fixCompression, problem: problemCompression,
			Detail: "zstd: 12 events, largest hold 2.75s, all arriving together; compression holds events",
		}},
		{"unreadable", probeResult{response: response{encoding: "compress", undecodable: errors.New(`Content-Encoding "compress" is not one this check decodes (gzip, deflate, br, zstd)`)}}, Finding{
			Name: "compression", Verdict: "unreadable", Encoding: "compress", Fix: fixCompression, problem: problemCompression,
			Detail: `Content-Encoding "compress" is not one this check decodes (gzip, deflate, br, zstd), so the events cannot be timed (and a browser may not read them either)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, compressionFinding(tt.in, plain, probeResult{}, 0, false), cmp.AllowUnexported(Finding{})); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLatencyVerdicts: events on time, events 400ms late by the server's
// clock (lagging), every event over a second late (late: fails), and a
// server without /time.
func TestLatencyVerdicts(t *testing.T) {
	clk := clockEstimate{known: true, uncertainty: 2 * ms}
	events := func(lag time.Duration) probeResult {
		return synthetic("events", 40, 50*ms, func(i int) time.Duration { return time.Duration(i)*50*ms + lag })
	}
	tests := []struct {
		name string
		clk  clockEstimate
		in   probeResult
		want Finding
	}{
		{"prompt", clk, events(3 * ms), Finding{
			Name: "latency", Verdict: "prompt", OK: true, RoundTripMs: fptr(1), FirstEventMs: fptr(3), EventLatencyMs: fptr(3), ClockUncertaintyMs: fptr(2),
			Detail: "round trip 1ms, first event after 3ms, events 3ms late (median, ±2ms by the server's clock)",
		}},
		{"lagging", clk, events(400 * ms), Finding{
			Name: "latency", Verdict: "lagging", OK: true, RoundTripMs: fptr(1), FirstEventMs: fptr(400), EventLatencyMs: fptr(400), ClockUncertaintyMs: fptr(2),
			Detail: "round trip 1ms, first event after 400ms, events 400ms late (median, ±2ms by the server's clock)",
		}},
		{"late", clk, events(1200 * ms), Finding{
			Name: "latency", Verdict: "late", RoundTripMs: fptr(1), FirstEventMs: fptr(1200), EventLatencyMs: fptr(1200), ClockUncertaintyMs: fptr(2), Fix: fixLatency,
			Detail: "round trip 1ms, first event after 1.2s, events 1.2s late (median, ±2ms by the server's clock); every event arrives a second or more after it was sent",
		}},
		// A cached /time reads behind the server's clock.
		{"clocks unrelated", clockEstimate{known: true, offset: -500 * ms, uncertainty: 2 * ms}, synthetic("events", 40, 50*ms, func(i int) time.Duration { return time.Duration(i)*50*ms + 3*ms }), Finding{
			Name: "latency", Verdict: "prompt", OK: true, RoundTripMs: fptr(1), FirstEventMs: fptr(3),
			Detail: "round trip 1ms, first event after 3ms; events arrived 497ms before their stamps by the server's clock as read from /time, so their latency is unknown",
		}},
		{"no clock", clockEstimate{}, events(3 * ms), Finding{
			Name: "latency", Verdict: "prompt", OK: true, RoundTripMs: fptr(1), FirstEventMs: fptr(3),
			Detail: "round trip 1ms, first event after 3ms; the server has no /time route (an older tickstream), so events' latency is unknown",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := latencyFinding(ms, tt.clk, []probeResult{tt.in}, tt.in)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(Finding{})); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

func fptr(f float64) *float64 { return &f }

// TestAccelFixesNeverSuggestTheHeader: when events that carry
// X-Accel-Buffering: no are held, no fix, for any software, says to send it.
func TestAccelFixesNeverSuggestTheHeader(t *testing.T) {
	software := [][]string{nil}
	for _, p := range products {
		software = append(software, []string{p.name})
	}
	for _, sw := range software {
		held := accelFinding(probeResult{}, synthetic("events", 40, 50*ms, func(int) time.Duration { return 2 * time.Second }), probeResult{}, true, false)
		if fix := fixFor(held.problem, sw, held.Fix); strings.Contains(fix, "send X-Accel-Buffering") {
			t.Errorf("behind %v, held events that carry the header get the fix %q", sw, fix)
		}
	}
}
