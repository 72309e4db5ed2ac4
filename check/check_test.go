package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/proxytest"
)

// checkJSON runs the command with -json and args against url and returns
// its report and exit status.
func checkJSON(t *testing.T, url string, args ...string) (Report, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(append([]string{"-json"}, args...), url), &stdout, &stderr)
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, stdout %q, stderr %q: %v", code, stdout.String(), stderr.String(), err)
	}
	return rep, code
}

// verdicts is the part of a report that does not depend on timing: the
// details and figures are compared with bounds, separately. The latency
// finding's verdict is timing too, and is checked on its own.
var verdicts = cmp.Options{
	cmpopts.IgnoreFields(Finding{}, "Detail", "MaxHoldMs", "BlockBytes", "ReleaseEveryMs", "CutAfterMs",
		"RoundTripMs", "FirstEventMs", "EventLatencyMs", "ClockUncertaintyMs"),
	cmpopts.IgnoreUnexported(Report{}, Finding{}),
	cmp.Transformer("latency", func(f Finding) Finding {
		if f.Name == "latency" && f.OK {
			f.Verdict = "(timing)"
		}
		return f
	}),
}

// want is the report a path gets whose checks all pass but for changed,
// findings with their verdicts and fixes (OK false unless said).
func want(url string, software []string, changed ...Finding) Report {
	rep := Report{Mode: "tickstream", URL: url, Proxy: "direct", Software: software, OK: true}
	for _, f := range []Finding{
		{Name: "buffering", Verdict: "live"},
		{Name: "accel", Verdict: "live"},
		{Name: "compression", Verdict: "none"},
		{Name: "formats", Verdict: "same"},
		{Name: "latency", Verdict: "(timing)"},
		{Name: "post", Verdict: "live"},
		{Name: "resume", Verdict: "passed"},
		{Name: "headers", Verdict: "intact"},
		{Name: "protocol", Verdict: "HTTP/1.1"},
		{Name: "end", Verdict: "prompt"},
	} {
		f.OK = true
		for _, c := range changed {
			if c.Name == f.Name {
				f = c
			}
		}
		rep.OK = rep.OK && f.OK
		rep.Checks = append(rep.Checks, f)
	}
	return rep
}

// failing is a finding that fails with verdict and fix.
func failing(name, verdict, fix string) Finding {
	return Finding{Name: name, Verdict: verdict, Fix: fix}
}

// upstream serves tickstream's routes on a loopback port.
func upstream(t *testing.T) string {
	srv := httptest.NewServer(handler.New())
	t.Cleanup(srv.Close)
	return srv.URL
}

// finding returns rep's finding name.
func finding(rep Report, name string) Finding {
	for _, f := range rep.Checks {
		if f.Name == name {
			return f
		}
	}
	return Finding{}
}

// A pathCase is a path to check and the report it must get.
type pathCase struct {
	name     string
	url      func(t *testing.T) string
	software []string
	changed  []Finding                      // the findings that differ from a live path's
	check    func(t *testing.T, rep Report) // bounds on the figures
	via      func(t *testing.T) string      // a forward proxy to go through, with -proxy
}

