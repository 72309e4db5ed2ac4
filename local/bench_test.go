package main

import (
	"bufio"
	"net/http"
	"strconv"
	"testing"

	"github.com/tickstream/tickstream/handler"
)

// BenchmarkEventOverLoopback measures one event's cost end to end through
// the runner's http.Server on a loopback socket: the handler builds, writes
// and flushes the frame (one write syscall), and the client reads it. It
// uses /stream/fast with no delay so that timers do not set the pace.
func BenchmarkEventOverLoopback(b *testing.B) {
	r := startRunner(b, nil, handler.WithFastDelay(0))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	for left := b.N; left > 0; {
		n := min(left, 10_000 /* the most /stream/fast?count= takes */)
		resp, err := client.Get(r.url + "/stream/fast?delay=0s&count=" + strconv.Itoa(n))
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
		resp.Body.Close()
		left -= n
	}
}
