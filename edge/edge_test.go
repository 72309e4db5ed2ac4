//go:build linux

package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tickstream/tickstream/internal/wiretest"
)

// The tests build the wasm twice (the release, and the tests' build with
// -tags edgetest, whose clock the golden files' requests set), lay each out
// as make edge does, and serve it from workerd, Deno and Bun, the versions
// pinned in package-lock.json, installed with npm ci.

var (
	buildOnce sync.Once
	buildErr  error
	release   string // the release's dist directory
	testBuild string // the tests' build's
	tools     string // edge/node_modules/.bin, absolute
)

var runtimes = []string{"workerd", "deno", "bun"}

// client is the tests' HTTP client: no request of theirs takes a minute.
var client = &http.Client{Timeout: time.Minute}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tickstream-edge-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	release, testBuild = filepath.Join(dir, "release", "dist"), filepath.Join(dir, "test", "dist")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build lays out both builds and installs the runtimes, once.
func build(t testing.TB) {
	t.Helper()
	buildOnce.Do(func() {
		abs, err := filepath.Abs("node_modules/.bin")
		if err != nil {
			buildErr = err
			return
		}
		tools = abs
		if out, err := exec.Command("npm", "ci", "--no-audit", "--no-fund").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("npm ci in edge/ (Node.js and npm are needed): %v\n%s", err, out)
			return
		}
		for dist, tags := range map[string]string{release: "", testBuild: "edgetest"} {
			if buildErr = layOut(dist, tags); buildErr != nil {
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// layOut builds the wasm with tags into dist, with the files make edge
// copies beside it.
func layOut(dist, tags string) error {
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s", "-tags", tags, "-o", filepath.Join(dist, "tickstream.wasm"), ".")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build (js/wasm, tags %q): %v\n%s", tags, err, out)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	files := map[string]string{filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"): "wasm_exec.js"}
	for _, name := range []string{"glue.mjs", "worker.mjs", "deno.mjs", "bun.mjs", "workerd.capnp", "floor.mjs", "floor-serve.mjs", "floor.capnp"} {
		files[name] = name
	}
	for src, name := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dist, name), b, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(filepath.Dir(dist), "wrangler.toml"), must(os.ReadFile("wrangler.toml")), 0o644)
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// A server is a runtime serving a build on a loopback port.
type server struct {
	url string
	out *syncBuffer // what it printed
	pid int         // the runtime's process
}

// syncBuffer is a bytes.Buffer that a process and a test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// waitFor reports whether s holds substr within d: a runtime writes its log
// lines when it gets to them, which may be after the response that caused
// them has arrived.
func (s *syncBuffer) waitFor(substr string, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if strings.Contains(s.String(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// brokenOff marks the errors the glue breaks a response off with, which
// workerd logs as uncaught: they are meant.
const brokenOff = "Error: tickstream: "

// isolationErrors are what workerd prints when a request touches
// another's I/O, or is killed waiting on another's work, and what a
// runtime prints for an exception nobody caught.
var isolationErrors = regexp.MustCompile(`(?i)different request|hung|uncaught|unhandled`)

// serve starts runtime on the build in dist with the settings in env, and
// stops it when the test ends, failing the test if it printed an
// isolation error or an uncaught exception.
func serve(t testing.TB, runtimeName, dist string, env map[string]string) *server {
	t.Helper()
	return start(t, runtimeName, dist, "workerd.capnp", "deno.mjs", "bun.mjs", env)
}

// serveFloor starts runtime on the floor worker (floor.mjs) in dist.
func serveFloor(t testing.TB, runtimeName, dist string) *server {
	t.Helper()
	return start(t, runtimeName, dist, "floor.capnp", "floor-serve.mjs", "floor-serve.mjs", nil)
}

// start starts runtime on the entry point it takes in dist (a workerd
// config, or a script for Deno or Bun), as serve says.
func start(t testing.TB, runtimeName, dist, capnpFile, denoEntry, bunEntry string, env map[string]string) *server {
	t.Helper()
	port := freePort(t)
	s := &server{url: "http://127.0.0.1:" + port, out: &syncBuffer{}}
	var cmd *exec.Cmd
	switch runtimeName {
	case "workerd":
		config := filepath.Join(dist, "test-"+port+".capnp")
		capnp := string(must(os.ReadFile(filepath.Join(dist, capnpFile))))
		for name, value := range env {
			capnp = regexp.MustCompile(`\(name = "`+name+`", text = "[^"]*"\)`).
				ReplaceAllString(capnp, `(name = "`+name+`", text = "`+value+`")`)
		}
		if err := os.WriteFile(config, []byte(capnp), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(filepath.Join(tools, "workerd"), "serve", config, "--socket-addr", "http=127.0.0.1:"+port)
	case "deno":
		cmd = exec.Command(filepath.Join(tools, "deno"), "run", "-A", filepath.Join(dist, denoEntry))
	case "bun":
		cmd = exec.Command(filepath.Join(tools, "bun"), filepath.Join(dist, bunEntry))
	}
	cmd.Env = append(os.Environ(), "PORT="+port, "HOST=127.0.0.1", "DENO_DIR="+t.TempDir(), "NO_COLOR=1")
	for name, value := range env {
		cmd.Env = append(cmd.Env, name+"="+value)
	}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", runtimeName, err)
	}
	s.pid = cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		for line := range strings.Lines(s.out.String()) {
			if m := isolationErrors.FindString(line); m != "" && !strings.Contains(line, brokenOff) {
				t.Errorf("%s printed %q:\n%s", runtimeName, m, s.out)
				break
			}
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(s.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer /health 30s after it started: %v\n%s", runtimeName, err, s.out)
		}
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestGolden: every golden case, through each runtime, gives the bytes of
// the handler's golden files: the same as go run ./local and Lambda give.
func TestGolden(t *testing.T) {
	build(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := serve(t, rt, testBuild, nil)
			for _, gc := range wiretest.Cases {
				t.Run(gc.File, func(t *testing.T) {
					req := gc.Request(s.url)
					req.Header.Set("X-Tickstream-Clock-Step", gc.Period.String())
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					body, err := gc.ReadBody(resp.Body)
					if err != nil {
						t.Fatalf("reading body: %v", err)
					}
					if rt == "bun" && gc.Method == "HEAD" && resp.Header.Get("Content-Length") == "0" {
						// Bun gives every HEAD response without one a
						// Content-Length: 0 (README: "On Cloudflare Workers,
						// Deno and Bun"); GET's headers are the handler's.
						resp.Header.Del("Content-Length")
					}
					wiretest.Golden(t, filepath.Join("..", "handler", "testdata", gc.File), wiretest.Dump(resp.StatusCode, resp.Header, body))
				})
			}
		})
	}
}

// TestPanic: a handler that panics gets its request a 500 and a JSON
// error, and the instance goes on serving.
func TestPanic(t *testing.T) {
	build(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := serve(t, rt, testBuild, nil)
			resp, err := client.Get(s.url + "/test/panic")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got, want := fmt.Sprintf("%d %s", resp.StatusCode, body), `500 {"error":"internal error"}`; got != want {
				t.Errorf("GET /test/panic: %s, want %s", got, want)
			}
			if !s.out.waitFor("edge: panic serving GET /test/panic: a test's panic", 10*time.Second) {
				t.Errorf("%s did not log the panic:\n%s", rt, s.out)
			}
			health, err := client.Get(s.url + "/health")
			if err != nil || health.StatusCode != http.StatusOK {
				t.Fatalf("after the panic, /health: %v %v", health, err)
			}
			health.Body.Close()
		})
	}
}

// TestBrokenResponses: through each runtime, a response that breaks off
// (its handler panicked after flushing an event, or after writing one
// unflushed) fails the client's read, as a reset under net/http does,
// instead of ending as if whole, and the instance serves on; a Go
// instance that exits breaks off its open response, and the next request
// starts another, which serves streams.
func TestBrokenResponses(t *testing.T) {
	build(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := serve(t, rt, testBuild, nil)
			for _, tt := range []struct{ path, before string }{
				{"/test/panic-streamed", "data: 1\n\n"},
				{"/test/panic-unflushed", ""},
				{"/test/exit", "data: 1\n\n"},
			} {
				resp, err := client.Get(s.url + tt.path)
				if err != nil && tt.before == "" {
					// Broken off before its head left (Bun's way with a
					// body that fails before its first chunk): a network
					// error too, as net/http gives a panic before a flush.
					continue
				}
				if err != nil {
					t.Fatalf("GET %s: %v", tt.path, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil || string(body) != tt.before {
					t.Errorf("GET %s: %d, body %q, read error %v; want %q and then an error", tt.path, resp.StatusCode, body, err, tt.before)
				}
				ids, err := getStream(s.url + "/stream/fast?count=3")
				if err != nil || !consecutive(ids, 0, 3) {
					t.Errorf("after GET %s, /stream/fast?count=3: ids %v, %v", tt.path, ids, err)
				}
			}
			if !s.out.waitFor("edge: panic serving GET /test/panic-streamed: a test's panic mid-stream", 10*time.Second) {
				t.Errorf("%s did not log the panic:\n%s", rt, s.out)
			}
		})
	}
}

// getStream reads the event ids of the stream at url.
func getStream(url string) ([]int, error) { return getStreamWith(client, url) }

// getStreamWith reads the event ids of the stream at url with c.
func getStreamWith(c *http.Client, url string) ([]int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	return readStream(resp.Body)
}

// TestBodies: a POST body is read within the handler's bounds through
// each runtime: one over 64 KiB gets 413 (announced or not), one that
// stops arriving gets 408 after the 5 s body timeout, both the handler's
// own answers.
func TestBodies(t *testing.T) {
	build(t)
	tooLarge := `413 {"error":"request body over 64 KiB; send a JSON object such as {\"count\":20}"}`
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			s := serve(t, rt, release, nil)
			big := strings.Repeat(" ", 100<<10)
			for name, body := range map[string]io.Reader{
				"announced":   strings.NewReader(big),
				"unannounced": io.MultiReader(strings.NewReader(big)), // no length: chunked
			} {
				resp, err := client.Post(s.url+"/events", "application/json", body)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if g := fmt.Sprintf("%d %s", resp.StatusCode, got); g != tooLarge {
					t.Errorf("%s 100 KiB body: %s, want %s", name, g, tooLarge)
				}
			}

			c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			start := time.Now()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("a stalled body: %v", err)
			}
			got, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			if g, want := fmt.Sprintf("%d %s", resp.StatusCode, got), `408 {"error":"request body not complete within 5s"}`; g != want {
				t.Errorf("a stalled body: %s, want %s", g, want)
			}
			if waited := time.Since(start); waited < 4*time.Second {
				t.Errorf("a stalled body was answered after %v, before the 5 s body timeout", waited)
			}
		})
	}
}