// TestCheckPaths runs the check against tickstream directly and through
// Debian's proxies, with their default configurations and with those that
// relay events live, and compares whole reports.
func TestCheckPaths(t *testing.T) {
	up := upstream(t)
	host := strings.TrimPrefix(up, "http://")
	recipe, err := os.ReadFile("../docs/nginx-sse.conf")
	if err != nil {
		t.Fatal(err)
	}
	nginx := []string{"nginx"}
	tests := []pathCase{
		{name: "direct", url: func(*testing.T) string { return up }},
		{name: "nginx, default", url: func(t *testing.T) string {
			return proxytest.Nginx(t, host, `location / { proxy_pass http://tickstream; }`)
		}, software: nginx, changed: []Finding{
			failing("buffering", "buffered", productFix(t, "nginx", problemBuffering)),
			failing("post", "buffered", productFix(t, "nginx", problemBuffering)),
		}, check: func(t *testing.T, rep Report) {
			// nginx's proxy_buffer_size: 4 KiB (one memory page) on this machine.
			if b := rep.Checks[0].BlockBytes; b < 3500 || b > 4700 {
				t.Errorf("block of %d bytes through nginx, want about 4096", b)
			}
		}},
		{name: "nginx, docs/nginx-sse.conf", url: func(t *testing.T) string {
			return proxytest.Nginx(t, host, string(recipe))
		}, software: nginx},
		{name: "nginx, gzip of text/event-stream", url: func(t *testing.T) string {
			return proxytest.Nginx(t, host, `gzip on; gzip_types text/event-stream; location / { proxy_pass http://tickstream; }`)
		}, software: nginx, changed: []Finding{
			{Name: "buffering", Verdict: "buffered", Encoding: "gzip", Fix: productFix(t, "nginx", problemBuffering)},
			{Name: "accel", Verdict: "live", OK: true, Encoding: "gzip"},
			{Name: "post", Verdict: "buffered", Encoding: "gzip", Fix: productFix(t, "nginx", problemBuffering)},
			{Name: "compression", Verdict: "compressed", OK: true, Encoding: "gzip"},
		}},
		{name: "nginx, gzip of text/event-stream with proxy_buffering off (the fix)", url: func(t *testing.T) string {
			return proxytest.Nginx(t, host, `gzip on; gzip_types text/event-stream; location / { proxy_pass http://tickstream; proxy_buffering off; }`)
		}, software: nginx, changed: []Finding{
			{Name: "buffering", Verdict: "live", OK: true, Encoding: "gzip"},
			{Name: "accel", Verdict: "live", OK: true, Encoding: "gzip"},
			{Name: "post", Verdict: "live", OK: true, Encoding: "gzip"},
			{Name: "compression", Verdict: "compressed", OK: true, Encoding: "gzip"},
		}},
		{name: "HAProxy, default", url: func(t *testing.T) string {
			return proxytest.HAProxy(t, host, "")
		}, changed: []Finding{
			failing("buffering", "batched", fixBuffering),
			failing("accel", "batched", fixBuffering),
			failing("post", "batched", fixBuffering),
		}, check: func(t *testing.T, rep Report) {
			for _, f := range rep.Checks[:2] {
				if *f.MaxHoldMs >= 1000 {
					t.Errorf("%s: events held %d ms through HAProxy, want a fraction of a second", f.Name, *f.MaxHoldMs)
				}
			}
			if every := rep.Checks[0].ReleaseEveryMs; every < 150 || every > 400 {
				t.Errorf("HAProxy released every %d ms, want about 250", every)
			}
		}},
		{name: "HAProxy, option http-no-delay", url: func(t *testing.T) string {
			return proxytest.HAProxy(t, host, "option http-no-delay")
		}},
		{name: "HAProxy, compression of text/event-stream", url: func(t *testing.T) string {
			return proxytest.HAProxy(t, host, "option http-no-delay\n    compression algo gzip\n    compression type text/event-stream")
		}, changed: []Finding{
			{Name: "compression", Verdict: "tail held", Encoding: "gzip", Fix: fixCompression},
			{Name: "buffering", Verdict: "live", OK: true, Encoding: "gzip"},
			{Name: "accel", Verdict: "live", OK: true, Encoding: "gzip"},
			{Name: "post", Verdict: "live", OK: true, Encoding: "gzip"},
		}, check: func(t *testing.T, rep Report) {
			const detail = "; each event arrives only with the next one: "
			if d := finding(rep, "compression").Detail; !strings.Contains(d, detail) {
				t.Errorf("compression: %q, want it to say %q", d, detail)
			}
		}},
	}
	tests = append(tests, otherProxies(t, host)...)
	// Four paths at a time: each run's nine streams are mostly waiting,
	// and its verdicts' thresholds (100ms) are far above what a loaded
	// 2-core box adds.
	runAtOnce(t, 4, tests, func(tt pathCase) string { return tt.name }, func(t *testing.T, tt pathCase) {
		url := tt.url(t)
		var args []string
		want := want(url, tt.software, tt.changed...)
		if tt.via != nil {
			want.Proxy = tt.via(t)
			args = []string{"-proxy", want.Proxy}
		}
		rep, code := checkJSON(t, url, args...)
		if diff := cmp.Diff(want, rep, verdicts); diff != "" {
			t.Errorf("report (-want +got):\n%s", diff)
		}
		wantCode := 0
		if !want.OK {
			wantCode = 1
		}
		if code != wantCode {
			t.Errorf("exit status %d, want %d", code, wantCode)
		}
		for _, f := range rep.Checks[:2] {
			if f.Verdict == "live" && *f.MaxHoldMs >= liveHold.Milliseconds() {
				t.Errorf("%s: live with a hold of %d ms", f.Name, *f.MaxHoldMs)
			}
		}
		if tt.check != nil {
			tt.check(t, rep)
		}
	})
}

