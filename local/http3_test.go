package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// h3Client returns a client that speaks only HTTP/3, trusting pool.
func h3Client(t *testing.T, pool *x509.CertPool) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableCompression: true}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// httpsURL is a runner's URL (http://host:port) as an https one.
func httpsURL(r *runner) string { return "https://" + strings.TrimPrefix(r.url, "http://") }

// TestHTTP3Golden serves every golden case over HTTP/3 (-h3), with the
// stepping clock of the TCP golden tests: the bytes are the same.
func TestHTTP3Golden(t *testing.T) {
	certFile, keyFile, pool := writeTestCert(t)
	for _, gc := range wiretest.Cases {
		t.Run(gc.File, func(t *testing.T) {
			r := startRunnerWithClock(t, wiretest.SteppingClock(gc.Period), []string{"-tls-cert", certFile, "-tls-key", keyFile, "-h3"},
				handler.WithInterval(time.Millisecond), handler.WithFastDelay(0))
			resp, err := h3Client(t, pool).Do(gc.Request(httpsURL(r)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != 3 {
				t.Fatalf("answered over %s, want HTTP/3", resp.Proto)
			}
			body, err := gc.ReadBody(resp.Body)
			if err != nil {
				t.Fatalf("reading body: %v", err)
			}
			wiretest.Golden(t, filepath.Join(goldenDir, gc.File), wiretest.Dump(resp.StatusCode, resp.Header, body))
		})
	}
}

// TestHTTP3OfferedAndShutDown: with -h3, responses over TCP offer HTTP/3 on
// the same port (Alt-Svc), as browsers need to find it; a stream open over
// HTTP/3 when the runner shuts down ends on an event boundary, cleanly.
func TestHTTP3OfferedAndShutDown(t *testing.T) {
	certFile, keyFile, pool := writeTestCert(t)
	r := startRunner(t, []string{"-tls-cert", certFile, "-tls-key", keyFile, "-h3"})
	tcp := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := tcp.Get(httpsURL(r) + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	port := r.url[strings.LastIndex(r.url, ":"):]
	if got, want := resp.Header.Get("Alt-Svc"), `h3="`+port+`"; ma=2592000`; resp.ProtoMajor != 2 || got != want {
		t.Errorf("over %s, Alt-Svc %q; want HTTP/2 and %q", resp.Proto, got, want)
	}

	resp, err = h3Client(t, pool).Get(httpsURL(r) + "/events?interval=50ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := wiretest.ReadFrames(resp.Body, 2); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the stream ended with %v after %q, want a clean end", err, rest)
	}
	if len(rest) > 0 && !strings.HasSuffix(string(rest), "\n\n") {
		t.Errorf("the stream ended mid-event: %q", rest)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("runner: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the runner did not stop within 10s")
	}
}