// TestClientNotReading: a client that stops reading a stream of 64 KiB
// events ends it once 2 MiB wait for it, and frees its slot: the one
// stream MAX_STREAMS allows is served to the next client.
func TestClientNotReading(t *testing.T) {
	build(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			s := serve(t, rt, release, map[string]string{"MAX_STREAMS": "1"})
			c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.(*net.TCPConn).SetReadBuffer(16 << 10)
			io.WriteString(c, "GET /events?interval=1ms&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				resp, err := client.Get(s.url + "/events?count=1")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("the stream of a client that stopped reading still holds its slot after 30 s: %v %v", resp, err)
				}
			}
		})
	}
}

// readStream reads an /events stream to its end and returns its ids.
func readStream(r io.Reader) ([]int, error) {
	var ids []int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			n, err := strconv.Atoi(id)
			if err != nil {
				return ids, err
			}
			ids = append(ids, n)
		}
	}
	return ids, sc.Err()
}

// consecutive reports whether ids run from first to last without a gap.
func consecutive(ids []int, first, last int) bool {
	if len(ids) != last-first+1 {
		return false
	}
	for i, id := range ids {
		if id != first+i {
			return false
		}
	}
	return true
}

// TestStreamsEndingTogether: waves of short streams that end at once,
// whose ends Go reports as it runs for one of them, each read to its end
// within a deadline. In workerd a timer set by code that runs for another
// request ends with that request; a glue that set one so (the end of a
// stream woken by another's Go run) left such streams open for good, a
// few in ten thousand; Deno and Bun, whose timers belong to no request,
// take fewer waves.
func TestStreamsEndingTogether(t *testing.T) {
	build(t)
	const clients = 20
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			each := 100
			if rt == "workerd" {
				each = 750
			}
			s := serve(t, rt, release, nil)
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			defer client.CloseIdleConnections()
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for c := range clients {
				wg.Go(func() {
					for i := range each {
						ids, err := getStreamWith(client, s.url+"/stream/fast?count=1&delay=10ms")
						if err != nil || !consecutive(ids, 0, 1) {
							errs <- fmt.Errorf("client %d, stream %d: ids %v, %v; want 0 and 1", c, i, ids, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestConcurrentStreams: 200 streams at once in one process of each
// runtime, each with every event and no id gap, while 50 more clients
// leave mid-stream; the leavers' streams end (their slots come back: 250
// new streams fit the limit of 250 afterwards) and no other stream
// notices.
func TestConcurrentStreams(t *testing.T) {
	build(t)
	const stayers, leavers, count = 200, 50, 20
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := serve(t, rt, release, map[string]string{"MAX_STREAMS": strconv.Itoa(stayers + leavers)})
			client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: stayers + leavers}}
			defer client.CloseIdleConnections()
			var wg sync.WaitGroup
			errs := make(chan error, stayers+leavers)
			for i := range stayers {
				wg.Go(func() {
					resp, err := client.Get(fmt.Sprintf("%s/events?interval=100ms&count=%d", s.url, count))
					if err != nil {
						errs <- err
						return
					}
					defer resp.Body.Close()
					ids, err := readStream(resp.Body)
					if err != nil || !consecutive(ids, 1, count) {
						errs <- fmt.Errorf("stream %d: ids %v, %v; want 1 to %d", i, ids, err, count)
					}
				})
			}
			for i := range leavers {
				wg.Go(func() {
					resp, err := client.Get(s.url + "/events?interval=100ms")
					if err != nil {
						errs <- err
						return
					}
					if _, err := wiretest.ReadFrames(resp.Body, 5); err != nil {
						errs <- fmt.Errorf("leaver %d: %v", i, err)
					}
					resp.Body.Close() // leaves mid-stream
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// Every slot is free again.
			// A departed client's slot comes back once its runtime tells
			// the glue, which a loaded box may take a while to do: rounds
			// of as many new streams, until one has none refused.
			var refused atomic.Int32
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				refused.Store(0)
				for range stayers + leavers {
					wg.Go(func() {
						resp, err := client.Get(s.url + "/events?interval=2s&count=2")
						if err == nil {
							if resp.StatusCode != http.StatusOK {
								refused.Add(1)
							}
							resp.Body.Close()
						}
					})
				}
				wg.Wait()
				if refused.Load() == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%d of %d new streams still refused 15s after every earlier stream ended", refused.Load(), stayers+leavers)
					break
				}
			}
		})
	}
}

// TestLimits: beyond MAX_STREAMS a stream gets the handler's 503, and a
// stream that reaches MAX_STREAM_DURATION ends on an event boundary, from
// which its client resumes with Last-Event-ID.
func TestLimits(t *testing.T) {
	build(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := serve(t, rt, release, map[string]string{"MAX_STREAMS": "2", "MAX_STREAM_DURATION": "1s"})
			first, err := client.Get(s.url + "/events?interval=300ms")
			if err != nil {
				t.Fatal(err)
			}
			defer first.Body.Close()
			second, err := client.Get(s.url + "/events?interval=300ms")
			if err != nil {
				t.Fatal(err)
			}
			defer second.Body.Close()
			third, err := client.Get(s.url + "/events")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(third.Body)
			third.Body.Close()
			got := fmt.Sprintf("%d %s %s", third.StatusCode, third.Header.Get("Retry-After"), body)
			if want := `503 1 {"error":"too many open streams (limit 2); retry later"}`; got != want {
				t.Errorf("beyond the limit: %s, want %s", got, want)
			}

			start := time.Now()
			rest, err := io.ReadAll(first.Body)
			ids, _ := readStream(bytes.NewReader(rest))
			if err != nil || len(ids) < 3 || !bytes.HasSuffix(rest, []byte("\n\n")) {
				t.Fatalf("the stream ended with %v after ids %v: want a clean end after whole events", err, ids)
			}
			if waited := time.Since(start); waited > 3*time.Second {
				t.Errorf("the stream lasted %v more, beyond MAX_STREAM_DURATION of 1s", waited)
			}
			last := ids[len(ids)-1]
			req, _ := http.NewRequest("GET", s.url+"/events?interval=300ms&count="+strconv.Itoa(last+2), nil)
			req.Header.Set("Last-Event-ID", strconv.Itoa(last))
			resumed, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resumed.Body.Close()
			if ids, err := readStream(resumed.Body); err != nil || !consecutive(ids, last+1, last+2) {
				t.Errorf("resumed after %d: ids %v, %v; want %d and %d", last, ids, err, last+1, last+2)
			}
		})
	}
}

// TestLargeHead: a request whose head does not fit the bridge's 96 KiB
// inbox (the glue asks room for 3 bytes a character) comes to the handler
// whole, in an array of its own: its Last-Event-ID, after 40 KB of
// another header, resumes the stream after it. Bun refuses a head over
// 16 KiB itself, before the handler: it answers 431 and closes the
// connection, which the client may see first, as it is still writing.
func TestLargeHead(t *testing.T) {
	build(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := serve(t, rt, release, nil)
			req, _ := http.NewRequest("GET", s.url+"/events?interval=1ms&count=43", nil)
			req.Header.Set("A-Padding", strings.Repeat("p", 40_000)) // before Last-Event-ID: fetch sorts headers by name
			req.Header.Set("Last-Event-ID", "41")
			resp, err := client.Do(req)
			if rt == "bun" {
				if err == nil {
					defer resp.Body.Close()
					if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
						t.Errorf("Bun answered %s to a 40 KB head: want its own 431", resp.Status)
					}
				}
				return // else refused as it was written
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ids, err := readStream(resp.Body); err != nil || !consecutive(ids, 42, 43) {
				t.Errorf("ids %v, %v; want 42 and 43", ids, err)
			}
		})
	}
}

