package main

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tickstream/tickstream/internal/proxytest"
)

// cappedRelay relays to upstream (a base URL) as a gateway with a limit on
// a response's whole time does (Envoy's route timeout, API Gateway's, a
// GCP backend service's): each response is cut after limit, however busy,
// its body left unterminated.
func cappedRelay(t *testing.T, upstream string, limit time.Duration) string {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	relay := httputil.NewSingleHostReverseProxy(target)
	relay.FlushInterval = -1
	relay.ErrorLog = log.New(io.Discard, "", 0) // each cut is logged as an error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), limit)
		defer cancel()
		relay.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// capOf returns rep's findings named cap, idle and end, for comparing whole.
func capOf(rep Report) []Finding {
	var out []Finding
	for _, f := range rep.Checks {
		if f.Name == "cap" || f.Name == "idle" || f.Name == "end" {
			out = append(out, f)
		}
	}
	return out
}

// capFields leave out the details and figures, which are checked on their
// own with bounds.
var capFields = cmp.Options{
	cmpopts.IgnoreFields(Finding{}, "Detail", "CutAfterMs", "MaxHoldMs", "Events", "FirstByteMs", "FirstEventMs", "Format", "RoundTripMs", "EventLatencyMs", "ClockUncertaintyMs"),
	cmpopts.IgnoreUnexported(Finding{}),
}

// TestCaps holds a busy stream (-duration) and a silent one (-idle) at
// the same moment through paths that cap a response's whole time: a relay
// that cuts every response at 8s, which cuts both streams at once (so the
// idle cut is the cap's, with no heartbeat advice), and Debian's Varnish
// with send_timeout=8, which it checks only when it writes: the busy
// stream is cut at its first event past 8s, the silent one kept. Directly,
// nothing is cut.
func TestCaps(t *testing.T) {
	if testing.Short() {
		t.Skip("holds streams for 12s")
	}
	up := upstream(t)
	host := strings.TrimPrefix(up, "http://")
	capFix := fixFor(problemCap, nil, fixCap)
	type capCase struct {
		name  string
		url   func(t *testing.T) string
		want  []Finding
		cutAt [2]time.Duration // the window the cuts come in; zero: not cut
	}
	cases := []capCase{
		{"direct", func(*testing.T) string { return up }, []Finding{
			{Name: "cap", Verdict: "none", OK: true},
			{Name: "idle", Verdict: "kept", OK: true},
			{Name: "end", Verdict: "prompt", OK: true},
		}, [2]time.Duration{}},
		{"a relay that cuts every response at 8s", func(t *testing.T) string { return cappedRelay(t, up, 8*time.Second) }, []Finding{
			{Name: "cap", Verdict: "cut", Fix: capFix},
			{Name: "idle", Verdict: "capped", OK: true},
			{Name: "end", Verdict: "prompt", OK: true},
		}, [2]time.Duration{7500 * time.Millisecond, 9 * time.Second}},
		{"Varnish, send_timeout=8", func(t *testing.T) string { return proxytest.Varnish(t, host, "", "send_timeout=8") }, []Finding{
			{Name: "cap", Verdict: "cut", Fix: productFix(t, "Varnish", problemCap)},
			{Name: "idle", Verdict: "kept", OK: true},
			{Name: "end", Verdict: "prompt", OK: true},
		}, [2]time.Duration{7500 * time.Millisecond, 10 * time.Second}}, // the first write past 8s: an event a second
	}
	runAtOnce(t, len(cases), cases, func(c capCase) string { return c.name }, func(t *testing.T, c capCase) {
		rep, code := checkJSON(t, c.url(t), "-duration", "12s", "-idle", "12s")
		if diff := cmp.Diff(c.want, capOf(rep), capFields); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
		if wantCode := map[bool]int{true: 0, false: 1}[c.cutAt[1] == 0]; code != wantCode {
			t.Errorf("exit status %d, want %d", code, wantCode)
		}
		for _, f := range capOf(rep)[:2] {
			if c.cutAt[1] == 0 || f.Verdict == "kept" {
				continue
			}
			if at := time.Duration(f.CutAfterMs) * time.Millisecond; at < c.cutAt[0] || at > c.cutAt[1] {
				t.Errorf("%s: cut after %v, want between %v and %v", f.Name, at, c.cutAt[0], c.cutAt[1])
			}
		}
	})
}

// TestStreamCap: stream mode with -duration reads an endless stream that
// long: through a relay that cuts it at 2s, the cap finding says so;
// directly, nothing is cut.
func TestStreamCap(t *testing.T) {
	up := upstream(t)
	target := "/events?interval=100ms&heartbeat=0"
	for _, tt := range []struct {
		name    string
		url     string
		verdict string
		code    int
	}{
		{"direct", up, "none", 0},
		{"a relay that cuts every response at 2s", cappedRelay(t, up, 2*time.Second), "cut", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, code := streamJSON(t, "-duration", "4s", tt.url+target)
			f := finding(rep, "cap")
			if f.Verdict != tt.verdict || code != tt.code {
				t.Errorf("cap %s (exit %d), want %s (exit %d): %s", f.Verdict, code, tt.verdict, tt.code, f.Detail)
			}
			if tt.verdict == "cut" && (f.CutAfterMs < 1500 || f.CutAfterMs > 3000) {
				t.Errorf("cut after %dms, want about 2000", f.CutAfterMs)
			}
		})
	}
}
