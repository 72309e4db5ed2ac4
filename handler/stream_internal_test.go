package handler

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// discardWriter is the cheapest ResponseWriter that can flush and set write
// deadlines, so the benchmarks below measure tickstream's own work per event.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header              { return d.header }
func (d *discardWriter) WriteHeader(int)                  {}
func (d *discardWriter) Write(b []byte) (int, error)      { return len(b), nil }
func (d *discardWriter) FlushError() error                { return nil }
func (d *discardWriter) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkTick measures what /events does for each event: build the frame
// in the stream's buffer, set the write deadline, write it and flush it.
func BenchmarkTick(b *testing.B) {
	benchmarkTick(b, New().newStream(&discardWriter{header: http.Header{}}, streamPace{period: time.Second, maxFrame: 256}))
}

func benchmarkTick(b *testing.B, s *stream) {
	now := time.Now()
	b.ReportAllocs()
	id := int64(1_000_000)
	for b.Loop() {
		s.buf = appendTick(s.buf[:0], 0, id, now, 0)
		if err := s.send(); err != nil {
			b.Fatal(err)
		}
		id++
	}
}

// BenchmarkFast measures the same for one /stream/fast event.
func BenchmarkFast(b *testing.B) {
	s := New().newStream(&discardWriter{header: http.Header{}}, streamPace{period: time.Second, maxFrame: 256})
	now := time.Now()
	b.ReportAllocs()
	seq := int64(0)
	for b.Loop() {
		s.buf = appendFast(s.buf[:0], seq%100, now, 0)
		if err := s.send(); err != nil {
			b.Fatal(err)
		}
		seq++
	}
}

// discardConn is a connection that takes every write.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) Close() error                     { return nil }

// BenchmarkTickDetached measures /events per event on a detached stream:
// build the frame, frame it as a chunk, set the write deadline, write it.
func BenchmarkTickDetached(b *testing.B) {
	s := New().newStream(&discardWriter{header: http.Header{}}, streamPace{period: time.Second, maxFrame: 256})
	s.conn, s.out = discardConn{}, make([]byte, 0, 512)
	benchmarkTick(b, s)
}

func TestParseLastEventID(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true}, {"0", 0, true}, {"9007199254740990", 9007199254740990, true},
		{"9007199254740991", 0, false}, {"", 0, false}, {"1.5", 0, false}, {"１", 0, false},
		{"+1", 0, false}, {" 1", 0, false}, {"0x1", 0, false}, {"99999999999999999999", 0, false},
	} {
		got, ok := parseLastEventID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseLastEventID(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
