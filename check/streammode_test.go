package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
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
// moment: the delay the path added to each record (paired by position),
// and the verdict those delays give. Each read's delays are counted from
// when the server sent each record, as its send log says, so that the
// server's own timing (two requests set up one after the other, timers
// that drift apart) is not taken for the path's.
type groundTruth struct {
	added   []time.Duration
	verdict string
}

// truth reads body posted to path and direct at once, stamping records,
// and judges the path by the stamps, counted from the sends that log
// noted (direct is the server's host, which the path changes or adds
// X-Forwarded-Host to). Records the server does not log (an MCP call's
// result) are left out of the delays.
func truth(t *testing.T, path, direct, body string, records, logged int, log *sendLog) groundTruth {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		wg      sync.WaitGroup
		stamps  [2][]stamped
		errs    [2]error
		targets = [2]string{path, direct}
	)
	start := time.Now()
	for i, u := range targets {
		wg.Go(func() { stamps[i], errs[i] = stamp(ctx, u, "application/json", body, true) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || len(stamps[i]) != records {
			t.Fatalf("ground truth from %s: %d records (want %d), %v", targets[i], len(stamps[i]), records, err)
		}
	}
	host, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := log.pairOf(start, host.Host, "identity", "1", logged)
	if err != nil {
		t.Fatal(err)
	}
	var gt groundTruth
	for i := range logged {
		gt.added = append(gt.added, stamps[0][i].at.Sub(sent.path[i])-stamps[1][i].at.Sub(sent.direct[i]))
	}
	gt.verdict = truthVerdict(gt.added, stamps[0][records-1].at.Sub(stamps[0][0].at) < 50*time.Millisecond)
	return gt
}

// A realStream is a real server's stream that stream mode is tested on:
// its server (one of its own if need be), the request, how many records it
// sends (and how many of them its send log notes) and how it ends.
type realStream struct {
	name, body string
	warmUp     string // a short request's body, sent through the path first
	server     func(t *testing.T) streamServer
	records    int
	logged     int
	end        string
	headers    []string
}

// A streamServer is a real server a test reads: its URL, and what it sent
// to whom and when.
type streamServer struct {
	url string
	log *sendLog
}

// A realPath is a path stream mode is tested through, and the delivery
// verdict each stream must get there, by the stream's name.
type realPath struct {
	name     string
	url      func(t *testing.T, host string) string
	software []string
	want     map[string]string
}

// TestStreamModeRealServers points stream mode at real streams people
// send, direct and behind Debian's proxies with their default
// configurations: an OpenAI-compatible chat completion (written from the
// public wire format: no X-Accel-Buffering, so nginx buffers it) and an MCP
// server on the official TypeScript SDK (which sends X-Accel-Buffering: no,
// so nginx relays it live). Each case reads the stream three ways: a
// ground-truth client that timestamps each record through the path and
// directly at the same moment, and stream mode alone, both at once; then
// stream mode with -compare. The ground truth's verdict, stream mode's
// verdicts with and without -compare, and the expected verdict must all
// agree, and -compare's median added delay must be the ground truth's
// within 20ms.
//
// Two requests to a server start their streams as far apart as the server
// takes to set each up, and their timers drift apart after, and -compare
// counts that too, as any two clients would see it: Node.js sets up one
// MCP request at a time, tens of milliseconds apart on a loaded box. So
// each case has a server of its own, -compare's reads overlap no other,
// and each server logs when it sent each record to which read (sendLog):
// the ground truth's delays are counted from those sends, and -compare's
// median must be the ground truth's plus how much later, at the median,
// the server sent the path's read its records.
func TestStreamModeRealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs proxies and Node.js")
	}
	const (
		tokens, tokenEvery = 40, 80 * time.Millisecond  // 43 records: the role, 40 tokens, the finish, [DONE]
		steps, stepEvery   = 20, 100 * time.Millisecond // 21 records: 20 progress notifications, the result
	)
	streams := []realStream{
		{"OpenAI chat completion", chatRequest(tokens), chatRequest(1), func(t *testing.T) streamServer {
			log := &sendLog{}
			return streamServer{url: openAIServer(t, tokenEvery, log) + "/v1/chat/completions", log: log}
		},
			tokens + 3, tokens + 3, "done", []string{"-H", "Content-Type: application/json"}},
		{"MCP tools/call", mcpCall(steps, stepEvery), mcpCall(1, time.Millisecond), func(t *testing.T) streamServer {
			p := mcpServer(t)
			return streamServer{url: p.url, log: &p.sent}
		}, steps + 1, steps, "ended", []string{"-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream"}},
	}
	nginx, apache := []string{"nginx"}, []string{"Apache httpd"}
	paths := []realPath{
		// Direct, but named so that its requests' Host differs from the
		// comparison's, and the server's log tells the two reads apart.
		{"direct", func(_ *testing.T, host string) string {
			return "http://localhost:" + host[strings.LastIndex(host, ":")+1:]
		}, nil,
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
	type streamPath struct {
		s realStream
		p realPath
	}
	var cases []streamPath
	for _, s := range streams {
		for _, p := range paths {
			cases = append(cases, streamPath{s, p})
		}
	}
	runAtOnce(t, 5, cases, func(c streamPath) string { return c.s.name + " via " + c.p.name }, func(t *testing.T, c streamPath) {
		s, p := c.s, c.p
		srv := s.server(t)
		direct := srv.url
		up, err := url.Parse(direct)
		if err != nil {
			t.Fatal(err)
		}
		through := p.url(t, up.Host) + up.Path
		args := append(slices.Clone(s.headers), "-d", s.body)
		// A first request through the path, so that none of the reads
		// below waits for the proxy to start a worker or a connection.
		warm, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := stamp(warm, through, "application/json", s.warmUp, true); err != nil {
			t.Fatalf("the first request through the path: %v", err)
		}
		var (
			gt           groundTruth
			alone        Report
			codeA, codeC int
			wg           sync.WaitGroup
		)
		wg.Go(func() { gt = truth(t, through, direct, s.body, s.records, s.logged, srv.log) })
		wg.Go(func() { alone, codeA = streamJSON(t, append(slices.Clone(args), through)...) })
		wg.Wait()
		compareStart := time.Now()
		withCT, codeC := streamJSON(t, append(slices.Clone(args), "-compare", direct, through)...)
		sent, err := srv.log.pairOf(compareStart, up.Host, browserEncodings, "", s.logged)
		if err != nil {
			t.Fatal(err)
		}
		skew := sent.skew() // how much later the server sent the path's read its records
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
		skewMs := float64(skew.Microseconds()) / 1000
		if diff := *d.AddedMsP50 - skewMs - gtP50; diff > 20 || diff < -20 {
			t.Errorf("-compare adds %.1fms at the median (%.1fms of it the server's later sends), the ground truth %.1fms", *d.AddedMsP50, skewMs, gtP50)
		}
		t.Logf("%s: ground truth %s, p50 %.1fms; -compare p50 %.1fms p99 %.1fms, matched by %s; the server sent the path's read its events %.1fms later",
			want, gt.verdict, gtP50, *d.AddedMsP50, *d.AddedMsP99, d.MatchedBy, skewMs)
	})
}

// TestStreamModeFormats reads the other streams people send, direct and
// through nginx's default configuration, which buffers them as it buffers
// any response without X-Accel-Buffering: NDJSON (Ollama's) is judged by
// its lines, paired by content, and ends with its done record; a text
// stream (the Vercel AI SDK's text protocol) by its chunks, paired by
// bytes. Each is read with -compare against the server directly, while a
// ground-truth client notes when each read's bytes arrived through the
// path and directly; its verdict, the expected one and stream mode's must
// agree.
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
				var (
					rep    Report
					code   int
					truths [2][]readAt
					errs   [2]error
					wg     sync.WaitGroup
				)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				wg.Go(func() { rep, code = streamJSON(t, "-X", "GET", "-H", "Accept: */*", "-compare", s.url, p.url+"/") })
				wg.Go(func() { truths[0], errs[0] = readTimes(ctx, p.url+"/") })
				wg.Go(func() { truths[1], errs[1] = readTimes(ctx, s.url) })
				wg.Wait()
				if err := errors.Join(errs[0], errs[1]); err != nil {
					t.Fatalf("ground truth: %v", err)
				}
				if gt := byteVerdict(truths[0], truths[1]); gt != p.verdict {
					t.Fatalf("the ground truth says %s, the test expects %s", gt, p.verdict)
				}
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
