package main

import (
	"io"
	"net/http"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/wiretest"
)

// heapHeld returns the heap the process holds from the operating system:
// its objects, live or garbage not yet collected, and what is free but not
// yet returned.
func heapHeld() uint64 {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(samples)
	return samples[0].Value.Uint64() + samples[1].Value.Uint64()
}

// TestBigStreamsGiveMemoryBack: 24 clients of 1 MiB events (at least 24 MiB
// of buffers: each stream's frame) leave; within a few seconds the runner has collected their
// buffers and given the memory back, where Go's runtime left to itself
// would hold it for minutes (no allocation starts a collection). The
// streams are net/http's (-detach=false), which hold their buffers for as
// long as they last, as TLS streams do; a detached stream on an event loop
// holds a buffer only while its client is slow to take a frame.
func TestBigStreamsGiveMemoryBack(t *testing.T) {
	r := startRunner(t, []string{"-heartbeat", "0", "-detach=false"})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	var bodies []io.Closer
	for range 24 {
		resp, err := client.Get(r.url + "/events?size=1048576&interval=1h")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wiretest.ReadFrames(resp.Body, 1); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
	}
	during := heapHeld()
	if during < 24<<20 {
		t.Fatalf("%d MiB of heap with 24 streams of 1 MiB events open: they hold less than the test supposes", during>>20)
	}
	for _, b := range bodies {
		b.Close()
	}
	client.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for heapHeld() > during/3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d MiB of heap held 5 s after the clients left, %d MiB while they were there", heapHeld()>>20, during>>20)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