// TestIdleStream: a stream silent for 11 s (no heartbeat) is not cut by
// the runtime: Bun closes connections idle for 10 s unless told not to.
func TestIdleStream(t *testing.T) {
	build(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			s := serve(t, rt, release, nil)
			resp, err := client.Get(s.url + "/events?interval=11s&heartbeat=0&count=2")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ids, err := readStream(resp.Body); err != nil || !consecutive(ids, 1, 2) {
				t.Errorf("ids %v, %v; want 1 and, 11 s later, 2", ids, err)
			}
		})
	}
}

// TestHeartbeats: between two events 2.5 s apart, a stream with 1 s
// heartbeats sends two keepalive comments, as it does under the runner.
func TestHeartbeats(t *testing.T) {
	build(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			t.Parallel()
			s := serve(t, rt, release, nil)
			resp, err := client.Get(s.url + "/events?interval=2500ms&heartbeat=1s&count=2")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got []string
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if line := sc.Text(); strings.HasPrefix(line, "id: ") || strings.HasPrefix(line, ":") {
					got = append(got, line)
				}
			}
			if diff := cmp.Diff([]string{"id: 1", ": keepalive", ": keepalive", "id: 2"}, got); diff != "" || sc.Err() != nil {
				t.Errorf("ids and comments (-want +got), %v:\n%s", sc.Err(), diff)
			}
		})
	}
}

