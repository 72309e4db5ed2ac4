package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/wiretest"
)

// synthetic returns the result of a probe whose n events were sent period
// apart from the request's start and arrived at arrive(i), on a client
// whose clock is the server's.
func synthetic(name string, n int, period time.Duration, arrive func(i int) time.Duration) probeResult {
	r := probeResult{probe: probe{name: name, method: "GET", target: "/stream/fast"}}
	r.start = t0
	for i := range n {
		r.arrivals = append(r.arrivals, arrival{sent: t0.Add(time.Duration(i) * period), at: arrive(i), bytes: (i + 1) * 60})
	}
	return r
}

// The shapes a timeline shows, each from a path the check tells apart.
var shapes = []probeResult{
	synthetic("live", 40, 50*ms, func(i int) time.Duration { return time.Duration(i)*50*ms + 2*ms }),
	synthetic("size buffer", 40, 50*ms, func(i int) time.Duration { return (time.Duration(i/12)*12 + 11) * 50 * ms }),
	synthetic("clock buffer", 40, 50*ms, func(i int) time.Duration { return (time.Duration(i)*50*ms/(250*ms) + 1) * 250 * ms }),
	synthetic("lag", 40, 50*ms, func(i int) time.Duration { return time.Duration(i)*50*ms + 400*ms }),
	synthetic("held tail", 12, 250*ms, func(i int) time.Duration { return time.Duration(i+1) * 250 * ms }),
}

// TestTimelineSVG pins the drawing of each shape in a golden file: a live
// stream on the diagonal, a size buffer's steps, a clock buffer's equal
// treads, a lag's offset, a held tail's shift by one gap.
func TestTimelineSVG(t *testing.T) {
	for _, r := range shapes {
		svg := drawTimeline(r.name, timeline(r, clockEstimate{known: true}))
		wiretest.Golden(t, filepath.Join("testdata", "timeline-"+strings.ReplaceAll(r.name, " ", "-")+".svg"), []byte(svg))
	}
}

// ofType is r answered 200 with Content-Type ct.
func ofType(r probeResult, ct string) probeResult {
	r.status, r.header = http.StatusOK, http.Header{"Content-Type": {ct}}
	return r
}

// overH3 is r as read over HTTP/3.
func overH3(r probeResult) probeResult {
	r.proto, r.tls = "HTTP/3", true
	return r
}

// syntheticReport is a report with every finding and figure, as -json and
// -report write it.
func syntheticReport() Report {
	clk := clockEstimate{known: true, uncertainty: 1200 * time.Microsecond}
	plain, browser := shapes[0], shapes[0]
	tail := shapes[4]
	tail.encoding = "gzip"
	tail.start = t0
	findings := []Finding{
		bufferingFinding(plain, browser, shapes[1], false, false),
		accelFinding(plain, browser, plain, false, false),
		compressionFinding(tail, plain, probeResult{}, 0, false),
		formatsFinding(ofType(browser, "text/event-stream"), ofType(shapes[1], "application/x-ndjson"), ofType(browser, "text/plain; charset=utf-8")),
		latencyFinding(300*time.Microsecond, clk, shapes, shapes[3]),
		postFinding(probeResult{probe: postProbe, response: response{status: 405}}, browser, plain, false),
		resumeFinding(probeResult{response: response{reading: reading{ids: []string{"42"}}}}),
		tickstreamHeaders(map[string][]string{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}}, "HTTP/2"),
		protocolFinding("HTTP/2", true, h3Leg{entry: `h3=":443"`, result: overH3(browser)}, browser),
		capFinding(reading{endAt: 2 * time.Minute, err: context.DeadlineExceeded}, 2*time.Minute),
		idleFinding(reading{endAt: 60 * time.Second, ended: true}, 2*time.Minute, reading{endAt: 2 * time.Minute, err: context.DeadlineExceeded}, 2*time.Minute),
		endFinding(reading{doneAt: 5 * time.Second, endAt: 5*time.Second + ms, ended: true}),
	}
	rep := Report{Mode: "tickstream", URL: "https://sse.example/tickstream", Proxy: "http://proxy.example:3128", Software: []string{"nginx"},
		Checks: findings, probes: shapes, clock: clk}
	for i := range rep.Checks {
		if f := &rep.Checks[i]; f.Fix != "" {
			f.Fix = fixFor(f.Name, rep.Software, f.Fix)
		}
	}
	return rep
}

