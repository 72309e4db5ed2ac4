package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tickstream/tickstream/internal/proxytest"
)

// streamJSON runs stream mode with -json and args and returns its report
// and exit status.
func streamJSON(t *testing.T, args ...string) (Report, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWithLimits(context.Background(), append([]string{"-json", "-stream"}, args...), &stdout, &stderr, testLimits)
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, stdout %q, stderr %q: %v", code, stdout.String(), stderr.String(), err)
	}
	return rep, code
}

// streamVerdicts compares stream-mode reports but for timing: the details
// and figures are checked against the ground truth, separately.
var streamVerdicts = cmp.Options{
	cmpopts.IgnoreFields(Finding{}, "Detail", "MaxHoldMs", "FirstEventMs", "FirstByteMs", "AddedMsP50", "AddedMsP99", "AddedMsMax", "MatchedBy"),
	cmpopts.IgnoreFields(Report{}, "URL", "Compare"),
	cmpopts.IgnoreUnexported(Report{}, Finding{}),
}

// streamWant is the report stream mode gives a stream of format with
// events records read through a path whose software shows as software:
// delivery as verdict (with its buffering fix unless live), the rest as a
// plain HTTP/1.1 path gives them, and the end as end.
func streamWant(software []string, verdict, format string, events int, end string) Report {
	delivery := Finding{Name: "delivery", Verdict: verdict, OK: verdict == "live", Format: format, Events: &events}
	if !delivery.OK {
		delivery.Fix = fixFor(problemBuffering, software, fixBuffering)
	}
	return Report{Mode: "stream", Method: "POST", Proxy: "direct", Software: software, OK: delivery.OK, Checks: []Finding{
		delivery,
		{Name: "compression", Verdict: "none", OK: true},
		{Name: "headers", Verdict: "intact", OK: true},
		{Name: "protocol", Verdict: "HTTP/1.1", OK: true},
		{Name: "end", Verdict: end, OK: true},
	}}
}

// groundTruth is what a client that only reads and timestamps each record
// saw of the same stream through the path and directly, read at the same
// moment as the check's reads: the delay the path added to each record
// (paired by position), and the verdict those delays give.
type groundTruth struct {
	added   []time.Duration
	verdict string
}

