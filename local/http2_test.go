package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/wiretest"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files, and returns their paths and a pool that trusts it.
func writeTestCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tickstream test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// countingDialer counts the TCP connections a transport opens.
type countingDialer struct {
	net.Dialer
	dials atomic.Int32
}

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.dials.Add(1)
	return d.Dialer.DialContext(ctx, network, addr)
}

// checkManyStreams opens one connection through client, as a browser does
// when it loads the page, then n /events streams at once, and checks that
// each arrives over HTTP/2 with 5 consecutive ids.
func checkManyStreams(t *testing.T, client *http.Client, url string, n int) {
	t.Helper()
	resp, err := client.Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			resp, err := client.Get(url + "/events?interval=20ms&count=5")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != 2 {
				errs <- fmt.Errorf("answered over %s, want HTTP/2", resp.Proto)
				return
			}
			body, err := wiretest.ReadFrames(resp.Body, 5)
			if err != nil {
				errs <- err
				return
			}
			var ids []string
			for _, ev := range wiretest.Events(body) {
				ids = append(ids, ev.ID)
			}
			if got := strings.Join(ids, ","); got != "1,2,3,4,5" {
				errs <- fmt.Errorf("ids %s, want 1,2,3,4,5", got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHTTP2OverTLS serves with -tls-cert and -tls-key and runs 100
// concurrent streams over one HTTP/2 connection.
func TestHTTP2OverTLS(t *testing.T) {
	certFile, keyFile, pool := writeTestCert(t)
	r := startRunner(t, []string{"-tls-cert", certFile, "-tls-key", keyFile})
	url := strings.Replace(r.url, "http://", "https://", 1)
	dialer := &countingDialer{}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, DialContext: dialer.DialContext}
	defer tr.CloseIdleConnections()
	checkManyStreams(t, &http.Client{Transport: tr}, url, 100)
	if got := dialer.dials.Load(); got != 1 {
		t.Errorf("%d connections for 100 streams, want 1", got)
	}

	// HTTP/1.1 clients are served too.
	h1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	defer h1.CloseIdleConnections()
	resp, err := (&http.Client{Transport: h1}).Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Errorf("HTTP/1.1 over TLS: %s %d", resp.Proto, resp.StatusCode)
	}
}

// TestH2C serves cleartext HTTP/2 with -h2c, as proxies that speak it to
// their upstreams use it, beside HTTP/1.1 on the same port.
func TestH2C(t *testing.T) {
	r := startRunner(t, []string{"-h2c"})
	dialer := &countingDialer{}
	tr := &http.Transport{DialContext: dialer.DialContext, Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	checkManyStreams(t, &http.Client{Transport: tr}, r.url, 100)
	if got := dialer.dials.Load(); got != 1 {
		t.Errorf("%d connections for 100 streams, want 1", got)
	}

	resp, err := http.Get(r.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Errorf("HTTP/1.1 beside h2c: %s %d", resp.Proto, resp.StatusCode)
	}
}

func TestTLSFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-tls-cert", "c.pem"}, "-tls-cert and -tls-key go together"},
		{[]string{"-tls-key", "k.pem"}, "-tls-cert and -tls-key go together"},
		{[]string{"-h2c", "-tls-cert", "c.pem", "-tls-key", "k.pem"}, "-h2c is cleartext HTTP/2 and cannot be combined with -tls-cert"},
		{[]string{"-h3"}, "-h3 needs -tls-cert and -tls-key: HTTP/3 is always encrypted"},
		{[]string{"-tls-cert", "/nonexistent/c.pem", "-tls-key", "/nonexistent/k.pem", "-addr", "127.0.0.1:0"},
			"loading -tls-cert and -tls-key: open /nonexistent/c.pem: no such file or directory"},
	} {
		err := run(context.Background(), tt.args, func(string) string { return "" }, &strings.Builder{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("run %q: %v, want %q", tt.args, err, tt.want)
		}
	}
}
