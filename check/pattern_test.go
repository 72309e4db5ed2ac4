package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// records makes n records of frame bytes each, readable at arrive(i)
// (from the request), with ids and data of their own.
func records(n, frame int, arrive func(i int) time.Duration) []event {
	out := make([]event, n)
	for i := range out {
		out[i] = event{id: fmt.Sprint(i + 1), data: fmt.Sprintf(`{"n":%d}`, i), end: (i + 1) * frame, at: arrive(i)}
	}
	return out
}

// every: record i readable at i*period plus lag.
func every(period, lag time.Duration) func(int) time.Duration {
	return func(i int) time.Duration { return time.Duration(i)*period + lag }
}

// TestArrivalPatterns judges synthetic arrivals of a stream without send
// times, as stream mode reads any server's: live, a clock-released
// buffer, a size-released one, everything at the end, and a server that
// pauses and then writes one record (which is not held).
func TestArrivalPatterns(t *testing.T) {
	tests := []struct {
		name    string
		events  []event
		endAt   time.Duration
		ended   bool
		want    string
		hold    time.Duration
		summary string
	}{
		{"live, 50ms apart", records(40, 100, every(50*ms, 3*ms)), 2 * time.Second, true, "live", 0,
			"40 events, each readable on its own"},
		{"one record, after a silence, is the server's own", records(1, 5000, every(0, 2*time.Second)), 2 * time.Second, true, "live", 0,
			"1 event"},
		{"a server that thinks, then streams", records(20, 100, func(i int) time.Duration {
			if i == 0 {
				return 1500 * ms // a long first silence before one record is the server's own
			}
			return 1500*ms + time.Duration(i)*20*ms
		}), 2 * time.Second, true, "live", 0, "20 events, each readable on its own"},
		{"a server that writes two at once, every 100ms", records(20, 100, func(i int) time.Duration { return time.Duration(i/2+1) * 100 * ms }), 1100 * ms, true,
			"live", 0, "20 events in 10 releases"},
		{"released every 250ms", records(40, 100, func(i int) time.Duration { return (time.Duration(i)*50*ms/(250*ms) + 1) * 250 * ms }), 2100 * ms, true,
			"batched", 250 * ms, "40 events in 8 releases, 250ms of silence before the longest-held release"},
		{"released in 4 KiB blocks", records(40, 1024, func(i int) time.Duration { return time.Duration(i/4*4+3) * 50 * ms }), 2 * time.Second, true,
			"batched", 200 * ms, "40 events in 10 releases, 200ms of silence before the longest-held release"},
		{"released in 32 KiB blocks", records(64, 1024, func(i int) time.Duration { return time.Duration(i/32*32+31) * 50 * ms }), 3300 * ms, true,
			"buffered", 1600 * ms, "64 events in 2 releases, 1.6s of silence before the longest-held release"},
		{"held to the end", records(100, 60, func(int) time.Duration { return 5 * time.Second }), 5*time.Second + 2*ms, true,
			"held", 4998 * ms, "100 events readable all together, 4.998s of silence before the longest-held release"},
		{"together at the end of a quick response", records(3, 60, func(int) time.Duration { return 20 * ms }), 21 * ms, true,
			"live", 18 * ms, "3 events readable all together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := arrivalPattern(tt.events, 2*ms, tt.endAt, tt.ended)
			if got := p.verdict(); got != tt.want {
				t.Errorf("verdict %q, want %q (hold %v, %d releases)", got, tt.want, p.hold, len(p.releases))
			}
			if diff := cmp.Diff(tt.summary, p.summary("events")); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
			if p.hold != tt.hold {
				t.Errorf("hold %v, want %v", p.hold, tt.hold)
			}
		})
	}
}

