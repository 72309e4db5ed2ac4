package main

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestTickIsTickstreams: the floor writes the bytes of tickstream's /events
// frames (events.golden's second, which has no retry line), each as one
// chunk, so that the load tool reads both alike.
func TestTickIsTickstreams(t *testing.T) {
	golden, err := os.ReadFile("../../handler/testdata/events.golden")
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(golden, []byte("id: 2\n"))
	end := bytes.Index(golden[start:], []byte("\n\n"))
	if start < 0 || end < 0 {
		t.Fatal("no event with id 2 in events.golden")
	}
	frame := golden[start : start+end+2]
	want := strconv.AppendInt(nil, int64(len(frame)), 16)
	want = append(append(append(want, "\r\n"...), frame...), "\r\n"...)
	got := appendTick(nil, 2, time.Date(2000, 1, 1, 0, 0, 1, 0, time.UTC))
	if !bytes.Equal(got, want) {
		t.Errorf("appendTick = %q, want %q", got, want)
	}
}