// TestCheckRefuses: exit status 2 and one clear line for a URL that is not
// a reachable tickstream.
func TestCheckRefuses(t *testing.T) {
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ftp://example.com"}, `check: "ftp://example.com" is not an http:// or https:// URL` + "\n"},
		{[]string{other.URL}, `check: not a tickstream server: GET ` + other.URL + `/health answered 404 Not Found "404 page not found\n", want 200 {"status":"healthy"}` + "\n"},
		{[]string{closed + "/sse/"}, `check: Get "` + closed + `/sse/health": dial tcp ` + strings.TrimPrefix(closed, "http://") + ": connect: connection refused\n"},
		{[]string{"-proxy", "socks5://127.0.0.1:1080", other.URL}, `check: -proxy "socks5://127.0.0.1:1080": want an http:// or https:// URL` + "\n"},
		{[]string{"-cacert", "/nonexistent.pem", other.URL}, "check: -cacert: open /nonexistent.pem: no such file or directory\n"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tt.args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit status %d, want 2", tt.args, code)
		}
		if diff := cmp.Diff(tt.want, stderr.String()); diff != "" {
			t.Errorf("%v: stderr (-want +got):\n%s", tt.args, diff)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: stdout %q, want nothing", tt.args, stdout.String())
		}
	}
}