// TestMatchEvents pairs two reads' events by id, by content when ids are
// missing or repeated, by position when contents differ (two answers of
// one LLM prompt), and text chunks by how far into the stream they reach.
func TestMatchEvents(t *testing.T) {
	noIDs := func(evs []event) []event {
		for i := range evs {
			evs[i].id = ""
		}
		return evs
	}
	direct := records(5, 10, every(50*ms, 0))
	tests := []struct {
		name string
		f    format
		a, b []event
		want match
	}{
		{"by id, one missing through the path", formatSSE, append(records(2, 10, every(50*ms, 0)), records(5, 10, every(50*ms, 0))[3:]...), direct,
			match{by: "id", pairs: [][2]int{{0, 0}, {1, 1}, {2, 3}, {3, 4}}}},
		{"by content, in order", formatNDJSON, noIDs(records(3, 10, every(50*ms, 0))), noIDs(records(5, 10, every(50*ms, 0))),
			match{by: "content", pairs: [][2]int{{0, 0}, {1, 1}, {2, 2}}}},
		{"by position, contents differ", formatSSE, noIDs([]event{{data: "a"}, {data: "b"}, {data: "c"}}), noIDs([]event{{data: "x"}, {data: "y"}}),
			match{by: "position", pairs: [][2]int{{0, 0}, {1, 1}}}},
		{"text chunks by bytes", formatText, []event{{end: 5}, {end: 12}, {end: 30}}, []event{{end: 4}, {end: 8}, {end: 16}, {end: 30}},
			match{by: "bytes", pairs: [][2]int{{0, 0}, {1, 1}, {2, 2}, {2, 3}}}},
		{"text held whole", formatText, []event{{end: 30}}, []event{{end: 4}, {end: 8}, {end: 16}, {end: 30}},
			match{by: "bytes", pairs: [][2]int{{0, 0}, {0, 1}, {0, 2}, {0, 3}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, matchEvents(tt.f, tt.a, tt.b), cmp.AllowUnexported(match{})); diff != "" {
				t.Errorf("match (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAddedVerdicts judges what a path adds beside the direct read: a
// bursty server read both ways is live through a path that adds nothing,
// whatever its bursts; a uniform lag is live; a path that holds is not.
func TestAddedVerdicts(t *testing.T) {
	t1 := t0.Add(3 * ms) // the path's read was sent 3ms after the direct one
	bursty := func(i int) time.Duration { return time.Duration(i/5) * 500 * ms }
	tests := []struct {
		name          string
		path, direct  []event
		want          string
		p50, p99, max time.Duration
	}{
		{"a bursty server through a path that adds nothing",
			records(20, 50, func(i int) time.Duration { return bursty(i) + ms }), records(20, 50, bursty),
			"live", 4 * ms, 4 * ms, 4 * ms},
		{"a uniform lag of 80ms", records(20, 50, every(50*ms, 80*ms)), records(20, 50, every(50*ms, 0)),
			"live", 83 * ms, 83 * ms, 83 * ms},
		{"released every 250ms", records(20, 50, func(i int) time.Duration { return (time.Duration(i)*50*ms/(250*ms) + 1) * 250 * ms }),
			records(20, 50, every(50*ms, 0)), "batched", 153 * ms, 253 * ms, 253 * ms},
		{"held to the end", records(20, 50, func(int) time.Duration { return time.Second }), records(20, 50, every(50*ms, 0)),
			"held", 503 * ms, 1003 * ms, 1003 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := reading{start: t1, events: tt.path}
			direct := reading{start: t0, events: tt.direct}
			added := addedDelays(matchEvents(formatSSE, tt.path, tt.direct), path, direct)
			last := tt.path[len(tt.path)-1].at
			got := addedVerdict(added, arrivalPattern(tt.path, 0, last+ms, true))
			if got != tt.want {
				t.Errorf("verdict %q, want %q", got, tt.want)
			}
			figures := []time.Duration{percentile(added, 50), percentile(added, 99), percentile(added, 100)}
			if diff := cmp.Diff([]time.Duration{tt.p50, tt.p99, tt.max}, figures); diff != "" {
				t.Errorf("p50, p99, max (-want +got):\n%s", diff)
			}
		})
	}
}
