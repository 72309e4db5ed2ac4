package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
)

// testLimits are the check's time limits, shortened so that a stall shows
// in a test's time: the streams still fit them.
var testLimits = limits{header: 700 * time.Millisecond, slack: 1500 * time.Millisecond, run: 30 * time.Second, stream: 6 * time.Second}

// checkWith runs the battery against url with testLimits and returns its
// exit status, stdout and stderr.
func checkWith(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWithLimits(context.Background(), append(args, url), &stdout, &stderr, testLimits)
	return code, stdout.String(), stderr.String()
}

// fake serves tickstream's routes but for the one request (by method and
// target) that override answers.
func fake(t *testing.T, target string, override http.HandlerFunc) string {
	t.Helper()
	real := handler.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RequestURI() == target && r.Method == http.MethodGet {
			override(w, r)
			return
		}
		real.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// rawServer answers every connection with serve, whatever was asked.
func rawServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// dripServer answers every request with a status line, then a header line
// every 100ms, forever.
func dripServer(t *testing.T) string {
	return rawServer(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\n")
		for i := 0; ; i++ {
			time.Sleep(100 * time.Millisecond)
			if _, err := fmt.Fprintf(c, "X-Drip-%d: 1\r\n", i); err != nil {
				return
			}
		}
	})
}

// chunkedGarbage answers with an event stream's head and a chunked body
// whose second chunk's size is not a number.
func chunkedGarbage(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"6\r\ndata: \r\nzz\r\nnot a chunk\r\n")
		buf.Flush()
		time.Sleep(100 * time.Millisecond)
	}
}

// flush sends what w holds.
func flush(w http.ResponseWriter) { http.NewResponseController(w).Flush() } //nolint:errcheck

// streamHead writes an event stream's status and headers.
func streamHead(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flush(w)
}

// TestHostileServers points the check at fake tickstreams that stall,
// flood, or send garbage. Each run ends within its limits with exit status
// 2 and one line that names the request and what went wrong, never a
// verdict.
func TestHostileServers(t *testing.T) {
	t.Parallel()
	const padded = "/stream/fast?size=1024&count=40"
	const tail = "/events?interval=250ms&count=12&size=1024&heartbeat=0"
	tests := []struct {
		name    string
		url     func(t *testing.T) string
		want    string
		longest time.Duration // the run must end by then
	}{
		{"a /health that sends its headers and then nothing", func(t *testing.T) string {
			return fake(t, "/health", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				flush(w)
				<-r.Context().Done()
			})
		}, "check: GET /health: stalled: no whole answer within 700ms\n", 3 * time.Second},
		{"a server that never answers", func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) { bufio.NewReader(c).ReadString(0) })
		}, "check: GET /health: stalled: no whole answer within 700ms\n", 3 * time.Second},
		{"a header dripped a line at a time", dripServer, "check: GET /health: stalled: no whole answer within 700ms\n", 3 * time.Second},
		{"a burst that never ends", func(t *testing.T) string {
			return fake(t, padded, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				fmt.Fprint(w, "id: 0\ndata: {\"seq\":0,\"ts\":\"2000-01-01T00:00:00.000Z\"}\n\n")
				flush(w)
				<-r.Context().Done()
			})
		}, "check: GET " + padded + ": stalled: the response did not end within 3.5s (55 bytes arrived)\n", 8 * time.Second},
		{"events at full speed", func(t *testing.T) string {
			return fake(t, padded, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				frame := []byte("data: {\"seq\":0,\"ts\":\"2000-01-01T00:00:00.000Z\"}\n\n")
				for r.Context().Err() == nil {
					if _, err := w.Write(bytes.Repeat(frame, 100)); err != nil {
						return
					}
				}
			})
		}, "check: GET " + padded + ": the server sent more than 1024 KiB\n", 5 * time.Second},
		{"too many events", func(t *testing.T) string {
			return fake(t, padded, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				w.Write(bytes.Repeat([]byte("data: x\n\n"), maxEvents+1))
			})
		}, "check: GET " + padded + ": the server sent more than 10000 events\n", 5 * time.Second},
		{"a line without end", func(t *testing.T) string {
			return fake(t, padded, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				w.Write([]byte("data: "))
				chunk := bytes.Repeat([]byte("x"), 32<<10)
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
		}, "check: GET " + padded + ": the server sent a line of more than 64 KiB\n", 5 * time.Second},
		{"a gzip bomb", func(t *testing.T) string {
			bomb := gzipBomb()
			return fake(t, tail, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				streamHead(w)
				w.Write(bomb)
			})
		}, "check: GET " + tail + ": the server sent a body that decodes to more than 1024 KiB\n", 5 * time.Second},
		{"chunked garbage", func(t *testing.T) string { return fake(t, padded, chunkedGarbage(t)) }, "check: GET " + padded + `: the response broke off after 6 bytes: invalid byte in chunk length` + "\n", 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url(t)
			start := time.Now()
			code, stdout, stderr := checkWith(t, url)
			if elapsed := time.Since(start); elapsed > tt.longest {
				t.Errorf("the check took %v, want at most %v", elapsed, tt.longest)
			}
			if code != 2 || stdout != "" {
				t.Errorf("exit status %d, stdout %q; want 2 and nothing", code, stdout)
			}
			if diff := cmp.Diff(tt.want, stderr); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRedirects: a redirect to another origin is not followed (exit 2,
// naming where it pointed) unless -follow says so; then the report says
// where the check went and from where. A redirect within the origin is
// followed.
func TestRedirects(t *testing.T) {
	t.Parallel()
	there := upstream(t)
	away := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, there+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer away.Close()
	code, stdout, stderr := checkWith(t, away.URL)
	want := "check: GET /health: redirected to " + there + "/health, another origin: check that URL, or rerun with -follow\n"
	if code != 2 || stdout != "" || stderr != want {
		t.Errorf("without -follow: exit %d, stdout %q, stderr %q; want 2, nothing and %q", code, stdout, stderr, want)
	}
	var out, errs bytes.Buffer
	code = runWithLimits(context.Background(), []string{"-json", "-follow", away.URL}, &out, &errs, testLimits)
	if code != 0 || !strings.Contains(out.String(), `"url": "`+there+`",`) || !strings.Contains(out.String(), `"redirected_from": "`+away.URL+`",`) {
		t.Errorf("with -follow: exit %d, stderr %q, report %s", code, errs.String(), out.String())
	}
}

// floodAll serves /health and /time as tickstream does, and every stream
// with flood.
func floodAll(t *testing.T, flood http.HandlerFunc) string {
	t.Helper()
	real := handler.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health", "/time":
			real.ServeHTTP(w, r)
		default:
			flood(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