// TestCheck: the path check, run against each runtime directly, finds
// nothing that breaks live streaming (exit status 0).
func TestCheck(t *testing.T) {
	build(t)
	check := filepath.Join(t.TempDir(), "check")
	if out, err := exec.Command("go", "build", "-o", check, "../check").CombinedOutput(); err != nil {
		t.Fatalf("go build ../check: %v\n%s", err, out)
	}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := serve(t, rt, release, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, check, s.url+"/").CombinedOutput()
			if err != nil {
				t.Errorf("check %s: %v\n%s", s.url, err, out)
			}
			t.Logf("check through %s:\n%s", rt, out)
		})
	}
}

// TestWranglerDryRun: wrangler bundles the Worker offline (no account):
// worker.mjs, the glue and the wasm, within the free plan's 3 MB.
func TestWranglerDryRun(t *testing.T) {
	build(t)
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(tools, "wrangler"), "deploy", "--dry-run", "--outdir", out)
	cmd.Dir = filepath.Dir(release) // its wrangler.toml, with dist/ beside it
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "WRANGLER_SEND_METRICS=false", "CI=true", "NO_COLOR=1")
	printed, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrangler deploy --dry-run: %v\n%s", err, printed)
	}
	size := regexp.MustCompile(`Total Upload: ([0-9.]+) KiB / gzip: ([0-9.]+) KiB`).FindSubmatch(printed)
	if size == nil || !bytes.Contains(printed, []byte("--dry-run: exiting now")) {
		t.Fatalf("wrangler printed no upload size:\n%s", printed)
	}
	gzipped, _ := strconv.ParseFloat(string(size[2]), 64)
	if gzipped > 3<<10 {
		t.Errorf("the bundle is %.0f KiB gzipped, over the free plan's 3 MB", gzipped)
	}
	t.Logf("bundle: %s KiB, %s KiB gzipped", size[1], size[2])
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, regexp.MustCompile(`^[0-9a-f]{40}-`).ReplaceAllString(e.Name(), "<hash>-"))
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"<hash>-tickstream.wasm", "README.md", "worker.js", "worker.js.map"}, names); diff != "" {
		t.Errorf("the bundle's files (-want +got):\n%s", diff)
	}
}

