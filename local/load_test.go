package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoad holds 3,000 concurrent /events?interval=100ms streams on one
// runner for 3 s. Every stream must keep receiving events, with consecutive
// ids, and once the clients leave, every goroutine the streams used must be
// gone. The interval keeps the load (30,000 events a second) within what two
// cores serve to a client on the same cores: a test that overloads them
// measures the scheduler instead, and new connections then wait longer than
// the read-header timeout. It is skipped with -short, and under the race detector, whose limit
// of 8128 goroutines 3,000 streams exceed (five goroutines each, counting
// both ends); make test runs it on its own without -race.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	if raceEnabled {
		t.Skip("load test skipped under the race detector: make test-load runs it")
	}
	const streams, interval, hold = 3000, 100 * time.Millisecond, 3 * time.Second
	before := runtime.NumGoroutine()
	r := startRunner(t, []string{"-max-streams", strconv.Itoa(streams)})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}

	ctx, cancel := context.WithCancel(context.Background())
	var (
		opened, events, gaps atomic.Int64
		holding              atomic.Bool  // the hold has begun
		starved              atomic.Int64 // streams with no event during the hold
		wg                   sync.WaitGroup
		firstErr             error
		errOnce              sync.Once
	)
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	dials := make(chan struct{}, 200) // at most 200 connections being opened at once
	for range streams {
		dials <- struct{}{}
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", r.url+"/events?interval="+interval.String(), nil)
			resp, err := client.Do(req)
			<-dials
			if err != nil {
				fail(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				fail(fmt.Errorf("status %s", resp.Status))
				return
			}
			opened.Add(1)
			br := bufio.NewReader(resp.Body)
			var last, duringHold int64
			for {
				// Whole lines only: the line being read when the client
				// leaves is cut short.
				line, err := br.ReadSlice('\n')
				if err != nil {
					if duringHold == 0 {
						starved.Add(1)
					}
					return
				}
				id, ok := bytes.CutPrefix(bytes.TrimSuffix(line, []byte("\n")), []byte("id: "))
				if !ok {
					continue
				}
				n, _ := strconv.ParseInt(string(id), 10, 64)
				if last != 0 && n != last+1 {
					gaps.Add(1)
				}
				last = n
				events.Add(1)
				if holding.Load() {
					duringHold++
				}
			}
		})
	}
	for deadline := time.Now().Add(30 * time.Second); opened.Load() < streams && firstErr == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d streams opened in 30s", opened.Load(), streams)
		}
	}
	held := events.Load()
	holding.Store(true)
	time.Sleep(hold)
	held = events.Load() - held
	cancel()
	wg.Wait()
	client.CloseIdleConnections()

	want := int64(streams) * int64(hold/interval)
	t.Logf("%d streams held for %v: %d events (%.0f%% of the %d scheduled), %d id gaps, %d streams starved",
		opened.Load(), hold, held, 100*float64(held)/float64(want), want, gaps.Load(), starved.Load())
	if firstErr != nil {
		t.Fatalf("opening streams: %v", firstErr)
	}
	if opened.Load() != streams || gaps.Load() != 0 || starved.Load() != 0 {
		t.Errorf("%d of %d streams held, %d gaps, %d streams without an event during the hold; want all held, no gap, none starved",
			opened.Load(), streams, gaps.Load(), starved.Load())
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if err := waitForGoroutines(before, 10*time.Second); err != nil {
		t.Error(err)
	}
}
