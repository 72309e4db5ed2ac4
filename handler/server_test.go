//go:build !js && !wasip1

package handler_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/handler"
)

type baseKey struct{}

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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()

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
