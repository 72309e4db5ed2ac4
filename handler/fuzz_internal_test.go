package handler

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// FuzzParams proves that parsing any query, with any POST body, never
// panics and yields either an error or settings within their documented
// bounds.
func FuzzParams(f *testing.F) {
	for _, q := range []string{"", "interval=250ms&count=10&size=1024", "count=1&count=2", "interval=%zz",
		"size=1048577", "delay=0&count=10000", "interval=1h", "count=-0", "size=+5", "interval=9223372036854775807ns",
		"format=ndjson", "format=text&format=sse", "format=NDJSON", "format=%00"} {
		f.Add(q, "")
	}
	for _, body := range []string{`{"count":20,"delay":"50ms","size":0}`, `{"count":1e3}`, `{"count":"20"}`, `[1]`,
		`{"interval":"1s"} {}`, `{"count":20,"count":30}`, `{"heartbeat":null}`, `{"size":1048577}`,
		`{"format":"text"}`, `{"format":1}`} {
		f.Add("count=20", body)
	}
	h := New()
	f.Fuzz(func(t *testing.T, rawQuery, body string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.URL.RawQuery = rawQuery
		if p, err := mergedParams(h, httptest.NewRecorder(), r, eventsParamNames, h.parseEventsParams); err == nil {
			if p.interval < minInterval || p.interval > maxInterval || p.count < 0 || p.count > maxEventsCount ||
				p.size < 0 || p.size > maxSize || int(p.format) >= len(formatNames) {
				t.Fatalf("events %q %q = %+v: out of bounds", rawQuery, body, p)
			}
		}
		r = httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.URL.RawQuery = rawQuery
		if p, err := mergedParams(h, httptest.NewRecorder(), r, fastParamNames, h.parseFastParams); err == nil {
			if p.count < 1 || p.count > maxFastCount || p.delay < 0 || p.delay > maxFastDelay || int(p.format) >= len(formatNames) {
				t.Fatalf("fast %q %q = %+v: out of bounds", rawQuery, body, p)
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