// TestCheckUnderPrefix: the check finds the routes under a prefix, as a
// proxy or an embedding server mounts them.
func TestCheckUnderPrefix(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("/sse/", http.StripPrefix("/sse", handler.New()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	rep, code := checkJSON(t, srv.URL+"/sse/")
	if diff := cmp.Diff(want(srv.URL+"/sse", nil), rep, verdicts); diff != "" || code != 0 {
		t.Errorf("exit %d; report (-want +got):\n%s", code, diff)
	}
}

// TestIdleKept: a silent stream the path does not cut is read until the
// limit and judged kept.
func TestIdleKept(t *testing.T) {
	up := upstream(t)
	client, _, err := newClient(up, options{limits: defaultLimits}, &tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := &checker{base: up, client: client, idle: 300 * time.Millisecond, limits: defaultLimits}
	r, err := c.silent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Finding{Name: "idle", Verdict: "kept", OK: true, Detail: "a stream silent for 300ms was not cut"}
	if diff := cmp.Diff(want, idleFinding(r, c.idle, reading{}, 0), cmpopts.IgnoreUnexported(Finding{})); diff != "" {
		t.Errorf("finding (-want +got):\n%s", diff)
	}
}

// otherProxies are the paths through Apache httpd, Caddy, Varnish and a
// Squid forward proxy: each as its smallest configuration leaves it, and
// with its compression of event streams on.
func otherProxies(t *testing.T, host string) []pathCase {
	fix := func(product, finding string) string {
		for _, p := range products {
			if p.name == product {
				return product + ": " + p.fixes[finding]
			}
		}
		t.Fatalf("no product %s", product)
		return ""
	}
	apache, caddy, varnish := []string{"Apache httpd"}, []string{"Caddy"}, []string{"Varnish"}
	return []pathCase{
		{name: "Apache, default", url: func(t *testing.T) string { return proxytest.Apache(t, host, "") }, software: apache},
		{name: "Apache, mod_deflate and mod_brotli on text/event-stream", url: func(t *testing.T) string {
			return proxytest.Apache(t, host, "AddOutputFilterByType BROTLI_COMPRESS;DEFLATE text/event-stream")
		}, software: apache, changed: []Finding{
			{Name: "compression", Verdict: "compressed", OK: true, Encoding: "br"},
			{Name: "buffering", Verdict: "live", OK: true, Encoding: "br"},
			{Name: "accel", Verdict: "live", OK: true, Encoding: "br"},
			{Name: "post", Verdict: "live", OK: true, Encoding: "br"},
		}},
		{name: "Caddy, default", url: func(t *testing.T) string { return proxytest.Caddy(t, host, "") }, software: caddy},
		{name: "Caddy, encode gzip zstd", url: func(t *testing.T) string { return proxytest.Caddy(t, host, "encode gzip zstd") },
			software: caddy, changed: []Finding{
				{Name: "compression", Verdict: "holding", Encoding: "gzip", Fix: fix("Caddy", problemCompression)},
			}},
		{name: "Caddy, encode kept off event streams by type", url: func(t *testing.T) string {
			return proxytest.Caddy(t, host, "encode gzip zstd {\n\t\tmatch {\n\t\t\theader Content-Type text/html*\n\t\t}\n\t}")
		}, software: caddy},
		{name: "Caddy, encode kept off event streams by Accept", url: func(t *testing.T) string {
			return proxytest.Caddy(t, host, "@notsse not header Accept *text/event-stream*\n\tencode @notsse gzip zstd")
		}, software: caddy},
		{name: "Varnish, default", url: func(t *testing.T) string { return proxytest.Varnish(t, host, "") }, software: varnish},
		{name: "Varnish, do_gzip on text/event-stream", url: func(t *testing.T) string {
			return proxytest.Varnish(t, host, `sub vcl_backend_response { if (beresp.http.Content-Type ~ "^text/event-stream") { set beresp.do_gzip = true; } }`)
		}, software: varnish, changed: []Finding{
			{Name: "buffering", Verdict: "held", Encoding: "gzip", Fix: fix("Varnish", problemBuffering)},
			{Name: "accel", Verdict: "held", Encoding: "gzip", Fix: fix("Varnish", problemBuffering)},
			{Name: "compression", Verdict: "holding", Encoding: "gzip", Fix: fix("Varnish", problemCompression)},
			{Name: "formats", Verdict: "differ", Fix: fix("Varnish", problemCompression)}, // only event streams are gzipped
			{Name: "post", Verdict: "buffered", Encoding: "gzip", Fix: fix("Varnish", problemBuffering)},
		}},
		{name: "Varnish, do_gzip and the fix's VCL", url: func(t *testing.T) string {
			return proxytest.Varnish(t, host, `sub vcl_backend_response { if (beresp.http.Content-Type ~ "^text/event-stream") { set beresp.do_gzip = true; `+
				`set beresp.do_stream = true; set beresp.do_gzip = false; set beresp.uncacheable = true; set beresp.ttl = 0s; return (deliver); } }`)
		}, software: varnish},
		{name: "Squid, forward proxy (-proxy)", url: func(t *testing.T) string { return "http://" + host },
			software: []string{"Squid"}, via: proxytest.SquidForward},
	}
}
