//go:build linux

package main

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// highWater returns the peak resident memory of process pid so far, in
// KiB, or 0 once it has gone.
func highWater(pid int) int {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kib
		}
	}
	return 0
}

// TestPeakMemory runs the check, built as users run it, against servers
// that flood it (events at full speed on every stream, a line without
// end, gzip bombs), and bounds its peak resident memory, as the kernel
// counts it (VmHWM, the high-water mark of the process's memory after it
// started; getrusage would count the test binary's too, which the child
// shares until its exec): under 100 MiB whatever the server sends, in
// the battery and in stream mode.
func TestPeakMemory(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "check")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	frame := bytes.Repeat([]byte("data: {\"seq\":0,\"ts\":\"2000-01-01T00:00:00.000Z\"}\n\n"), 200)
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	line := bytes.Repeat([]byte("data: x\n"), 1<<10)
	for range 256 << 20 / len(line) {
		zw.Write(line)
	}
	zw.Close()
	floods := map[string]http.HandlerFunc{
		"events at full speed": func(w http.ResponseWriter, r *http.Request) {
			streamHead(w)
			for r.Context().Err() == nil {
				if _, err := w.Write(frame); err != nil {
					return
				}
			}
		},
		"a line without end": func(w http.ResponseWriter, r *http.Request) {
			streamHead(w)
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		},
		"gzip bombs": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			streamHead(w)
			w.Write(bomb.Bytes())
		},
	}
	modes := map[string]func(url string) []string{
		"battery": func(url string) []string { return []string{url} },
		"stream":  func(url string) []string { return []string{"-stream", url + "/stream"} },
	}
	for name, flood := range floods {
		for mode, args := range modes {
			t.Run(mode+", "+name, func(t *testing.T) {
				// Every stream probe floods; /health and /time answer as they should.
				url := floodAll(t, flood)
				cmd := exec.Command(bin, args(url)...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				peak := 0 // KiB
				for running := true; running; {
					select {
					case <-done:
						running = false
					case <-time.After(time.Millisecond):
						peak = max(peak, highWater(cmd.Process.Pid))
					}
				}
				if code := cmd.ProcessState.ExitCode(); code != 2 {
					t.Errorf("exit status %d, want 2: %s", code, out.Bytes())
				}
				t.Logf("%s: peak RSS %d KiB: %s", name, peak, bytes.TrimSpace(out.Bytes()))
				if peak > 100<<10 {
					t.Errorf("peak RSS %d KiB, want under 100 MiB", peak)
				}
			})
		}
	}
}
