package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/internal/browsertest"
	gosse "github.com/tmaxmax/go-sse"
)

// finishedStreams are what the reconnecting-client tests follow: streams
// that end by themselves within 2 s, the last with a heartbeat comment
// between its two events, which clients must not show as an event.
var finishedStreams = []string{
	"/events?count=3&interval=20ms",
	"/stream/fast?count=4&delay=20ms",
	"/events?count=2&interval=1500ms&heartbeat=1s",
}

// wantEvents are the events (last event id and type) that a client must see
// of each of finishedStreams, once each.
var wantEvents = [][]string{
	{"1 tick", "2 tick", "3 tick"},
	{"0 message", "1 message", "2 message", "3 message", "4 done"},
	{"1 tick", "2 tick"},
}

// TestGoClientSeesFinishedStreamsOnce follows both finished streams with a
// real reconnecting client, tmaxmax/go-sse, which reconnects whenever a
// response ends (with Last-Event-ID). Each stream's events arrive once:
// the reconnection gets 204, and the client stops.
func TestGoClientSeesFinishedStreamsOnce(t *testing.T) {
	r := startRunner(t, nil)
	for i, target := range finishedStreams {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", r.url+target, nil)
		var mu sync.Mutex
		var got []string
		client := &gosse.Client{Backoff: gosse.Backoff{InitialInterval: 100 * time.Millisecond}}
		conn := client.NewConnection(req)
		conn.SubscribeToAll(func(ev gosse.Event) {
			mu.Lock()
			defer mu.Unlock()
			typ := ev.Type
			if typ == "" {
				typ = "message" // the type EventSource gives an event without one
			}
			got = append(got, fmt.Sprintf("%s %s", ev.LastEventID, typ))
		})
		err := conn.Connect()
		cancel()
		if diff := cmp.Diff(wantEvents[i], got); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", target, diff)
		}
		// go-sse ends on the 204 with a validation error; a context error
		// would mean it was still reconnecting after 15 s.
		if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "204 No Content") {
			t.Errorf("%s: Connect returned %v, want it to stop at the 204", target, err)
		}
	}
}

// TestEventSourceSeesFinishedStreamsOnce does the same with the npm
// eventsource package (a WHATWG EventSource for Node.js, pinned in
// testdata/eventsource): each stream's events arrive once, and the source
// closes for good on the 204 of its reconnection.
func TestEventSourceSeesFinishedStreamsOnce(t *testing.T) {
	dir := filepath.Join("testdata", "eventsource")
	if out, err := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund").CombinedOutput(); err != nil {
		t.Fatalf("npm ci (Node.js and npm are needed): %v\n%s", err, out)
	}
	r := startRunner(t, nil)
	args := []string{filepath.Join(dir, "follow.mjs")}
	for _, target := range finishedStreams {
		args = append(args, r.url+target)
	}
	out, err := exec.Command("node", args...).Output()
	if err != nil {
		t.Fatalf("node follow.mjs: %v\n%s", err, out)
	}
	got := make([][]string, len(finishedStreams))
	for l := range strings.Lines(string(out)) {
		var v struct {
			Source   int
			Type, ID string
			Closed   bool
			Code     int
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.Source >= len(got) {
			t.Fatalf("line %q: %v", l, err)
		}
		if v.Closed {
			got[v.Source] = append(got[v.Source], fmt.Sprintf("closed on %d", v.Code))
		} else {
			got[v.Source] = append(got[v.Source], v.ID+" "+v.Type)
		}
	}
	if diff := cmp.Diff(withClosed(wantEvents, "closed on 204"), got); diff != "" {
		t.Errorf("what the EventSources saw (-want +got):\n%s", diff)
	}
}

// withClosed returns events with last appended to each stream's list.
func withClosed(events [][]string, last string) [][]string {
	out := make([][]string, len(events))
	for i, evs := range events {
		out[i] = append(append([]string(nil), evs...), last)
	}
	return out
}

// TestChromiumSeesFinishedStreamsOnce does the same with Chromium's own
// EventSource, on a page of the runner's origin: every event once, no
// heartbeat shown, and the source closed by the 204.
func TestChromiumSeesFinishedStreamsOnce(t *testing.T) {
	ctx, _ := browsertest.New(t)
	r := startRunner(t, nil)
	if err := chromedp.Do(ctx, chromedp.Navigate(r.url+"/health")); err != nil {
		t.Fatal(err)
	}
	urls, _ := json.Marshal(finishedStreams)
	follow := `window.seen = ` + string(urls) + `.map(() => []);
window.sourcesClosed = 0; // (window.closed is the window's own)
` + string(urls) + `.forEach((url, i) => {
  const es = new EventSource(url);
  const record = (ev) => window.seen[i].push(ev.lastEventId + " " + ev.type);
  for (const type of ["message", "tick", "done"]) es.addEventListener(type, record);
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) { window.seen[i].push("closed"); window.sourcesClosed++; }
  };
});`
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](follow)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(ctx, t, "every source closed", fmt.Sprintf("window.sourcesClosed === %d", len(finishedStreams)))
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`window.seen`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(withClosed(wantEvents, "closed"), got); diff != "" {
		t.Errorf("what Chromium's EventSources saw (-want +got):\n%s", diff)
	}
}
