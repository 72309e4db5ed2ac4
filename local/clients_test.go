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

	"github.com/google/go-cmp/cmp"
	gosse "github.com/tmaxmax/go-sse"
)

// finishedStreams are what the reconnecting-client tests follow: two
// streams that end by themselves, short enough to take a second.
var finishedStreams = []string{"/events?count=3&interval=20ms", "/stream/fast?count=4&delay=20ms"}

// TestGoClientSeesFinishedStreamsOnce follows both finished streams with a
// real reconnecting client, tmaxmax/go-sse, which reconnects whenever a
// response ends (with Last-Event-ID). Each stream's events arrive once:
// the reconnection gets 204, and the client stops.
func TestGoClientSeesFinishedStreamsOnce(t *testing.T) {
	r := startRunner(t, nil)
	for _, target := range finishedStreams {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", r.url+target, nil)
		var mu sync.Mutex
		var got []string
		client := &gosse.Client{Backoff: gosse.Backoff{InitialInterval: 100 * time.Millisecond}}
		conn := client.NewConnection(req)
		conn.SubscribeToAll(func(ev gosse.Event) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%s %s", ev.LastEventID, ev.Type))
		})
		err := conn.Connect()
		cancel()
		want := map[string][]string{
			finishedStreams[0]: {"1 tick", "2 tick", "3 tick"},
			finishedStreams[1]: {"0 ", "1 ", "2 ", "3 ", "4 done"},
		}[target]
		if diff := cmp.Diff(want, got); diff != "" {
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
	type line struct {
		Source int
		Type   string `json:",omitempty"`
		ID     string `json:",omitempty"`
		Closed bool   `json:",omitempty"`
		Code   int    `json:",omitempty"`
	}
	got := map[int][]line{}
	for l := range strings.Lines(string(out)) {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got[v.Source] = append(got[v.Source], v)
	}
	want := map[int][]line{
		0: {{0, "tick", "1", false, 0}, {0, "tick", "2", false, 0}, {0, "tick", "3", false, 0}, {0, "", "", true, 204}},
		1: {{1, "message", "0", false, 0}, {1, "message", "1", false, 0}, {1, "message", "2", false, 0}, {1, "message", "3", false, 0},
			{1, "done", "4", false, 0}, {1, "", "", true, 204}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what the EventSources saw (-want +got):\n%s", diff)
	}
}
