package main

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
)

// A Report is the check's result: one Finding per check, in a fixed order.
type Report struct {
	Mode           string    `json:"mode"` // "tickstream": the battery; "stream": one stream, any server's
	URL            string    `json:"url"`
	RedirectedFrom string    `json:"redirected_from,omitempty"` // with -follow: the URL given
	Proxy          string    `json:"proxy"`                     // the forward proxy used, or "direct"
	Software       []string  `json:"software,omitempty"`        // what the responses show of the path: nginx, Varnish...
	Method         string    `json:"method,omitempty"`          // stream mode: the request's method
	Compare        string    `json:"compare,omitempty"`         // stream mode: the URL read beside it (-compare)
	OK             bool      `json:"ok"`                        // no finding breaks live streaming
	Checks         []Finding `json:"checks"`

	probes  []probeResult  // what -report draws of the battery
	streams []streamSeries // and of stream mode
	clock   clockEstimate  // and on which clock
}

// settle gives each failing finding the fix for the software the responses
// show, and the report its verdict: OK when no finding fails.
func (rep *Report) settle() {
	rep.OK = true
	for i := range rep.Checks {
		f := &rep.Checks[i]
		if f.problem != "" {
			f.Fix = fixFor(f.problem, rep.Software, f.Fix)
		}
		rep.OK = rep.OK && f.OK
	}
}

// A Finding is the result of one check.
type Finding struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`
	Fix     string `json:"fix,omitempty"`

	// Figures, where the check measures them.
	MaxHoldMs      *int64 `json:"max_hold_ms,omitempty"`
	BlockBytes     int    `json:"block_bytes,omitempty"`
	ReleaseEveryMs int64  `json:"release_every_ms,omitempty"`
	CutAfterMs     int64  `json:"cut_after_ms,omitempty"`
	ThresholdBytes int    `json:"threshold_bytes,omitempty"` // compression: the minimum size a compressor waits for
	Encoding       string `json:"encoding,omitempty"`
	HTTP3          string `json:"http3,omitempty"` // protocol: how the burst came over HTTP/3, where Alt-Svc offered it
	// Stream mode's delivery finding: the stream's format, how many records
	// were read, when the first byte and record came, and, with -compare,
	// how much later each matched event came through the path.
	Format      string   `json:"format,omitempty"`
	Events      *int     `json:"events,omitempty"`
	FirstByteMs *float64 `json:"first_byte_ms,omitempty"`
	MatchedBy   string   `json:"matched_by,omitempty"`
	AddedMsP50  *float64 `json:"added_ms_p50,omitempty"`
	AddedMsP99  *float64 `json:"added_ms_p99,omitempty"`
	AddedMsMax  *float64 `json:"added_ms_max,omitempty"`
	// The latency finding's, to a tenth of a millisecond.
	RoundTripMs        *float64 `json:"round_trip_ms,omitempty"`
	FirstEventMs       *float64 `json:"first_event_ms,omitempty"`
	EventLatencyMs     *float64 `json:"event_latency_ms,omitempty"`
	ClockUncertaintyMs *float64 `json:"clock_uncertainty_ms,omitempty"`

	problem string // what Fix fixes, to find the setting for the path's software
}

// tickstreamHeaders judges tickstream's stream headers as the client got
// them: headersFinding's, and whether the Cache-Control tickstream sends
// arrived.
func tickstreamHeaders(h http.Header, proto string) Finding {
	f := headersFinding(h, proto, true)
	if f.Verdict == "intact" && h.Get("Cache-Control") != "no-cache" {
		f.Verdict = "rewritten"
		f.Detail += "; the server sent Cache-Control: no-cache, which tells caches on the way not to hold the stream"
	}
	return f
}

// hopByHop are the headers of one connection (RFC 9110, section 7.6.1),
// which HTTP/2 and HTTP/3 forbid in a response: Safari (WebKit) fails a
// stream that carries one, as a proxy relaying an HTTP/1.1 origin's head
// over HTTP/2 makes it.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

// headersFinding judges a stream's headers as the client got them: a
// Content-Type EventSource takes (if eventSource: the stream is read as a
// browser's EventSource reads it), no cache's Age, and no hop-by-hop header
// on HTTP/2 or later.
func headersFinding(h http.Header, proto string, eventSource bool) Finding {
	f := Finding{Name: "headers", Verdict: "intact", OK: true}
	ct, cc := h.Get("Content-Type"), h.Get("Cache-Control")
	f.Detail = fmt.Sprintf("Content-Type: %s; Cache-Control: %s", orNone(ct), orNone(cc))
	if !strings.HasPrefix(proto, "HTTP/1") {
		var got []string
		for _, name := range hopByHop {
			if v, ok := h[name]; ok {
				got = append(got, name+": "+strings.Join(v, ", "))
			}
		}
		if len(got) > 0 {
			f.Verdict, f.OK = "hop-by-hop", false
			f.Detail += "; " + proto + " response with " + strings.Join(got, "; ") + ": Safari fails such a stream (HTTP/2 forbids connection headers)"
			f.Fix = "remove Connection, Keep-Alive, Transfer-Encoding and Upgrade from responses sent over HTTP/2 (the server sets them, and the proxy relays them)"
			return f
		}
	}
	if mt, _, err := mime.ParseMediaType(ct); eventSource && (err != nil || mt != "text/event-stream") {
		f.Verdict, f.OK = "rewritten", false
		f.Detail += "; browsers' EventSource refuses any Content-Type but text/event-stream"
		f.Fix = "pass the server's Content-Type through"
		return f
	}
	if age := h.Get("Age"); age != "" && age != "0" {
		f.Verdict, f.OK = "cached", false
		f.Detail += "; Age: " + age + ": the stream came from a cache, so clients get old events replayed"
		f.Fix, f.problem = "have caches on the path pass text/event-stream through uncached, one fetch per client", problemCache
		return f
	}
	return f
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// tenths returns d in milliseconds, to a tenth of one.
func tenths(d time.Duration) *float64 {
	ms := float64(d.Round(100*time.Microsecond)) / float64(time.Millisecond)
	return &ms
}

func millis(d time.Duration) *int64 {
	n := d.Milliseconds()
	return &n
}

// encoded prefixes what a browser got with its encoding, if it was
// compressed.
func encoded(encoding, s string) string {
	if encoding == "" || encoding == "identity" {
		return s
	}
	return encoding + ": " + s
}
