package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/clock"
	"github.com/tickstream/tickstream/internal/wiretest"
)

const goldenDir = "../handler/testdata"

// logSink collects the runner's log output and reports the address it
// listens on.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	addrc chan string
}

var listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := listeningLine.FindSubmatch(p); m != nil {
		s.addrc <- string(m[1])
	}
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// runner is a running instance of the command, started by startRunner.
type runner struct {
	url  string
	logs *logSink
	stop func() error // ends the run, as SIGTERM does, and returns run's error
}

// startRunner runs the command in-process on a loopback port with args
// and handler options, and stops it when the test ends.
func startRunner(t testing.TB, args []string, opts ...handler.Option) *runner {
	t.Helper()
	return startRunnerWithClock(t, nil, args, opts...)
}

// startRunnerWithClock is startRunner with events stamped by now (the time
// if nil), as golden files need on a real socket.
func startRunnerWithClock(t testing.TB, now func() time.Time, args []string, opts ...handler.Option) *runner {
	t.Helper()
	base := context.Background()
	if now != nil {
		base = clock.NewContext(base, now)
	}
	ctx, cancel := context.WithCancel(base)
	logs := &logSink{addrc: make(chan string, 1)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, logs, opts...)
	}()
	var url string
	select {
	case addr := <-logs.addrc:
		url = "http://" + addr
	case err := <-done:
		t.Fatalf("runner exited before listening: %v\n%s", err, logs)
	}
	var once sync.Once
	var runErr error
	stopRun := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	var stoppedByTest atomic.Bool
	t.Cleanup(func() {
		// An error the test asked for (by calling stop) is the test's to judge.
		if err := stopRun(); err != nil && !stoppedByTest.Load() {
			t.Errorf("runner: %v", err)
		}
	})
	stop := func() error {
		stoppedByTest.Store(true)
		return stopRun()
	}
	return &runner{url: url, logs: logs, stop: stop}
}

// TestGolden serves every golden case through the real runner on a loopback
// socket, with streams detached (written by the handler on a hijacked
// connection) and not (written through net/http). Streams run with no pause
// and a clock that steps one event period per event, so the bytes match the
// handler's fake-time golden files.
func TestGolden(t *testing.T) {
	for _, detach := range []string{"-detach=true", "-detach=false"} {
		for _, gc := range wiretest.Cases {
			t.Run(detach+"/"+gc.File, func(t *testing.T) {
				testGolden(t, gc, detach)
			})
		}
	}
}

