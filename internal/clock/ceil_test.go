package clock_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/clock"
)

// TestCeil checks clock.Ceil against rounding up with Truncate, for grids
// that divide a second, at instants on and off them, before and after the
// Unix epoch, with and without a monotonic clock reading.
func TestCeil(t *testing.T) {
	grids := []time.Duration{time.Nanosecond, time.Microsecond, time.Millisecond, 10 * time.Millisecond, 250 * time.Millisecond, time.Second}
	times := []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(-1, 999_999_999),
		time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 13, 0, 0, 1, time.UTC),
		time.Date(2026, 12, 6, 13, 0, 59, 999_999_999, time.UTC),
		time.Now(),
		time.Now().Add(3 * time.Millisecond),
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10_000 {
		times = append(times, time.Unix(rng.Int64N(1<<36)-1<<35, rng.Int64N(1e9)))
	}
	for _, d := range grids {
		for _, ts := range times {
			want := ts.Truncate(d)
			if want.Before(ts) {
				want = want.Add(d)
			}
			if got := clock.Ceil(ts, d); !got.Equal(want) {
				t.Fatalf("Ceil(%v, %v) = %v, want %v", ts, d, got, want)
			}
		}
	}
	// The monotonic reading is kept (time.Time's String shows it as m=).
	now := time.Now()
	if got := clock.Ceil(now.Add(time.Nanosecond), time.Millisecond); !strings.Contains(got.String(), " m=") {
		t.Errorf("Ceil(%v, 1ms) = %v, without the monotonic reading", now, got)
	}
}
