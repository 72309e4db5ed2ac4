//go:build linux

package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cpuTime returns the CPU time process pid has used, all its threads,
// to the nanosecond (/proc/PID/task/*/schedstat's first field).
func cpuTime(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		tb.Fatalf("reading the CPU time of process %d: %v", pid, err)
	}
	var total time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // a thread that ended
		}
		ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		if err != nil {
			tb.Fatalf("%s: %v", task, err)
		}
		total += time.Duration(ns)
	}
	return total
}

// readEvents reads the stream at url to its end and returns how many
// events ("id:" lines) it had.
func readEvents(url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return strings.Count(string(b), "id: "), err
}

// benchLoad is one workload of BenchmarkEdgeCPU: streams at once of
// target, each read to its end.
type benchLoad struct {
	name    string
	streams int
	target  string
}

var benchLoads = []benchLoad{
	{"one /stream/fast", 1, "/stream/fast"},
	{"200 streams at 10 events a second for 10s", 200, "/events?interval=100ms&count=100"},
}

// BenchmarkEdgeCPU measures the CPU a stream's events cost each runtime
// (its process's CPU time over the events it served, warm), tickstream's
// WebAssembly build against the floor, a plain JavaScript worker that
// writes the same frames from JavaScript timers (floor.mjs):
//
//	go test -run '^$' -bench EdgeCPU -benchtime 5x ./edge
//
// Each workload is run once on each process unmeasured, to warm it (V8
// compiles the code a workload runs most, WebAssembly and JavaScript, on
// background threads as it runs, once), then b.N times measured, the two
// interleaved in turns ABBA; the metric µs/event is the CPU over the
// events, and ×floor the ratio.
func BenchmarkEdgeCPU(b *testing.B) {
	build(b)
	for _, rt := range runtimes {
		ts := serve(b, rt, release, nil)
		floor := serveFloor(b, rt, release)
		for _, load := range benchLoads {
			b.Run(rt+"/"+load.name, func(b *testing.B) {
				var cpu [2]time.Duration
				var events [2]int
				for _, s := range []*server{ts, floor} { // warm, unmeasured
					if _, err := readAll(s.url+load.target, load.streams); err != nil {
						b.Fatal(err)
					}
				}
				for round := 0; b.Loop(); round++ {
					// Interleaved, in turns ABBA: the box's speed drifts
					// (it is shared), and a drift over two rounds then
					// weighs on both alike.
					for turn := range 2 {
						i := turn ^ (round & 1) // 0 is tickstream, 1 the floor
						s := []*server{ts, floor}[i]
						before := cpuTime(b, s.pid)
						n, err := readAll(s.url+load.target, load.streams)
						if err != nil {
							b.Fatal(err)
						}
						cpu[i] += cpuTime(b, s.pid) - before
						events[i] += n
					}
				}
				per := func(i int) float64 { return float64(cpu[i].Microseconds()) / float64(max(events[i], 1)) }
				b.ReportMetric(per(0), "µs/event")
				b.ReportMetric(per(1), "floor-µs/event")
				b.ReportMetric(per(0)/per(1), "×floor")
			})
		}
	}
}

// readAll reads n streams of url at once, each to its end, and returns how
// many events they had.
func readAll(url string, n int) (int, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		first error
	)
	for range n {
		wg.Go(func() {
			got, err := readEvents(url)
			mu.Lock()
			defer mu.Unlock()
			total += got
			if err != nil && first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	return total, first
}