// truth reads body posted to path and direct at once, stamping records,
// and judges the path by the stamps alone.
func truth(t *testing.T, path, direct, body string, records int) groundTruth {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		wg      sync.WaitGroup
		stamps  [2][]time.Time
		errs    [2]error
		targets = [2]string{path, direct}
	)
	for i, u := range targets {
		wg.Go(func() { stamps[i], errs[i] = stamp(ctx, u, "application/json", body, true) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || len(stamps[i]) != records {
			t.Fatalf("ground truth from %s: %d records (want %d), %v", targets[i], len(stamps[i]), records, err)
		}
	}
	var gt groundTruth
	for i := range records {
		gt.added = append(gt.added, stamps[0][i].Sub(stamps[1][i]))
	}
	spread := percentile(gt.added, 99) - max(slices.Min(gt.added), 0)
	last := stamps[0][records-1]
	switch {
	case spread < liveHold:
		gt.verdict = "live"
	case last.Sub(stamps[0][0]) < 50*time.Millisecond:
		gt.verdict = "held"
	case spread >= bufferedHold:
		gt.verdict = "buffered"
	default:
		gt.verdict = "batched"
	}
	return gt
}

// TestStreamModeRealServers points stream mode at real streams people
// send, direct and behind Debian's proxies with their default
// configurations: an OpenAI-compatible chat completion (written from the
// public wire format: no X-Accel-Buffering, so nginx buffers it) and an MCP
// server on the official TypeScript SDK (which sends X-Accel-Buffering: no,
// so nginx relays it live). Each case reads the stream three ways at the
// same moment: a ground-truth client that timestamps each record through
// the path and directly, stream mode alone, and stream mode with -compare.
// The ground truth's verdict, stream mode's verdicts with and without
// -compare, and the expected verdict must all agree, and -compare's median
// added delay must be the ground truth's within 20ms.
func TestStreamModeRealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs proxies and Node.js")
	}
	const (
		tokens, tokenEvery = 40, 80 * time.Millisecond  // 43 records: the role, 40 tokens, the finish, [DONE]
		steps, stepEvery   = 20, 100 * time.Millisecond // 21 records: 20 progress notifications, the result
	)
	openAI := openAIServer(t, tokenEvery) + "/v1/chat/completions"
	mcp := mcpServer(t)
	streams := []struct {
		name, url, body string
		records         int
		end             string
		headers         []string
	}{
		{"OpenAI chat completion", openAI, chatRequest(tokens), tokens + 3, "done", []string{"-H", "Content-Type: application/json"}},
		{"MCP tools/call", mcp, mcpCall(steps, stepEvery), steps + 1, "ended",
			[]string{"-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream"}},
	}
	nginx, apache := []string{"nginx"}, []string{"Apache httpd"}
	paths := []struct {
		name     string
		url      func(t *testing.T, host string) string
		software []string
		want     map[string]string // the delivery verdict, by stream
	}{
		{"direct", func(_ *testing.T, host string) string { return "http://" + host }, nil,
			map[string]string{"OpenAI chat completion": "live", "MCP tools/call": "live"}},
		{"nginx, default", func(t *testing.T, host string) string {
			return proxytest.Nginx(t, host, `location / { proxy_pass http://tickstream; }`)
		}, nginx, map[string]string{"OpenAI chat completion": "buffered", "MCP tools/call": "live"}},
		{"nginx, proxy_buffering off", func(t *testing.T, host string) string {
			return proxytest.Nginx(t, host, `location / { proxy_pass http://tickstream; proxy_buffering off; }`)
		}, nginx, map[string]string{"OpenAI chat completion": "live", "MCP tools/call": "live"}},
		{"HAProxy, default", func(t *testing.T, host string) string { return proxytest.HAProxy(t, host, "") }, nil,
			map[string]string{"OpenAI chat completion": "batched", "MCP tools/call": "batched"}},
		{"Apache, default", func(t *testing.T, host string) string { return proxytest.Apache(t, host, "") }, apache,
			map[string]string{"OpenAI chat completion": "live", "MCP tools/call": "live"}},
	}
	for _, s := range streams {
		up, err := url.Parse(s.url)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			t.Run(s.name+" via "+p.name, func(t *testing.T) {
				t.Parallel()
				through := p.url(t, up.Host) + up.Path
				args := append(slices.Clone(s.headers), "-d", s.body)
				var (
					wg            sync.WaitGroup
					alone, withCT Report
					codeA, codeC  int
					gt            groundTruth
				)
				wg.Go(func() { alone, codeA = streamJSON(t, append(slices.Clone(args), through)...) })
				wg.Go(func() { withCT, codeC = streamJSON(t, append(slices.Clone(args), "-compare", s.url, through)...) })
				wg.Go(func() { gt = truth(t, through, s.url, s.body, s.records) })
				wg.Wait()
				want := p.want[s.name]
				if gt.verdict != want {
					t.Fatalf("the ground truth says %s (added %v), the test expects %s", gt.verdict, gt.added, want)
				}
				wantRep := streamWant(p.software, want, "sse", s.records, s.end)
				for _, c := range []struct {
					name string
					rep  Report
					code int
				}{{"alone", alone, codeA}, {"with -compare", withCT, codeC}} {
					if diff := cmp.Diff(wantRep, c.rep, streamVerdicts); diff != "" {
						t.Errorf("%s: report (-want +got):\n%s", c.name, diff)
					}
					if wantCode := map[bool]int{true: 0, false: 1}[wantRep.OK]; c.code != wantCode {
						t.Errorf("%s: exit status %d, want %d", c.name, c.code, wantCode)
					}
				}
				d := finding(withCT, "delivery")
				if d.AddedMsP50 == nil {
					t.Fatalf("-compare gave no added delay: %+v", d)
				}
				gtP50 := float64(percentile(gt.added, 50).Microseconds()) / 1000
				if diff := *d.AddedMsP50 - gtP50; diff > 20 || diff < -20 {
					t.Errorf("-compare adds %.1fms at the median, the ground truth %.1fms", *d.AddedMsP50, gtP50)
				}
				t.Logf("%s: ground truth %s, p50 %.1fms; -compare p50 %.1fms p99 %.1fms, matched by %s", want, gt.verdict, gtP50, *d.AddedMsP50, *d.AddedMsP99, d.MatchedBy)
			})
		}
	}
}

// TestStreamModeFormats reads the other streams people send, direct and
// through nginx's default configuration, which buffers them as it buffers
// any response without X-Accel-Buffering: NDJSON (Ollama's) is judged by
// its lines, paired by content, and ends with its done record; a text
// stream (the Vercel AI SDK's text protocol) by its chunks, paired by
// bytes. Each is read with -compare against the server directly.
func TestStreamModeFormats(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nginx")
	}
	const n, every = 30, 60 * time.Millisecond
	servers := []struct {
		name, url, format, end, matchedBy string
		records                           int
	}{
		{"NDJSON", ndjsonServer(t, n, every), "ndjson", "done", "content", n + 1},
		{"text", textServer(t, n, every), "text", "ended", "bytes", n},
	}
	for _, s := range servers {
		up, _ := url.Parse(s.url)
		for _, p := range []struct {
			name     string
			url      string
			software []string
			verdict  string
		}{
			{"direct", s.url, nil, "live"},
			{"nginx, default", proxytest.Nginx(t, up.Host, `location / { proxy_pass http://tickstream; }`), []string{"nginx"}, "held"},
		} {
			t.Run(s.name+" via "+p.name, func(t *testing.T) {
				t.Parallel()
				rep, code := streamJSON(t, "-X", "GET", "-H", "Accept: */*", "-compare", s.url, p.url+"/")
				want := streamWant(p.software, p.verdict, s.format, s.records, s.end)
				want.Method = "GET"
				if s.format == "text" && p.verdict != "live" {
					want.Checks[0].Events = finding(rep, "delivery").Events // a held text stream arrives in as many chunks as its path cuts it
				}
				if diff := cmp.Diff(want, rep, streamVerdicts); diff != "" {
					t.Errorf("report (-want +got):\n%s", diff)
				}
				if d := finding(rep, "delivery"); d.MatchedBy != s.matchedBy {
					t.Errorf("matched by %q, want %q", d.MatchedBy, s.matchedBy)
				}
				if wantCode := map[bool]int{true: 0, false: 1}[want.OK]; code != wantCode {
					t.Errorf("exit status %d, want %d", code, wantCode)
				}
			})
		}
	}
}
