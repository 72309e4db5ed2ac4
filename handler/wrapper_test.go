//go:build !js && !wasip1

package handler_test

import (
	"bufio"

	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// wrapper sets, before the handler runs, what much copied SSE code and
// middleware set on every response: hop-by-hop and framing headers that a
// stream's response must not carry, and one of its own that it may.
func wrapper(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Connection", "keep-alive")
		hdr.Set("Keep-Alive", "timeout=5")
		hdr.Set("Content-Length", "5")
		hdr.Set("Transfer-Encoding", "chunked")
		hdr.Set("Upgrade", "h2c")
		hdr.Set("Trailer", "X-Checksum")
		hdr.Set("Proxy-Connection", "keep-alive")
		hdr.Set("X-Wrapper", "yes")
		h.ServeHTTP(w, r)
	})
}

// rawStream sends GET target on a new connection to addr and returns the
// response head's header lines as they were written (Date left out) and
// the events of its chunked body.
func rawStream(t *testing.T, addr, target string) ([]string, []string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: tickstream\r\n\r\n", target)
	br := bufio.NewReader(conn)
	var head []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the head: %v (so far %q)", err, head)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if !strings.HasPrefix(line, "Date: ") && !strings.HasPrefix(line, "HTTP/") {
			head = append(head, line)
		}
	}
	body, err := io.ReadAll(httputil.NewChunkedReader(br))
	if err != nil {
		t.Fatalf("reading the chunked body: %v (so far %q)", err, body)
	}
	var ids []string
	for _, ev := range wiretest.Events(body) {
		ids = append(ids, ev.ID)
	}
	return head, ids
}

// TestWrapperHeadersDropped: behind a wrapper that sets Connection,
// Keep-Alive, Content-Length, Transfer-Encoding, Upgrade, Trailer and
// Proxy-Connection, a stream's response is a stream all the same: over
// HTTP/1.1 detached (its head written as net/http writes one) and through
// net/http, one Transfer-Encoding, one Connection or none, no length, the
// wrapper's own header kept and every event there; over HTTP/2, none of
// them, and every event.
func TestWrapperHeadersDropped(t *testing.T) {
	const target = "/events?count=3&interval=10ms"
	common := []string{"Cache-Control: no-cache", "Content-Type: text/event-stream"}
	tail := []string{"X-Accel-Buffering: no", "X-Content-Type-Options: nosniff", "X-Wrapper: yes"}
	for _, tt := range []struct {
		name   string
		opts   []handler.Option
		framed []string // what net/http, or the detached writer, adds
	}{
		{"detached", []handler.Option{handler.WithDetachedStreams()}, []string{"Transfer-Encoding: chunked", "Connection: close"}},
		{"net/http", nil, []string{"Transfer-Encoding: chunked"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := handler.New(tt.opts...)
			srv := httptest.NewUnstartedServer(wrapper(h))
			h.ConfigureServer(srv.Config)
			srv.Start()
			defer srv.Close()
			head, ids := rawStream(t, srv.Listener.Addr().String(), target)
			want := append(append(append([]string{}, common...), tail...), tt.framed...)
			if diff := cmp.Diff(want, head); diff != "" {
				t.Errorf("head (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"1", "2", "3"}, ids); diff != "" {
				t.Errorf("event ids (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("HTTP/2", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(wrapper(handler.New(handler.WithDetachedStreams())))
		srv.EnableHTTP2 = true
		srv.StartTLS()
		defer srv.Close()
		client := srv.Client()
		resp, err := client.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		var ids []string
		for _, ev := range wiretest.Events(body) {
			ids = append(ids, ev.ID)
		}
		var hopByHop []string
		for _, name := range []string{"Connection", "Keep-Alive", "Content-Length", "Transfer-Encoding", "Upgrade", "Trailer", "Proxy-Connection"} {
			if v := resp.Header.Values(name); len(v) > 0 {
				hopByHop = append(hopByHop, name+": "+strings.Join(v, ", "))
			}
		}
		got := struct {
			Proto         string
			ContentLength int64
			HopByHop      []string
			Wrapper       string
			IDs           []string
		}{resp.Proto, resp.ContentLength, hopByHop, resp.Header.Get("X-Wrapper"), ids}
		want := got
		want.Proto, want.ContentLength, want.HopByHop, want.Wrapper, want.IDs = "HTTP/2.0", -1, nil, "yes", []string{"1", "2", "3"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("response (-want +got):\n%s", diff)
		}
	})
}
