package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/quic-go/quic-go/http3"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/proxytest"
)

// h3Site serves tcp over TLS (HTTP/1.1 and HTTP/2) and h3 over HTTP/3 on
// the same port, every TCP response offering HTTP/3 at altSvc (h3=":port"
// of the site's own port if ""), and returns its URL and the PEM file of
// its certificate, for -cacert.
func h3Site(t *testing.T, tcp, h3 http.Handler, altSvc string) (string, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	if altSvc == "" {
		altSvc = `h3=":` + port + `"`
	}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Alt-Svc", altSvc+"; ma=86400")
		tcp.ServeHTTP(w, r)
	})
	udp, err := net.ListenPacket("udp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	quic := &http3.Server{Handler: h3, TLSConfig: http3.ConfigureTLSConfig(srv.TLS.Clone())}
	go quic.Serve(udp) //nolint:errcheck // ends with the test
	t.Cleanup(func() { quic.Close(); udp.Close() })
	return srv.URL, writeCA(t, srv.Certificate())
}

// writeCA writes cert as a PEM file and returns its path.
func writeCA(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// testCertFiles writes the certificate (for 127.0.0.1, self-signed) and
// key that httptest's TLS servers use as PEM files, for a server of the
// tests' own to serve, and returns their paths: the certificate is its own
// CA, for -cacert.
func testCertFiles(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	srv := httptest.NewTLSServer(nil)
	pair := srv.TLS.Certificates[0]
	srv.Close()
	key, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: pair.Certificate[0]}, keyFile: {Type: "PRIVATE KEY", Bytes: key}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// checkJSONWith runs the battery with -json, args and testLimits against
// url and returns its report and exit status.
func checkJSONWith(t *testing.T, url string, args ...string) (Report, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWithLimits(context.Background(), append(append([]string{"-json"}, args...), url), &stdout, &stderr, testLimits)
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, stdout %q, stderr %q: %v", code, stdout.String(), stderr.String(), err)
	}
	return rep, code
}

// holdingHandler serves h but holds each response's body until it is
// complete, as a path whose HTTP/3 buffers would.
func holdingHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for name, vs := range rec.Result().Header {
			w.Header()[name] = vs
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes()) //nolint:errcheck // the client's to see
	})
}

// TestHTTP3Leg: where responses offer HTTP/3 in Alt-Svc, the check reads
// the burst over it too, and the protocol finding says how it came beside
// HTTP/2: live; held by an HTTP/3 that buffers (a failing finding with its
// fix); unreachable (passing: browsers fall back to TCP). Through Debian's
// Caddy, which offers HTTP/3 on every TLS site, the HTTP/3 leg is Caddy's.
func TestHTTP3Leg(t *testing.T) {
	t.Parallel()
	h := handler.New()
	liveURL, liveCA := h3Site(t, h, h, "")
	heldURL, heldCA := h3Site(t, h, holdingHandler(h), "")
	goneURL, goneCA := h3Site(t, h, h, `h3=":1"`)
	type h3Case struct {
		name, url, ca string
		protocol      Finding
		code          int
	}
	cases := []h3Case{
		{"HTTP/3 live", liveURL, liveCA, Finding{Name: "protocol", Verdict: "HTTP/2", OK: true, HTTP3: "live"}, 0},
		{"HTTP/3 that holds", heldURL, heldCA, Finding{Name: "protocol", Verdict: "HTTP/2", HTTP3: "buffered", Fix: fixH3}, 1},
		{"HTTP/3 offered where nothing answers", goneURL, goneCA, Finding{Name: "protocol", Verdict: "HTTP/2", OK: true, HTTP3: "unreachable"}, 0},
	}
	if !testing.Short() {
		cert, key := testCertFiles(t)
		caddy := proxytest.CaddyTLS(t, strings.TrimPrefix(upstream(t), "http://"), cert, key, "")
		cases = append(cases, h3Case{"Caddy, default TLS site", caddy, cert, Finding{Name: "protocol", Verdict: "HTTP/2", OK: true, HTTP3: "live"}, 0})
	}
	runAtOnce(t, len(cases), cases, func(c h3Case) string { return c.name }, func(t *testing.T, c h3Case) {
		rep, code := checkJSONWith(t, c.url, "-cacert", c.ca)
		wantRep := want(c.url, rep.Software, c.protocol)
		if diff := cmp.Diff(wantRep, rep, verdicts); diff != "" {
			t.Errorf("report (-want +got):\n%s", diff)
		}
		if code != c.code {
			t.Errorf("exit status %d, want %d", code, c.code)
		}
	})
}

// TestStreamModeHTTP3: stream mode reads the stream over HTTP/3 too where
// Alt-Svc offers it, and says how it came beside HTTP/2.
func TestStreamModeHTTP3(t *testing.T) {
	t.Parallel()
	h := handler.New()
	liveURL, liveCA := h3Site(t, h, h, "")
	heldURL, heldCA := h3Site(t, h, holdingHandler(h), "")
	type h3Case struct {
		name, url, ca string
		protocol      Finding
	}
	cases := []h3Case{
		{"HTTP/3 live", liveURL, liveCA, Finding{Name: "protocol", Verdict: "HTTP/2", OK: true, HTTP3: "live"}},
		{"HTTP/3 that holds", heldURL, heldCA, Finding{Name: "protocol", Verdict: "HTTP/2", HTTP3: "buffered", Fix: fixH3}},
	}
	runAtOnce(t, len(cases), cases, func(c h3Case) string { return c.name }, func(t *testing.T, c h3Case) {
		rep, _ := streamJSON(t, "-cacert", c.ca, c.url+"/stream/fast?count=30")
		if diff := cmp.Diff(c.protocol, finding(rep, "protocol"), verdicts); diff != "" {
			t.Errorf("protocol (-want +got):\n%s", diff)
		}
	})
}
