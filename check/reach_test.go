package main

import (
	"bytes"
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
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
)

// TestPrivateCA: a server whose certificate a private CA signed is refused
// with the error and the flag that fixes it; with -cacert (the CA's PEM) or
// -insecure the check runs, over HTTP/2 as browsers get it.
func TestPrivateCA(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(handler.New())
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	code, stdout, stderr := checkWith(t, srv.URL)
	wantErr := `check: Get "` + srv.URL + `/health": tls: failed to verify certificate: x509: certificate signed by unknown authority` +
		" (pass the certificate of the CA that signed the server's with -cacert FILE, or skip verification with -insecure)\n"
	if code != 2 || stdout != "" {
		t.Errorf("without -cacert: exit %d, stdout %q; want 2 and nothing", code, stdout)
	}
	if diff := cmp.Diff(wantErr, stderr); diff != "" {
		t.Errorf("without -cacert: stderr (-want +got):\n%s", diff)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	wantRep := want(srv.URL, nil, Finding{Name: "protocol", Verdict: "HTTP/2", OK: true})
	for _, args := range [][]string{{"-cacert", caFile}, {"-insecure"}} {
		rep, code := checkJSON(t, srv.URL, args...)
		if diff := cmp.Diff(wantRep, rep, verdicts); diff != "" || code != 0 {
			t.Errorf("%v: exit %d; report (-want +got):\n%s", args, code, diff)
		}
		if d := finding(rep, "protocol").Detail; d != "HTTP/2 over TLS" {
			t.Errorf("%v: protocol %q, want HTTP/2 over TLS", args, d)
		}
	}
}

// holdingProxy is a forward proxy that holds every response until it has
// it whole, as some corporate proxies and antivirus gateways do.
func holdingProxy(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "a forward proxy takes absolute URLs", http.StatusBadRequest)
			return
		}
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return // the client left
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Via", "1.1 holding-proxy")
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestForwardProxy: -proxy sends every request through the proxy, loopback
// targets too (which HTTP_PROXY never covers), and the report names it. A
// proxy that holds each response whole gets an endless stream nothing.
func TestForwardProxy(t *testing.T) {
	t.Parallel()
	up := upstream(t)
	proxy := holdingProxy(t)
	rep, code := checkJSON(t, up, "-proxy", proxy)
	held := "held until the response ends: /events and any endless stream get nothing through this path"
	wantRep := want(up, nil,
		failing("buffering", "held", fixBuffering),
		failing("accel", "held", fixBuffering),
		failing("post", "buffered", fixBuffering),
		// Held whole, the end arrives with the last event.
	)
	wantRep.Proxy = proxy
	if diff := cmp.Diff(wantRep, rep, verdicts); diff != "" || code != 1 {
		t.Errorf("exit %d; report (-want +got):\n%s", code, diff)
	}
	for _, name := range []string{"buffering", "accel"} {
		if d := finding(rep, name).Detail; !strings.HasSuffix(d, held) {
			t.Errorf("%s: %q, want it to end %q", name, d, held)
		}
	}
	var out bytes.Buffer
	printReport(&out, rep)
	if line := strings.Split(out.String(), "\n")[1]; line != "proxy: "+proxy {
		t.Errorf("the text report's second line is %q, want %q", line, "proxy: "+proxy)
	}
}

// lagRelay relays TCP to upstream, delaying every byte the server sends by
// lag, as a distant or slow hop does without buffering.
func lagRelay(t *testing.T, upstream string, lag time.Duration) string {
	return rawServer(t, func(client net.Conn) {
		server, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		defer server.Close()
		go func() { io.Copy(server, client); server.Close() }()
		type chunk struct {
			due  time.Time
			data []byte
		}
		queue := make(chan chunk, 4096)
		done := make(chan struct{})
		defer close(done)
		go func() {
			defer close(queue)
			buf := make([]byte, 32<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 {
					select {
					case queue <- chunk{time.Now().Add(lag), bytes.Clone(buf[:n])}:
					case <-done: // the client is gone
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		for c := range queue {
			time.Sleep(time.Until(c.due))
			if _, err := client.Write(c.data); err != nil {
				return
			}
		}
	})
}

// TestLatency: a relay that delays every byte without buffering keeps
// every hold small, so only the latency finding shows it: a lag of 400ms
// is reported as lagging, one of 1.2s fails.
func TestLatency(t *testing.T) {
	up := strings.TrimPrefix(upstream(t), "http://")
	for _, tt := range []struct {
		lag     time.Duration
		verdict string
		ok      bool
	}{
		{400 * time.Millisecond, "lagging", true},
		{1200 * time.Millisecond, "late", false},
	} {
		t.Run(tt.lag.String(), func(t *testing.T) {
			t.Parallel()
			url := lagRelay(t, up, tt.lag)
			rep, code := checkJSON(t, url)
			f := finding(rep, "latency")
			if f.Verdict != tt.verdict || f.OK != tt.ok {
				t.Errorf("latency %s (ok %v), want %s (ok %v): %s", f.Verdict, f.OK, tt.verdict, tt.ok, f.Detail)
			}
			if lag := float64(tt.lag.Milliseconds()); f.FirstEventMs == nil || *f.FirstEventMs < lag || *f.FirstEventMs > lag+500 {
				t.Errorf("first_event_ms %v, want the lag, %v, or a little more", f.FirstEventMs, tt.lag)
			}
			if f.RoundTripMs == nil || *f.RoundTripMs < float64(tt.lag.Milliseconds()) {
				t.Errorf("round_trip_ms %v, want at least the lag", f.RoundTripMs)
			}
			// The holds stay small: the lag is the same for every event.
			if b := finding(rep, "buffering"); b.Verdict != "live" {
				t.Errorf("buffering %s through a relay that only lags: %s", b.Verdict, b.Detail)
			}
			if tt.ok == (code != 0) {
				t.Errorf("exit status %d, want %d", code, map[bool]int{true: 0, false: 1}[tt.ok])
			}
		})
	}
}
