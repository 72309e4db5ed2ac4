package main

import (
	"bufio"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/proxytest"
)

// arrivals requests url and returns when each event arrived, counted from
// the request.
func arrivals(t *testing.T, url string) []time.Duration {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var at []time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			at = append(at, time.Since(start))
		}
	}
	return at
}

// TestNginxRelaysEventsUnbuffered runs nginx with docs/nginx-sse.conf in
// front of the runner: 20 events 100 ms apart must arrive spread over about
// 2 s, not in one batch at the end. As a control, nginx with nothing but
// proxy_pass (HTTP/1.0 upstream, buffering on) holds /stream/fast, which,
// like many SSE servers, sends no X-Accel-Buffering header, until it ends,
// but relays /events, which does, as it comes.
func TestNginxRelaysEventsUnbuffered(t *testing.T) {
	r := startRunner(t, nil)
	upstream := strings.TrimPrefix(r.url, "http://")
	snippet, err := os.ReadFile("../docs/nginx-sse.conf")
	if err != nil {
		t.Fatal(err)
	}
	spread := func(at []time.Duration) time.Duration { return at[len(at)-1] - at[0] }

	relaying := proxytest.Nginx(t, upstream, string(snippet))
	at := arrivals(t, relaying+"/stream/fast?count=20&delay=100ms")
	if len(at) != 21 || at[0] > time.Second || spread(at) < 1500*time.Millisecond {
		t.Errorf("through docs/nginx-sse.conf: %d events arrived at %v; want 21 spread over about 2s", len(at), at)
	}

	buffering := proxytest.Nginx(t, upstream, `location / { proxy_pass http://tickstream; }`)
	at = arrivals(t, buffering+"/stream/fast?count=20&delay=100ms")
	if len(at) != 21 || spread(at) > 200*time.Millisecond {
		t.Errorf("through buffering nginx, /stream/fast: events arrived at %v; want them in one batch", at)
	}
	at = arrivals(t, buffering+"/events?count=20&interval=100ms")
	if len(at) != 20 || spread(at) < 1500*time.Millisecond {
		t.Errorf("through buffering nginx, /events (X-Accel-Buffering: no): events arrived at %v; want them spread", at)
	}
}