// testGolden serves one golden case through a runner started with arg.
func testGolden(t *testing.T, gc wiretest.Case, arg string) {
	r := startRunnerWithClock(t, wiretest.SteppingClock(gc.Period), []string{arg},
		handler.WithInterval(time.Millisecond),
		handler.WithFastDelay(0))
	resp, err := http.DefaultClient.Do(gc.Request(r.url))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := gc.ReadBody(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	wiretest.Golden(t, filepath.Join(goldenDir, gc.File), wiretest.Dump(resp.StatusCode, resp.Header, body))
}

func TestParseConfig(t *testing.T) {
	defaults := config{
		addr:              ":8080",
		grace:             5 * time.Second,
		readHeaderTimeout: 5 * time.Second,
		maxStreams:        handler.DefaultMaxStreams,
		writeTimeout:      handler.DefaultWriteTimeout,
		heartbeat:         handler.DefaultHeartbeat,
		streamMemory:      handler.DefaultStreamMemory,
		detach:            true,
	}
	with := func(change func(*config)) config {
		c := defaults
		change(&c)
		return c
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", want: defaults},
		{name: "PORT", env: map[string]string{"PORT": "9000"}, want: with(func(c *config) { c.addr = ":9000" })},
		{name: "flag wins over PORT", args: []string{"-addr", "127.0.0.1:7000"}, env: map[string]string{"PORT": "9000"},
			want: with(func(c *config) { c.addr = "127.0.0.1:7000" })},
		{name: "all flags", args: []string{"-addr=:1", "-grace=250ms", "-log-level=debug", "-read-header-timeout=2s",
			"-max-streams=20000", "-write-timeout=0", "-heartbeat=30s", "-cors-origins", "https://a.example, https://b.example,", "-detach=false",
			"-stream-memory=1GiB"},
			want: config{addr: ":1", grace: 250 * time.Millisecond, logLevel: slog.LevelDebug, readHeaderTimeout: 2 * time.Second,
				maxStreams: 20000, writeTimeout: 0, heartbeat: 30 * time.Second, corsOrigins: []string{"https://a.example", "https://b.example"},
				streamMemory: 1 << 30}},
		{name: "stream memory in bytes", args: []string{"-stream-memory", "1048576"}, want: with(func(c *config) { c.streamMemory = 1 << 20 })},
		{name: "stream memory in KiB", args: []string{"-stream-memory", "65536KiB"}, want: with(func(c *config) { c.streamMemory = 64 << 20 })},
		{name: "bad stream memory", args: []string{"-stream-memory", "1.5GiB"},
			wantErr: `invalid value "1.5GiB" for flag -stream-memory: want a positive size such as 64MiB, 1GiB or 1048576 (bytes)`},
		{name: "zero stream memory", args: []string{"-stream-memory", "0MiB"},
			wantErr: `invalid value "0MiB" for flag -stream-memory: want a positive size such as 64MiB, 1GiB or 1048576 (bytes)`},
		{name: "bad PORT", env: map[string]string{"PORT": "http"}, wantErr: `PORT="http": want a port number from 0 to 65535`},
		{name: "PORT out of range", env: map[string]string{"PORT": "70000"}, wantErr: `PORT="70000": want a port number from 0 to 65535`},
		{name: "bad grace", args: []string{"-grace", "soon"}, wantErr: `invalid value "soon" for flag -grace: parse error`},
		{name: "negative grace", args: []string{"-grace", "-1s"}, wantErr: `-grace -1s: must not be negative`},
		{name: "negative write timeout", args: []string{"-write-timeout", "-1s"}, wantErr: `-write-timeout -1s: must not be negative`},
		{name: "negative heartbeat", args: []string{"-heartbeat", "-1s"}, wantErr: `-heartbeat -1s: must not be negative`},
		{name: "zero read header timeout", args: []string{"-read-header-timeout", "0"}, wantErr: `-read-header-timeout 0s: must be positive`},
		{name: "zero max streams", args: []string{"-max-streams", "0"}, wantErr: `-max-streams 0: must be at least 1`},
		{name: "bad max streams", args: []string{"-max-streams", "many"}, wantErr: `invalid value "many" for flag -max-streams: parse error`},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErr: `invalid value "loud" for flag -log-level: slog: level string "loud": unknown name`},
		{name: "stray argument", args: []string{"serve"}, wantErr: `unexpected arguments ["serve"]`},
		{name: "unknown flag", args: []string{"-port", "1"}, wantErr: `flag provided but not defined: -port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// openStreams opens n /events streams and reads the first frame of each.
func openStreams(t *testing.T, url string, n int) []*http.Response {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}}
	t.Cleanup(client.CloseIdleConnections)
	streams := make([]*http.Response, n)
	errs := make(chan error, n)
	for i := range streams {
		go func() {
			resp, err := client.Get(url + "/events")
			if err == nil {
				streams[i] = resp
				_, err = wiretest.ReadFrames(resp.Body, 1)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("opening a stream: %v", err)
		}
	}
	t.Cleanup(func() {
		for _, s := range streams {
			s.Body.Close()
		}
	})
	return streams
}

// TestHealthWhileStreamsOpen proves the runner serves every client at once:
// the original server made /health wait until its one stream ended.
func TestHealthWhileStreamsOpen(t *testing.T) {
	r := startRunner(t, nil, handler.WithInterval(100*time.Millisecond))
	streams := openStreams(t, r.url, 300)
	resp, err := http.Get(r.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"status":"healthy"}` {
		t.Errorf("/health with 300 open streams: %d %s", resp.StatusCode, body)
	}
	for i, s := range streams {
		if _, err := wiretest.ReadFrames(s.Body, 1); err != nil {
			t.Fatalf("stream %d stopped while /health was served: %v", i, err)
		}
	}
}

// TestClientGoneLeavesNoGoroutine opens streams, closes them from the client
// side, and waits until the server's goroutines are back to what they were
// but for the event loops that served the detached streams, at most one per
// P, which live until shutdown.
func TestClientGoneLeavesNoGoroutine(t *testing.T) {
	r := startRunner(t, nil, handler.WithInterval(50*time.Millisecond))
	before := runtime.NumGoroutine() + runtime.GOMAXPROCS(0)
	client := &http.Client{Transport: &http.Transport{}}
	var bodies []io.Closer
	for range 50 {
		resp, err := client.Get(r.url + "/events")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wiretest.ReadFrames(resp.Body, 1); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
	}
	if during := runtime.NumGoroutine(); during < before-runtime.GOMAXPROCS(0)+50 {
		t.Fatalf("%d goroutines with 50 streams open, %d before: the streams are not being served", during, before)
	}
	for _, b := range bodies {
		b.Close()
	}
	client.CloseIdleConnections()
	if err := waitForGoroutines(before, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitForGoroutines polls until at most n goroutines run, or fails after
// timeout with the stacks of those left.
func waitForGoroutines(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return fmt.Errorf("%d goroutines left, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// checkCleanEnds reads each stream to its end, which must be a proper one
// (the chunked terminator, so io.EOF) right after a whole event.
func checkCleanEnds(t *testing.T, streams []*http.Response) {
	t.Helper()
	for i, s := range streams {
		rest, err := io.ReadAll(s.Body)
		if err != nil {
			t.Fatalf("stream %d ended with %v, want a clean end", i, err)
		}
		if len(rest) > 0 && !bytes.HasSuffix(rest, []byte("\n\n")) {
			t.Fatalf("stream %d ended mid-event: %q", i, rest)
		}
	}
}

// TestShutdownEndsStreamsCleanly stops the runner with streams open: each
// client must see its response end properly (the chunked terminator, so
// io.EOF), on an event boundary, and the runner must return at once.
func TestShutdownEndsStreamsCleanly(t *testing.T) {
	r := startRunner(t, []string{"-grace", "10s"}, handler.WithInterval(20*time.Millisecond))
	streams := openStreams(t, r.url, 500)
	start := time.Now()
	if err := r.stop(); err != nil {
		t.Fatalf("run returned %v, want nil", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("shutdown took %v with 500 streams open, want well under the 10s grace", elapsed)
	}
	checkCleanEnds(t, streams)
	logs := r.logs.String()
	for _, msg := range []string{"msg=listening", "msg=\"shutting down\"", "msg=stopped"} {
		if !strings.Contains(logs, msg) {
			t.Errorf("logs lack %s:\n%s", msg, logs)
		}
	}
}

// TestSIGTERM builds the command and stops it with a real SIGTERM while 300
// streams are open: each must end on an event boundary with a properly
// ended response, and the process must exit well within the grace period.
func TestSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	bin := buildCommand(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-addr", addr, "-grace", "5s")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up\n%s", logs.String())
		}
	}
	streams := openStreams(t, "http://"+addr, 300)

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	checkCleanEnds(t, streams)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, logs.String())
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("exited %v after SIGTERM with 300 streams open, want well within the 5s grace", elapsed)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM\n%s", logs.String())
	}
}

// buildCommand builds the command into a temporary directory and returns
// the binary's path.
func buildCommand(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tickstream")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestLogsHaveNoClientAddresses checks the runner's own log lines and the
// redaction of net/http's error log.
func TestLogsHaveNoClientAddresses(t *testing.T) {
	var out bytes.Buffer
	w := redactingWriter{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))}
	for _, line := range []string{
		"http: TLS handshake error from 192.0.2.1:5678: EOF\n",
		"http: panic serving [2001:db8::1]:443: boom\n",
		"http: panic serving [fe80::1%eth0]:8080: boom\n",
		"http2: server: error reading preface from client 10.0.0.7:61000: timeout\n",
		"http: Accept error: too many open files; retrying in 5ms\n",
	} {
		fmt.Fprint(w, line)
	}
	want := `level=WARN msg="http: TLS handshake error from <client>: EOF"
level=WARN msg="http: panic serving <client>: boom"
level=WARN msg="http: panic serving <client>: boom"
level=WARN msg="http2: server: error reading preface from client <client>: timeout"
level=WARN msg="http: Accept error: too many open files; retrying in 5ms"
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("redacted log (-want +got):\n%s", diff)
	}

	r := startRunner(t, nil)
	resp, err := http.Get(r.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// The one loopback address in the logs is the listening one.
	if got := strings.Count(r.logs.String(), "127.0.0.1:"); got != 1 {
		t.Errorf("logs name %d loopback addresses, want only the listening one:\n%s", got, r.logs)
	}
}

func TestRunErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, func(string) string { return "" }, io.Discard)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("run on a busy address: %v, want EADDRINUSE", err)
	}
}
