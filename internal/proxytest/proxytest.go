// Package proxytest runs real proxies from the operating system (nginx,
// HAProxy, Apache httpd, Caddy, Varnish, and Squid as a forward proxy) on
// loopback in front of a test's upstream, so that tests can prove what a
// proxy does to streams instead of trusting its documentation. Each proxy
// is stopped when the test ends.
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

// Apache runs Apache httpd (mpm_event, mod_proxy_http) in front of
// upstream (host:port) with the smallest reverse-proxy configuration,
// serverConf added to it, and returns its base URL. The modules for
// compression (filter, deflate, brotli) and headers are loaded, so that
// serverConf can turn them on.
func Apache(t *testing.T, upstream, serverConf string) string {
	t.Helper()
	bin := find(t, "apache2", "apache2")
	addr := freeAddr(t)
	dir := t.TempDir()
	mod := func(name, file string) string {
		return "LoadModule " + name + "_module /usr/lib/apache2/modules/mod_" + file + ".so\n"
	}
	conf := "ServerRoot " + dir + "\nListen " + addr + "\nPidFile " + dir + "/httpd.pid\n" +
		"ErrorLog " + dir + "/error.log\nLogLevel warn\nMutex file:" + dir + "\nDefaultRuntimeDir " + dir + "\n" +
		"ServerName 127.0.0.1\nUser nobody\nGroup nogroup\n" +
		mod("mpm_event", "mpm_event") + mod("authz_core", "authz_core") + mod("proxy", "proxy") + mod("proxy_http", "proxy_http") +
		mod("filter", "filter") + mod("deflate", "deflate") + mod("brotli", "brotli") + mod("headers", "headers") + mod("env", "env") +
		"ProxyPass / http://" + upstream + "/\n" + serverConf + "\n"
	confFile := filepath.Join(dir, "httpd.conf")
	start(t, confFile, conf, addr, filepath.Join(dir, "error.log"), bin, "-DFOREGROUND", "-f", confFile)
	return "http://" + addr
}

// Caddy runs Caddy in front of upstream (host:port) with the smallest
// reverse-proxy Caddyfile, siteConf added to its site block before
// reverse_proxy, and returns its base URL.
func Caddy(t *testing.T, upstream, siteConf string) string {
	t.Helper()
	bin := find(t, "caddy", "caddy")
	addr := freeAddr(t)
	dir := t.TempDir()
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n}\nhttp://%[1]s {\n\tbind 127.0.0.1\n\t%[3]s\n\treverse_proxy %[2]s\n}\n",
		addr, upstream, siteConf)
	confFile := filepath.Join(dir, "Caddyfile")
	// Caddy's own files go to the test's directory, set for its process
	// alone, so that tests running Caddy can run in parallel.
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	startWith(t, env, confFile, conf, addr, "", bin, "run", "--config", confFile, "--adapter", "caddyfile")
	return "http://" + addr
}

// CaddyTLS runs Caddy as Caddy serves a site by default, over TLS with the
// certificate and key in certFile and keyFile (PEM, for 127.0.0.1): HTTP/1.1
// and HTTP/2 on TCP and HTTP/3 on the same UDP port, offered by Alt-Svc. It
// proxies to upstream (an http:// host:port) with siteConf added, and
// returns its base URL (https://).
func CaddyTLS(t *testing.T, upstream, certFile, keyFile, siteConf string) string {
	t.Helper()
	bin := find(t, "caddy", "caddy")
	addr := freeAddr(t)
	dir := t.TempDir()
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https disable_redirects\n}\nhttps://%[1]s {\n\tbind 127.0.0.1\n\ttls %[3]s %[4]s\n\t%[5]s\n\treverse_proxy %[2]s\n}\n",
		addr, upstream, certFile, keyFile, siteConf)
	confFile := filepath.Join(dir, "Caddyfile")
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	startWith(t, env, confFile, conf, addr, "", bin, "run", "--config", confFile, "--adapter", "caddyfile")
	return "https://" + addr
}

// Varnish runs Varnish in front of upstream (host:port) with the smallest
// VCL (its backend), vcl added to it, and varnishd's parameters set by
// params ("send_timeout=8"), and returns its base URL.
func Varnish(t *testing.T, upstream, vcl string, params ...string) string {
	t.Helper()
	bin := find(t, "varnishd", "varnish")
	addr := freeAddr(t)
	dir := sharedDir(t) // varnishd drops to its own user, which reads and writes there
	host, port, _ := net.SplitHostPort(upstream)
	conf := fmt.Sprintf("vcl 4.1;\nbackend default { .host = %q; .port = %q; }\n%s\n", host, port, vcl)
	confFile := filepath.Join(dir, "default.vcl")
	args := []string{bin, "-F", "-f", confFile, "-a", addr, "-n", filepath.Join(dir, "work"), "-s", "malloc,32m"}
	for _, p := range params {
		args = append(args, "-p", p)
	}
	start(t, confFile, conf, addr, "", args...)
	return "http://" + addr
}

// SquidForward runs Squid as a forward proxy for loopback clients and
// returns its URL, for a client to use as its HTTP proxy.
func SquidForward(t *testing.T) string {
	t.Helper()
	bin := find(t, "squid", "squid")
	addr := freeAddr(t)
	dir := sharedDir(t) // squid drops to its own user, which writes its logs there
	conf := fmt.Sprintf(`http_port %[1]s
http_access allow localhost
http_access deny all
pid_filename %[2]s/squid.pid
cache_log %[2]s/cache.log
access_log %[2]s/access.log
coredump_dir %[2]s
cache_mem 16 MB
shutdown_lifetime 0 seconds
`, addr, dir)
	confFile := filepath.Join(dir, "squid.conf")
	start(t, confFile, conf, addr, filepath.Join(dir, "cache.log"), bin, "-N", "-f", confFile)
	return "http://" + addr
}

// sharedDir returns a new folder that every user may use, removed when the
// test ends, for a proxy that drops its privileges. (t.TempDir's parent
// lets no other user in.)
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "proxytest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
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
	startWith(t, nil, confFile, conf, addr, errorLog, args...)
}

// startWith is start with env added to the proxy's environment.
func startWith(t *testing.T, env []string, confFile, conf, addr, errorLog string, args ...string) {
	t.Helper()
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// A proxy's workers (Apache's, Squid's) are its children: the whole
	// process group is stopped, and the proxy dies with the test binary.
	cmd.SysProcAttr = processGroup()
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killGroup(cmd.Process)
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
