package main

import (
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
			Fix:    fixBuffering,
		}},
		{"buffered in 4 KiB blocks (nginx's default)", blocksTrace(100, 52, 4096), blocksTrace(40, 1024, 4096), Finding{
			Name: "buffering", Verdict: "buffered", OK: false, MaxHoldMs: ptr(3850), BlockBytes: 4096,
			Detail: "100 events, largest hold 3.85s, in 2 releases; releases in blocks of about 4 KiB (4096 bytes): a size-based buffer",
			Fix:    fixBuffering,
		}},
		{"buffered to the end", trace(100, 50*ms, 52, func(int) time.Duration { return 5 * time.Second }), trace(40, 50*ms, 1060, func(int) time.Duration { return 2 * time.Second }), Finding{
			Name: "buffering", Verdict: "buffered", OK: false, MaxHoldMs: ptr(4950),
			Detail: "100 events, largest hold 4.95s, all arriving together",
			Fix:    fixBuffering,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bufferingFinding(analyze(tt.small), analyze(tt.padded))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCompressionVerdicts: an uncompressed stream, one that gzip leaves
// live, one that it batches, and one this check cannot decode.
func TestCompressionVerdicts(t *testing.T) {
	tests := []struct {
		name string
		in   streamResult
		want Finding
	}{
		{"none", streamResult{reading: reading{arrivals: liveTrace(20, 52)}}, Finding{
			Name: "compression", Verdict: "none", OK: true, Detail: "not compressed, though the client accepts gzip and br",
		}},
		{"gzip, flushed per event", streamResult{encoding: "gzip", reading: reading{arrivals: liveTrace(20, 52)}}, Finding{
			Name: "compression", Verdict: "compressed", OK: true, MaxHoldMs: ptr(1), Detail: "gzip: 20 events, largest hold 1ms",
		}},
		{"gzip, held", streamResult{encoding: "gzip", reading: reading{arrivals: trace(20, 50*ms, 52, func(int) time.Duration { return time.Second })}}, Finding{
			Name: "compression", Verdict: "compressed", OK: false, MaxHoldMs: ptr(950),
			Detail: "gzip: 20 events, largest hold 950ms, all arriving together; compression holds events",
			Fix:    "do not compress text/event-stream on the path (nginx: gzip off; or flush the compressor after every event)",
		}},
		{"br", streamResult{encoding: "br"}, Finding{
			Name: "compression", Verdict: "compressed", OK: true,
			Detail: "compressed with br, which this check cannot decode, so it cannot time the events",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, compressionFinding(tt.in)); diff != "" {
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
	tests := []struct {
		name string
		in   reading
		want Finding
	}{
		{"cut at 50s", reading{endAt: 50*time.Second + 3*ms, ended: true}, Finding{
			Name: "idle", Verdict: "cut", OK: true, CutAfterMs: 50003,
			Detail: "the path cut a silent stream after 50s",
			Fix:    "send heartbeats more often than every 50s (tickstream: -heartbeat, default 15s)",
		}},
		{"cut at 10s", reading{endAt: 10 * time.Second}, Finding{
			Name: "idle", Verdict: "cut", OK: false, CutAfterMs: 10000,
			Detail: "the path cut a silent stream after 10s",
			Fix:    "send heartbeats more often than every 10s (tickstream: -heartbeat, default 15s)",
		}},
		{"kept", reading{endAt: limit}, Finding{
			Name: "idle", Verdict: "kept", OK: true, Detail: "a stream silent for 2m0s was not cut",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, idleFinding(tt.in, limit)); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}