// TestRestamp: a frame that the glue's timer sends more than a millisecond
// after it was due has its timestamp moved to when it is sent, in each of
// the stream formats, within the second it was due and past it (into the
// next second, and the next year); a frame without the stamp of its due
// time (a heartbeat, a done event, a test clock's event) is sent as it is.
func TestRestamp(t *testing.T) {
	build(t)
	due := time.Date(2026, 12, 6, 9, 0, 0, 120e6, time.UTC)
	late := due.Add(37 * time.Millisecond)
	stamp := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000Z") }
	lastDue := time.Date(2026, 12, 31, 23, 59, 59, 995e6, time.UTC)
	nextYear := lastDue.Add(8 * time.Millisecond)
	secondDue := time.Date(2026, 12, 6, 9, 0, 7, 998e6, time.UTC)
	nextSecond := secondDue.Add(2 * time.Millisecond)
	type restampCase struct {
		Frame    string `json:"frame"`
		Due      int64  `json:"due"`
		Now      int64  `json:"now"`
		Restamps string `json:"-"`
	}
	cases := []restampCase{
		{Frame: `id: 3` + "\n" + `data: {"seq":3,"ts":"` + stamp(due) + `"}` + "\n\n", Restamps: `id: 3` + "\n" + `data: {"seq":3,"ts":"` + stamp(late) + `"}` + "\n\n"},
		{Frame: `{"id":4,"timestamp":"` + stamp(due) + `","message":"Event #4"}` + "\n", Restamps: `{"id":4,"timestamp":"` + stamp(late) + `","message":"Event #4"}` + "\n"},
		{Frame: "Event #5 at " + stamp(due) + " ...\n", Restamps: "Event #5 at " + stamp(late) + " ...\n"},
		{Frame: ": keepalive\n\n", Restamps: ": keepalive\n\n"},
		{Frame: "id: 100\nevent: done\ndata: complete\n\n", Restamps: "id: 100\nevent: done\ndata: complete\n\n"},
		{Frame: `data: {"seq":0,"ts":"2000-01-01T00:00:00.000Z"}` + "\n\n", Restamps: `data: {"seq":0,"ts":"2000-01-01T00:00:00.000Z"}` + "\n\n"},
		{Frame: `id: 6` + "\n" + `data: {"seq":6,"ts":"` + stamp(secondDue) + `"}` + "\n\n", Restamps: `id: 6` + "\n" + `data: {"seq":6,"ts":"` + stamp(nextSecond) + `"}` + "\n\n",
			Due: secondDue.UnixMilli(), Now: nextSecond.UnixMilli()},
		{Frame: "Event #7 at " + stamp(lastDue) + "\n", Restamps: "Event #7 at " + stamp(nextYear) + "\n",
			Due: lastDue.UnixMilli(), Now: nextYear.UnixMilli()},
	}
	var want []string
	for i := range cases {
		if cases[i].Due == 0 {
			cases[i].Due, cases[i].Now = due.UnixMilli(), late.UnixMilli()
		}
		want = append(want, cases[i].Restamps)
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	script := `const { restamp } = await import(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
const frames = cases.map((c) => new TextDecoder().decode(restamp(new TextEncoder().encode(c.frame), c.due, c.now)));
console.log(JSON.stringify(frames));`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", "--input-type=module", "-e", script, filepath.Join(release, "glue.mjs"), string(in)).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames restamped (-want +got):\n%s", diff)
	}
}
