package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The nginx test needs nginx; where it is missing it fails with the command
// that installs it, unless this variable is set (CI never sets it).
const skipNginxEnv = "TICKSTREAM_SKIP_NGINX"

// startNginx runs nginx on a free loopback port in front of upstream, with
// locationConf inside its server block, and returns its base URL.
func startNginx(t *testing.T, upstream, locationConf string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, statErr := os.Stat(p); statErr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv(skipNginxEnv) != "" {
			t.Skipf("nginx not found and %s is set", skipNginxEnv)
		}
		t.Fatalf("nginx not found: install it with `apt-get install nginx` (or set %s=1 to skip)", skipNginxEnv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	dir := t.TempDir()
	conf := fmt.Sprintf(`
daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream tickstream { server %[2]s; keepalive 8; }
    server {
        listen %[3]s;
        %[4]s
    }
}
`, dir, upstream, addr, locationConf)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confFile)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start: %s\n%s", stderr.String(), log)
		}
	}
	return "http://" + addr
}

// arrivals requests url and returns when each event arrived, counted from
// the request.
func arrivals(t *testing.T, url string) []time.Duration {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var at []time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			at = append(at, time.Since(start))
		}
	}
	return at
}

// TestNginxRelaysEventsUnbuffered runs nginx with docs/nginx-sse.conf in
// front of the runner: 20 events 100 ms apart must arrive spread over about
// 2 s, not in one batch at the end. As a control, nginx with nothing but
// proxy_pass (HTTP/1.0 upstream, buffering on) holds /stream/fast, which,
// like many SSE servers, sends no X-Accel-Buffering header, until it ends,
// but relays /events, which does, as it comes.
func TestNginxRelaysEventsUnbuffered(t *testing.T) {
	r := startRunner(t, nil)
	upstream := strings.TrimPrefix(r.url, "http://")
	snippet, err := os.ReadFile("../docs/nginx-sse.conf")
	if err != nil {
		t.Fatal(err)
	}
	spread := func(at []time.Duration) time.Duration { return at[len(at)-1] - at[0] }

	relaying := startNginx(t, upstream, string(snippet))
	at := arrivals(t, relaying+"/stream/fast?count=20&delay=100ms")
	if len(at) != 21 || at[0] > time.Second || spread(at) < 1500*time.Millisecond {
		t.Errorf("through docs/nginx-sse.conf: %d events arrived at %v; want 21 spread over about 2s", len(at), at)
	}

	buffering := startNginx(t, upstream, `location / { proxy_pass http://tickstream; }`)
	at = arrivals(t, buffering+"/stream/fast?count=20&delay=100ms")
	if len(at) != 21 || spread(at) > 200*time.Millisecond {
		t.Errorf("through buffering nginx, /stream/fast: events arrived at %v; want them in one batch", at)
	}
	at = arrivals(t, buffering+"/events?count=20&interval=100ms")
	if len(at) != 20 || spread(at) < 1500*time.Millisecond {
		t.Errorf("through buffering nginx, /events (X-Accel-Buffering: no): events arrived at %v; want them spread", at)
	}
}
