package main

import (
	"bytes"
	"context"
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

// checkJSON runs the command with -json against url and returns its report
// and exit status.
func checkJSON(t *testing.T, url string) (Report, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-json", url}, &stdout, &stderr)
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, stdout %q, stderr %q: %v", code, stdout.String(), stderr.String(), err)
	}
	return rep, code
}

// verdicts is the part of a report that does not depend on timing: the
// details and figures are compared with bounds, separately.
var verdicts = cmpopts.IgnoreFields(Finding{}, "Detail", "MaxHoldMs", "BlockBytes", "ReleaseEveryMs", "CutAfterMs")

// findings returns the findings a path gets whose buffering and accel
// checks end with these verdicts and fixes, and whose other checks pass.
func findings(buffering, accel string) []Finding {
	f := func(name, verdict string) Finding {
		fd := Finding{Name: name, Verdict: verdict, OK: true}
		if (name == "buffering" || name == "accel") && verdict != "live" {
			fd.OK, fd.Fix = false, fixBuffering
		}
		return fd
	}
	return []Finding{
		f("buffering", buffering),
		f("accel", accel),
		f("compression", "none"),
		f("resume", "passed"),
		f("headers", "intact"),
		f("protocol", "HTTP/1.1"),
		f("end", "prompt"),
	}
}

// upstream serves tickstream's routes on a loopback port.
func upstream(t *testing.T) string {
	srv := httptest.NewServer(handler.New())
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCheckPaths runs the check against tickstream directly and through
// Debian's nginx and HAProxy, with their default configurations and with
// the configurations that relay events live, and compares whole reports.
func TestCheckPaths(t *testing.T) {
	up := upstream(t)
	host := strings.TrimPrefix(up, "http://")
	recipe, err := os.ReadFile("../docs/nginx-sse.conf")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		url   func(t *testing.T) string
		want  []Finding
		check func(t *testing.T, rep Report) // bounds on the figures
	}{
		{"direct", func(*testing.T) string { return up }, findings("live", "live"), nil},
		{"nginx, default", func(t *testing.T) string {
			return proxytest.Nginx(t, host, `location / { proxy_pass http://tickstream; }`)
		}, findings("buffered", "live"), func(t *testing.T, rep Report) {
			// nginx's proxy_buffer_size: 4 KiB (one memory page) on this machine.
			if b := rep.Checks[0].BlockBytes; b < 3500 || b > 4700 {
				t.Errorf("block of %d bytes through nginx, want about 4096", b)
			}
		}},
		{"nginx, docs/nginx-sse.conf", func(t *testing.T) string {
			return proxytest.Nginx(t, host, string(recipe))
		}, findings("live", "live"), nil},
		{"HAProxy, default", func(t *testing.T) string {
			return proxytest.HAProxy(t, host, "")
		}, findings("batched", "batched"), func(t *testing.T, rep Report) {
			for _, f := range rep.Checks[:2] {
				if *f.MaxHoldMs >= 1000 {
					t.Errorf("%s: events held %d ms through HAProxy, want a fraction of a second", f.Name, *f.MaxHoldMs)
				}
			}
			if every := rep.Checks[0].ReleaseEveryMs; every < 150 || every > 400 {
				t.Errorf("HAProxy released every %d ms, want about 250", every)
			}
		}},
		{"HAProxy, option http-no-delay", func(t *testing.T) string {
			return proxytest.HAProxy(t, host, "option http-no-delay")
		}, findings("live", "live"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url(t)
			rep, code := checkJSON(t, url)
			want := Report{URL: url, OK: tt.want[0].OK && tt.want[1].OK, Checks: tt.want}
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
	mux := http.NewServeMux()
	mux.Handle("/sse/", http.StripPrefix("/sse", handler.New()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	rep, code := checkJSON(t, srv.URL+"/sse/")
	if diff := cmp.Diff(Report{URL: srv.URL + "/sse", OK: true, Checks: findings("live", "live")}, rep, verdicts); diff != "" || code != 0 {
		t.Errorf("exit %d; report (-want +got):\n%s", code, diff)
	}
}

// TestIdleKept: a silent stream the path does not cut is read until the
// limit (the request's context ends it) and judged kept.
func TestIdleKept(t *testing.T) {
	up := upstream(t)
	c := &checker{base: up, client: newClient(), idle: 300 * time.Millisecond}
	r, err := c.silent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Finding{Name: "idle", Verdict: "kept", OK: true, Detail: "a stream silent for 300ms was not cut"}
	if diff := cmp.Diff(want, idleFinding(r, c.idle)); diff != "" {
		t.Errorf("finding (-want +got):\n%s", diff)
	}
}