// TestJSONSchema pins the -json report's fields and the findings' words in
// a golden file (the README documents it).
func TestJSONSchema(t *testing.T) {
	b, err := json.MarshalIndent(syntheticReport(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	wiretest.Golden(t, filepath.Join("testdata", "report.json"), append(b, '\n'))
}

// TestReportPage pins the -report page in a golden file and checks that
// it stands alone under a strict Content-Security-Policy: no script, no
// external asset, no style attribute, and its one stylesheet allowed by
// its hash.
func TestReportPage(t *testing.T) {
	page := renderReport(syntheticReport())
	wiretest.Golden(t, filepath.Join("testdata", "report.html"), page)
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script`), regexp.MustCompile(`(?i)\sstyle=`), regexp.MustCompile(`(?i)\s(src|href)=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`), regexp.MustCompile(`(?i)url\(`),
	} {
		if loc := bad.FindIndex(page); loc != nil {
			t.Errorf("the page has %q, which a strict CSP blocks or which loads something", page[loc[0]:min(loc[1]+20, len(page))])
		}
	}
	sum := sha256.Sum256([]byte(reportStyle))
	csp := `content="default-src 'none'; style-src 'sha256-` + base64.StdEncoding.EncodeToString(sum[:]) + `'"`
	if !strings.Contains(string(page), csp) || !strings.Contains(string(page), "<style>"+reportStyle+"</style>") {
		t.Errorf("the page's CSP does not allow exactly its stylesheet (want %s)", csp)
	}
}

// syntheticStreamReport is a stream-mode report with -compare, as -json,
// the text output and -report write it: an OpenAI-style stream of 40
// tokens 50ms apart (and [DONE]) that the path releases in blocks of 8
// events, read beside the server's own live stream.
func syntheticStreamReport() Report {
	head := 2 * ms
	path := records(41, 180, func(i int) time.Duration { return time.Duration(min(i/8*8+7, 40))*50*ms + head })
	direct := records(41, 180, every(50*ms, head))
	for _, evs := range [][]event{path, direct} {
		evs[40].data = "[DONE]"
		for i := range evs {
			evs[i].id = ""
		}
	}
	read := func(evs []event) response {
		return response{reading: reading{events: evs, start: t0, endAt: evs[40].at + ms, ended: true, doneAt: -1},
			status: 200, proto: "HTTP/2", tls: true, format: formatSSE, headAt: head, firstByteAt: head, bodyBytes: 41 * 180,
			header: http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}, "Server": {"nginx"}}}
	}
	reads := streamReads{browser: read(path), plain: read(path), compare: read(direct)}
	reads.compare.header = http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	req := request{method: "POST", header: http.Header{"Accept": {"*/*"}, "Content-Type": {"application/json"}}}
	rep := Report{Mode: "stream", URL: "https://llm.example/v1/chat/completions", Method: "POST", Compare: "http://origin.example:8000/v1/chat/completions",
		Proxy: "direct", Software: identifyHeaders(reads.browser.header), OK: true,
		Checks: []Finding{
			deliveryFinding(reads, true),
			streamCompression(reads.browser, reads.plain),
			streamHeaders(reads.browser, req),
			protocolFinding("HTTP/2", true, h3Leg{}, probeResult{}),
			streamEnd(reads.browser, 30*time.Second),
		},
		streams: []streamSeries{{name: "https://llm.example/v1/chat/completions", response: reads.browser}, {name: "http://origin.example:8000/v1/chat/completions", response: reads.compare}},
	}
	rep.settle()
	return rep
}

// TestStreamReportOutputs pins stream mode's three outputs in golden
// files: -json, the text, and the -report page with both reads on one
// timeline.
func TestStreamReportOutputs(t *testing.T) {
	rep := syntheticStreamReport()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	wiretest.Golden(t, filepath.Join("testdata", "stream-report.json"), append(b, '\n'))
	var text bytes.Buffer
	printReport(&text, rep)
	wiretest.Golden(t, filepath.Join("testdata", "stream-report.txt"), text.Bytes())
	wiretest.Golden(t, filepath.Join("testdata", "stream-report.html"), renderReport(rep))
}
