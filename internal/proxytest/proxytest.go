// Package proxytest runs real reverse proxies from the operating system
// (nginx, HAProxy) on loopback in front of a test's upstream, so that tests
// can prove what a proxy does to streams instead of trusting its
// documentation. Each proxy is stopped when the test ends.
//
// Where a proxy is not installed the test fails with the command that
// installs it, unless SkipEnv is set (CI never sets it).
package proxytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SkipEnv, when set, skips the tests whose proxy is not installed.
const SkipEnv = "TICKSTREAM_SKIP_PROXIES"

// Nginx runs nginx in front of upstream (host:port), with serverConf inside
// its server block, and returns its base URL. The upstream is named
// "tickstream" (an upstream block with keepalive), so that serverConf can
// say proxy_pass http://tickstream.
func Nginx(t *testing.T, upstream, serverConf string) string {
	t.Helper()
	bin := find(t, "nginx", "nginx")
	addr := freeAddr(t)
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
`, dir, upstream, addr, serverConf)
	confFile := filepath.Join(dir, "nginx.conf")
	start(t, confFile, conf, addr, filepath.Join(dir, "error.log"), bin, "-p", dir, "-c", confFile)
	return "http://" + addr
}

// HAProxy runs HAProxy in front of upstream (host:port) with the smallest
// ordinary configuration (mode http and the timeouts its documentation's
// examples give), defaultsConf added to its defaults section, and returns
// its base URL.
func HAProxy(t *testing.T, upstream, defaultsConf string) string {
	t.Helper()
	bin := find(t, "haproxy", "haproxy")
	addr := freeAddr(t)
	dir := t.TempDir()
	conf := fmt.Sprintf(`
defaults
    mode http
    timeout connect 5s
    timeout client 50s
    timeout server 50s
    %[3]s
frontend tickstream
    bind %[2]s
    default_backend tickstream
backend tickstream
    server upstream %[1]s
`, upstream, addr, defaultsConf)
	confFile := filepath.Join(dir, "haproxy.cfg")
	start(t, confFile, conf, addr, "", bin, "-f", confFile)
	return "http://" + addr
}

// find returns the path of the proxy's binary, looking in PATH and in
// /usr/sbin (where Debian installs both, outside an ordinary user's PATH).
func find(t *testing.T, name, pkg string) string {
	t.Helper()
	if bin, err := exec.LookPath(name); err == nil {
		return bin
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		if bin := filepath.Join(dir, name); isFile(bin) {
			return bin
		}
	}
	if os.Getenv(SkipEnv) != "" {
		t.Skipf("%s not found and %s is set", name, SkipEnv)
	}
	t.Fatalf("%s not found: install it with `apt-get install %s` (or set %s=1 to skip)", name, pkg, SkipEnv)
	return ""
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start writes conf to confFile, starts the proxy with args, stops it when
// the test ends, and waits until it accepts connections on addr.
func start(t *testing.T, confFile, conf, addr, errorLog string, args ...string) {
	t.Helper()
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
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
			return
		}
		if time.Now().After(deadline) {
			log := ""
			if errorLog != "" {
				b, _ := os.ReadFile(errorLog)
				log = string(b)
			}
			t.Fatalf("%s did not start: %s\n%s", filepath.Base(args[0]), stderr.String(), log)
		}
	}
}
