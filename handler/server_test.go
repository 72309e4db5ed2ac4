//go:build !js && !wasip1

package handler_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/handler"
)

type baseKey struct{}

// serve serves srv on a loopback port and returns its base URL and what
// its Serve returns, once it does.
func serve(t *testing.T, srv *http.Server) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), served
}

// TestConfigureServer: with ConfigureServer, Shutdown ends a stream that
// would otherwise run for an hour (net/http serves it: no detaching), its
// client gets a properly ended response, and the server's own BaseContext
// values still reach the request.
func TestConfigureServer(t *testing.T) {
	var sawBase any
	h := handler.New()
	mux := http.NewServeMux()
	mux.HandleFunc("/base", func(w http.ResponseWriter, r *http.Request) { sawBase = r.Context().Value(baseKey{}) })
	mux.Handle("/", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithValue(context.Background(), baseKey{}, "kept") }}
	h.ConfigureServer(srv)
	base, served := serve(t, srv)

	if _, err := http.Get(base + "/base"); err != nil {
		t.Fatal(err)
	}
	if sawBase != "kept" {
		t.Errorf("the request's context carries %v from BaseContext, want kept", sawBase)
	}

	resp, err := http.Get(base + "/events?interval=1h&heartbeat=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	first, err := body.ReadString('\n') // the stream has begun
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v; the stream kept it waiting", err)
	}
	rest, err := io.ReadAll(body)
	if err != nil || !strings.HasSuffix(first+string(rest), "\n\n") {
		t.Errorf("the response ended with %v after %q, want a clean end after a whole event", err, rest)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
}

// TestShutdownShutsTheServer: after ConfigureServer, the handler's Shutdown
// is the embedder's one call: it shuts the server down (its Serve returns,
// its stream ends cleanly), and an error of the server's comes back from it.
func TestShutdownShutsTheServer(t *testing.T) {
	h := handler.New(handler.WithDetachedStreams())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	h.ConfigureServer(srv)
	base, served := serve(t, srv)
	resp, err := http.Get(base + "/events?interval=1h&heartbeat=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	if _, err := body.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve: %v, want http.ErrServerClosed", err)
	}
	if rest, err := io.ReadAll(body); err != nil || !strings.HasSuffix(string(rest), "\n\n") && len(rest) > 0 {
		t.Errorf("the stream ended with %v after %q, want a clean end", err, rest)
	}
	// The server's own error is the handler's Shutdown's too: a context
	// already done, with a connection still open.
	h2 := handler.New()
	accepted := make(chan struct{})
	srv2 := &http.Server{Handler: h2, ReadHeaderTimeout: 5 * time.Second, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			close(accepted)
		}
	}}
	h2.ConfigureServer(srv2)
	base2, _ := serve(t, srv2)
	defer srv2.Close()
	idle, err := net.Dial("tcp", strings.TrimPrefix(base2, "http://")) // a connection that never sends a request
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	<-accepted
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if err := h2.Shutdown(done); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with a done context and a new connection open: %v, want context.Canceled", err)
	}
}
