package handler

import (
	"net/http"
	"testing"
	"time"
)

// discardFlusher is the cheapest ResponseWriter that can flush, so the
// benchmarks below measure tickstream's own work per event.
type discardFlusher struct{ header http.Header }

func (d *discardFlusher) Header() http.Header         { return d.header }
func (d *discardFlusher) WriteHeader(int)             {}
func (d *discardFlusher) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardFlusher) Flush()                      {}

// BenchmarkTick measures what /events does for each event: build the frame
// in the stream's buffer, write it and flush it.
func BenchmarkTick(b *testing.B) {
	s := newStream(&discardFlusher{header: http.Header{}})
	now := time.Now()
	b.ReportAllocs()
	id := int64(1_000_000)
	for b.Loop() {
		s.buf = appendTick(s.buf[:0], 0, id, now)
		if err := s.send(); err != nil {
			b.Fatal(err)
		}
		id++
	}
}

// BenchmarkFast measures the same for one /stream/fast event.
func BenchmarkFast(b *testing.B) {
	s := newStream(&discardFlusher{header: http.Header{}})
	now := time.Now()
	b.ReportAllocs()
	seq := 0
	for b.Loop() {
		s.buf = appendFast(s.buf[:0], seq%100, now)
		if err := s.send(); err != nil {
			b.Fatal(err)
		}
		seq++
	}
}
