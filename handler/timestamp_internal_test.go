package handler

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendTimestamp checks appendTimestamp against what it stands in
// for, t.UTC().AppendFormat(dst, timestampLayout), byte for byte: at the
// edges of its fields, outside four-digit years, in zones other than UTC,
// and at instants drawn at random across the years.
func TestAppendTimestamp(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	times := []time.Time{
		{},
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2026, 12, 6, 12, 52, 9, 1_000_000, time.UTC),
		time.Date(2026, 12, 6, 12, 52, 9, 999_999, time.UTC),
		time.Date(2024, 2, 29, 9, 5, 7, 123_456_789, time.UTC),
		time.Date(2027, 1, 1, 3, 0, 0, 0, east), // 2026 in UTC
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 15, 12, 0, 0, 0, time.UTC),
		time.Unix(1<<40, 0),
		time.Unix(-1<<40, 0),
		time.Now(),
		time.Now().In(east),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		sec := rng.Int64N(int64(10200*365.25*24*3600)) - int64(100*365.25*24*3600) - 62135596800 // years -100 to 10100
		times = append(times, time.Unix(sec, rng.Int64N(1e9)))
	}
	prefix := []byte("ts=")
	for _, ts := range times {
		want := string(ts.UTC().AppendFormat(prefix, timestampLayout))
		if got := string(appendTimestamp(prefix, ts)); got != want {
			t.Fatalf("appendTimestamp(%q, %v) = %q, want %q", prefix, ts, got, want)
		}
	}
}

// BenchmarkAppendTimestamp compares appendTimestamp with the AppendFormat
// it replaces: go test -run '^$' -bench Timestamp ./handler
func BenchmarkAppendTimestamp(b *testing.B) {
	ts := time.Date(2026, 12, 6, 12, 52, 9, 123_456_789, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("appendTimestamp", func(b *testing.B) {
		for b.Loop() {
			buf = appendTimestamp(buf[:0], ts)
		}
	})
	b.Run("AppendFormat", func(b *testing.B) {
		for b.Loop() {
			buf = ts.UTC().AppendFormat(buf[:0], timestampLayout)
		}
	})
}
