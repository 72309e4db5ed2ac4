package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"
)

// serve runs handler on a loopback port and returns its URL.
func serve(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

// gzipBomb is a gzip body of 64 MiB of event lines.
func gzipBomb() []byte {
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zw.Write(bytes.Repeat([]byte("data: x\n"), 64<<20/8))
	zw.Close()
	return bomb.Bytes()
}

// TestHostileStreams points stream mode at servers that stall, flood, or
// send garbage. Each run ends within its limits (the stream window of the
// test's limits, 6s, and a few seconds more) with exit status 2 and one
// line that names the request and what went wrong; an endless well-formed
// stream, and one that sends its head and then nothing, get a verdict.
// Which of the concurrent reads fails first may vary, so the line is
// matched with the read's Accept-Encoding optional.
func TestHostileStreams(t *testing.T) {
	bomb := gzipBomb()
	type hostile struct {
		name string
		url  func(t *testing.T) string
		code int
		want string // a regular expression of stderr, with URL for the server's URL
		out  string // one of stdout, for a verdict
	}
	tests := []hostile{
		{"a server that never answers", func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) { bufio.NewReader(c).ReadString(0) })
		}, 2, `check: GET URL( \(Accept-Encoding: identity\))?: stalled: no response head within 6s\n`, ``},
		{"a header dripped a line at a time", dripServer, 2, `check: GET URL( \(Accept-Encoding: identity\))?: stalled: no response head within 6s\n`, ``},
		{"a 404", func(t *testing.T) string { return serve(t, http.NotFound) },
			2, `check: GET URL( \(Accept-Encoding: identity\))?: answered 404 Not Found "404 page not found\\n": not a stream\n`, ``},
		{"events at full speed", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				frame := bytes.Repeat([]byte("data: {\"seq\":0,\"ts\":\"2000-01-01T00:00:00.000Z\"}\n\n"), 100)
				for r.Context().Err() == nil {
					if _, err := w.Write(frame); err != nil {
						return
					}
				}
			})
		}, 2, `check: GET URL( \(Accept-Encoding: identity\))?: the server sent more than 1024 KiB\n`, ``},
		{"too many events", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				w.Write(bytes.Repeat([]byte("data: x\n\n"), maxEvents+1))
			})
		}, 2, `check: GET URL( \(Accept-Encoding: identity\))?: the server sent more than 10000 events\n`, ``},
		{"a line without end", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				chunk := bytes.Repeat([]byte("x"), 64<<10)
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
		}, 2, `check: GET URL( \(Accept-Encoding: identity\))?: the server sent (a line of more than 64 KiB|more than 1024 KiB)\n`, ``},
		{"an NDJSON line without end", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.Write(bytes.Repeat([]byte("x"), 100<<10))
			})
		}, 2, `check: GET URL( \(Accept-Encoding: identity\))?: the server sent a line of more than 64 KiB\n`, ``},
		{"a gzip bomb", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				streamHead(w)
				w.Write(bomb)
			})
		}, 2, `check: GET URL( \(Accept-Encoding: identity\))?: the server sent a body that decodes to more than 1024 KiB\n`, ``},
		{"chunked garbage", func(t *testing.T) string { return serve(t, chunkedGarbage(t)) }, 2, `check: GET URL( \(Accept-Encoding: identity\))?: the response broke off after 6 bytes: invalid byte in chunk length\n`, ``},
		{"an endless well-formed stream", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				for i := 0; r.Context().Err() == nil; i++ {
					fmt.Fprintf(w, "id: %d\ndata: tick\n\n", i)
					flush(w)
					time.Sleep(100 * time.Millisecond)
				}
			})
		}, 0, ``, `(?m)^ok  delivery +live +sse: \d+ events(, each readable on its own| in \d+ releases)[^\n]*\n(.*\n)*ok  end +open +still open after 6s, when the check stopped reading\n`},
		{"a stream closed mid-event", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				c, buf, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
					"10\r\ndata: whole\n\ndat\r\n")
				buf.Flush()
				c.Close() // as a proxy's timeout closes it: no last chunk
			})
		}, 1, ``, `(?m)^ok  +delivery +live +sse: 1 event;[^\n]*\n(.*\n)*FAIL  end +cut +the response broke off after [^\n]*\(16 bytes\): unexpected EOF\n +fix: +something on the path ends streams early`},
		{"a response that ends cleanly mid-event", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				fmt.Fprint(w, "id: 1\ndata: whole\n\nid: 2\ndata: {\"tru")
			})
		}, 1, ``, `(?m)^FAIL  end +cut +the response ended with 17 bytes of an unfinished event after its last whole one: it was cut, though it ended cleanly\n`},
		{"a head, then nothing", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				streamHead(w)
				<-r.Context().Done()
			})
		}, 1, ``, `(?m)^FAIL  delivery +broken +no events arrived; head after [^\n]*\n(.*\n)*ok    end +open +still open after 6s`},
	}
	// All at once: most wait out the stream window.
	runAtOnce(t, len(tests), tests, func(tt hostile) string { return tt.name }, func(t *testing.T, tt hostile) {
		url := tt.url(t) + "/"
		start := time.Now()
		code, stdout, stderr := checkWith(t, url, "-stream")
		if elapsed, longest := time.Since(start), testLimits.stream+5*time.Second; elapsed > longest {
			t.Errorf("the check took %v, want at most %v", elapsed, longest)
		}
		if code != tt.code {
			t.Errorf("exit status %d, want %d; stdout %q, stderr %q", code, tt.code, stdout, stderr)
		}
		want := regexp.MustCompile("^" + regexp.MustCompile(`\bURL\b`).ReplaceAllLiteralString(tt.want, regexp.QuoteMeta(url)) + "$")
		if !want.MatchString(stderr) {
			t.Errorf("stderr %q, want it to match %s", stderr, want)
		}
		if tt.code == 2 && stdout != "" {
			t.Errorf("stdout %q with exit status 2, want nothing", stdout)
		}
		if tt.out != "" && !regexp.MustCompile(tt.out).MatchString(stdout) {
			t.Errorf("stdout %q, want it to match %s", stdout, tt.out)
		}
	})
}
