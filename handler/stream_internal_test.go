package handler

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// discardWriter is the cheapest ResponseWriter that can flush and set write
// deadlines, so the benchmarks below measure tickstream's own work per event.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header              { return d.header }
func (d *discardWriter) WriteHeader(int)                  {}
func (d *discardWriter) Write(b []byte) (int, error)      { return len(b), nil }
func (d *discardWriter) FlushError() error                { return nil }
func (d *discardWriter) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkTick measures what /events does for each event on the
// goroutine driver: the schedule builds the frame in the stream's buffer,
// and the writer sets the write deadline, writes it and flushes it.
func BenchmarkTick(b *testing.B) {
	benchmarkStream(b, &schedule{kind: ticks, end: maxEventID, stamp: time.Now})
}

// BenchmarkFast measures the same for /stream/fast events.
func BenchmarkFast(b *testing.B) {
	benchmarkStream(b, &schedule{kind: burst, end: 1 << 62, stamp: time.Now})
}

func benchmarkStream(b *testing.B, sched *schedule) {
	h := New()
	rw := responseWriter{w: &discardWriter{header: http.Header{}}, canFlush: true, canDeadline: true, writeTimeout: h.writeTimeout}
	rw.rc = http.NewResponseController(rw.w)
	buf := make([]byte, 0, 256)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		frame, _, _ := sched.Next(buf[:0], now)
		if err := rw.send(frame); err != nil {
			b.Fatal(err)
		}
		now = now.Add(time.Second)
	}
}

// TestScheduleHeartbeats: a stream whose events are further apart than
// the heartbeat sends keepalive comments in between, and its events keep
// to their fixed schedule.
func TestScheduleHeartbeats(t *testing.T) {
	start := time.Unix(1000, 0)
	s := &schedule{kind: ticks, end: 3, id: 1, period: 10 * time.Second, heartbeat: 4 * time.Second, due: start,
		stamp: func() time.Time { return start }}
	type step struct {
		at    time.Duration
		frame string
		next  time.Duration
		last  bool
	}
	var got []step
	at := start
	for range 20 {
		frame, next, last := s.Next(nil, at)
		got = append(got, step{at.Sub(start), strings.SplitN(string(frame), "\n", 2)[0], next.Sub(start), last})
		if last {
			break
		}
		at = next
	}
	want := []step{
		{0, "id: 1", 4 * time.Second, false},
		{4 * time.Second, ": keepalive", 8 * time.Second, false},
		{8 * time.Second, ": keepalive", 10 * time.Second, false},
		{10 * time.Second, "id: 2", 14 * time.Second, false},
		{14 * time.Second, ": keepalive", 18 * time.Second, false},
		{18 * time.Second, ": keepalive", 20 * time.Second, false},
		{20 * time.Second, "id: 3", 24 * time.Second, true},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(step{})); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
}

// TestScheduleRestartsWhenBehind: a stream more than a period behind (a
// slow client) restarts its schedule from now instead of bursting.
func TestScheduleRestartsWhenBehind(t *testing.T) {
	start := time.Unix(1000, 0)
	s := &schedule{kind: burst, end: 10, period: time.Second, due: start, stamp: time.Now}
	s.Next(nil, start)
	if _, next, _ := s.Next(nil, start.Add(1500*time.Millisecond)); !next.Equal(start.Add(2 * time.Second)) {
		t.Errorf("half a period late: next due at +%v, want +2s (the fixed schedule)", next.Sub(start))
	}
	late := start.Add(10 * time.Second)
	if _, next, _ := s.Next(nil, late); !next.Equal(late) {
		t.Errorf("8s behind: next due at +%v, want +10s (now: the schedule restarts)", next.Sub(start))
	}
}

func TestParseLastEventID(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true}, {"0", 0, true}, {"9007199254740990", 9007199254740990, true},
		{"9007199254740991", 0, false}, {"", 0, false}, {"1.5", 0, false}, {"１", 0, false},
		{"+1", 0, false}, {" 1", 0, false}, {"0x1", 0, false}, {"99999999999999999999", 0, false},
	} {
		got, ok := parseLastEventID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseLastEventID(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
