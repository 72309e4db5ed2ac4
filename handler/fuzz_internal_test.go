package handler

import (
	"strconv"
	"testing"
)

// FuzzParams proves that parsing any query never panics and yields either an
// error or settings within their documented bounds.
func FuzzParams(f *testing.F) {
	for _, q := range []string{"", "interval=250ms&count=10&size=1024", "count=1&count=2", "interval=%zz",
		"size=1048577", "delay=0&count=10000", "interval=1h", "count=-0", "size=+5", "interval=9223372036854775807ns"} {
		f.Add(q)
	}
	h := New()
	f.Fuzz(func(t *testing.T, rawQuery string) {
		if p, err := h.parseEventsParams(rawQuery); err == nil {
			if p.interval < minInterval || p.interval > maxInterval || p.count < 0 || p.count > maxEventsCount ||
				p.size < 0 || p.size > maxSize {
				t.Fatalf("parseEventsParams(%q) = %+v: out of bounds", rawQuery, p)
			}
		}
		if p, err := h.parseFastParams(rawQuery); err == nil {
			if p.count < 1 || p.count > maxFastCount || p.delay < 0 || p.delay > maxFastDelay {
				t.Fatalf("parseFastParams(%q) = %+v: out of bounds", rawQuery, p)
			}
		}
	})
}

// FuzzParseLastEventID proves that any header either is refused or yields
// an id from which the stream can continue: in range, and exactly the
// decimal number the header spells.
func FuzzParseLastEventID(f *testing.F) {
	for _, s := range []string{"", "0", "41", "007", "9007199254740990", "9007199254740991", "-1", "+1", " 1", "1e3", "0x1f", "١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseLastEventID(s)
		if !ok {
			if n != 0 {
				t.Fatalf("ParseLastEventID(%q) = %d, false; want 0 with false", s, n)
			}
			return
		}
		if n < 0 || n+1 > maxEventID {
			t.Fatalf("ParseLastEventID(%q) = %d: out of range", s, n)
		}
		if m, err := strconv.ParseUint(s, 10, 64); err != nil || int64(m) != n {
			t.Fatalf("ParseLastEventID(%q) = %d, but the header spells %d (%v)", s, n, m, err)
		}
	})
}
