package main

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
)

// flushWriter is a compressor that can flush its output so far.
type flushWriter interface {
	io.WriteCloser
	Flush() error
}

// compressors make each of the encodings the check reads, as servers and
// proxies write them.
var compressors = []struct {
	encoding string
	new      func(w io.Writer) flushWriter
}{
	{"gzip", func(w io.Writer) flushWriter { return gzip.NewWriter(w) }},
	{"deflate", func(w io.Writer) flushWriter { return zlib.NewWriter(w) }},
	{"deflate", func(w io.Writer) flushWriter { fw, _ := flate.NewWriter(w, flate.DefaultCompression); return fw }}, // raw, as some servers send it
	{"br", func(w io.Writer) flushWriter { return brotli.NewWriter(w) }},
	{"zstd", func(w io.Writer) flushWriter { zw, _ := zstd.NewWriter(w); return zw }},
}

// burst returns n /stream/fast frames and their bytes' ends.
func burst(n int) ([][]byte, []int) {
	frames := make([][]byte, n)
	ends := make([]int, n)
	total := 0
	for i := range frames {
		frames[i] = fmt.Appendf(nil, "id: %d\ndata: {\"seq\":%d,\"ts\":\"2000-01-01T00:00:%02d.000Z\"}\n\n", i, i, i)
		total += len(frames[i])
		ends[i] = total
	}
	return frames, ends
}

// feed makes the capture of a body whose bytes arrive as pieces say: piece
// k, a few bytes at a time (3, one microsecond apart), starting at at[k].
func feed(pieces [][]byte, at []time.Duration) capture {
	var c capture
	for k, p := range pieces {
		for i := 0; i < len(p); i += 3 {
			c.raw = append(c.raw, p[i:min(i+3, len(p))]...)
			t := at[k] + time.Duration(i/3)*time.Microsecond
			if n := len(c.marks); n > 0 && t-c.marks[n-1].at < markResolution {
				c.marks[n-1].end = len(c.raw)
			} else {
				c.marks = append(c.marks, mark{end: len(c.raw), at: t})
			}
		}
	}
	c.ended, c.endAt = true, at[len(at)-1]
	return c
}

// arrivalsOf decodes and times c as the check does.
func arrivalsOf(t *testing.T, encoding string, c capture) []time.Duration {
	t.Helper()
	d, err := newDecoder(encoding)
	if err != nil {
		t.Fatal(err)
	}
	text, err := decodeAll(d, c)
	if err != nil {
		t.Fatal(err)
	}
	events, _, err := parseEvents(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := timeEvents(events, c, d); err != nil {
		t.Fatal(err)
	}
	got := make([]time.Duration, len(events))
	for i, e := range events {
		got[i] = e.at
	}
	return got
}

// TestCompressedEventsTimed feeds real compressed streams of every encoding
// a few bytes at a time and checks the instant each event comes out, as a
// browser's decoder yields it: at once when the compressor flushes every
// event, one gap late when it keeps each event's output until the next
// event comes (HAProxy's compression does so), and all at the end when it
// holds everything.
func TestCompressedEventsTimed(t *testing.T) {
	const n, gap = 8, 250 * ms
	frames, _ := burst(n)
	sendTimes := make([]time.Duration, n)
	for i := range sendTimes {
		sendTimes[i] = time.Duration(i) * gap
	}
	for _, cz := range compressors {
		// flushed: the compressed bytes of frame i, up to its flush.
		var out bytes.Buffer
		w := cz.new(&out)
		var pieces [][]byte
		prev := 0
		for _, f := range frames {
			w.Write(f)
			w.Flush()
			pieces = append(pieces, bytes.Clone(out.Bytes()[prev:]))
			prev = out.Len()
		}
		w.Close()
		pieces[n-1] = append(pieces[n-1], out.Bytes()[prev:]...)

		t.Run(cz.encoding+"/flushed per event", func(t *testing.T) {
			got := arrivalsOf(t, cz.encoding, feed(pieces, sendTimes))
			if diff := cmp.Diff(sendTimes, got); diff != "" {
				t.Errorf("arrivals (-sent +got):\n%s", diff)
			}
		})
		t.Run(cz.encoding+"/tail held", func(t *testing.T) {
			// Frame i's bytes leave when frame i+1 is written, the last
			// one's with the end.
			late := make([]time.Duration, n)
			for i := range late {
				late[i] = sendTimes[i] + gap
			}
			got := arrivalsOf(t, cz.encoding, feed(pieces, late))
			if diff := cmp.Diff(late, got); diff != "" {
				t.Errorf("arrivals (-one gap late +got):\n%s", diff)
			}
		})
		t.Run(cz.encoding+"/held to the end", func(t *testing.T) {
			all := bytes.Join(pieces, nil)
			end := time.Duration(n) * gap
			got := arrivalsOf(t, cz.encoding, feed([][]byte{all}, []time.Duration{end}))
			// All arrive at the end, within the microseconds the bytes take.
			for i := range got {
				if got[i] < end || got[i] > end+time.Millisecond {
					t.Errorf("event %d at %v, want at the end, %v", i, got[i], end)
				}
			}
		})
	}
}

// TestDecoderYieldsMidBlock: a compressor that never flushes writes one
// long block, which Go's own gzip reader yields only when the block ends
// (or its window fills); browsers' zlib yields each event as its bits
// arrive. Fed such a stream 64 bytes a millisecond, the check sees events
// come out all along it, not at its end.
func TestDecoderYieldsMidBlock(t *testing.T) {
	frames, _ := burst(60)
	for _, enc := range []string{"gzip", "br"} {
		var out bytes.Buffer
		var w flushWriter
		if enc == "gzip" {
			w = gzip.NewWriter(&out)
		} else {
			w = brotli.NewWriter(&out)
		}
		for _, f := range frames {
			w.Write(f)
		}
		w.Close()
		var pieces [][]byte
		var at []time.Duration
		for i := 0; i < out.Len(); i += 64 {
			pieces = append(pieces, out.Bytes()[i:min(i+64, out.Len())])
			at = append(at, time.Duration(len(at))*ms)
		}
		got := arrivalsOf(t, enc, feed(pieces, at))
		end := at[len(at)-1]
		early := 0
		for _, a := range got {
			if a < end {
				early++
			}
		}
		if early < len(got)/2 || len(pieces) < 4 {
			t.Errorf("%s: %d of %d events out before the last of %d pieces (%v); want most: %v", enc, early, len(got), len(pieces), end, got)
		}
	}
}

// TestDecodingBounded: a body that decodes past the limit (a gzip bomb)
// and a corrupt one are errors that say so, not verdicts.
func TestDecodingBounded(t *testing.T) {
	var bomb bytes.Buffer
	w := gzip.NewWriter(&bomb)
	w.Write(bytes.Repeat([]byte("data: x\n\n"), (maxDecodedBytes/9)+1000))
	w.Close()
	d, _ := newDecoder("gzip")
	_, err := decodeAll(d, capture{raw: bomb.Bytes(), ended: true})
	if err == nil || err.Error() != "sent a body that decodes to more than 1024 KiB" {
		t.Errorf("bomb of %d bytes: %v", bomb.Len(), err)
	}
	corrupt := append(bytes.Clone(bomb.Bytes()[:10]), "not deflate at all"...)
	if _, err := decodeAll(d, capture{raw: corrupt, ended: true}); err == nil {
		t.Errorf("corrupt gzip decoded without an error")
	}
	if _, err := newDecoder("gzip, br"); err == nil || err.Error() != `Content-Encoding "gzip, br" is not one this check decodes (gzip, deflate, br, zstd)` {
		t.Errorf("stacked encodings: %v", err)
	}
}

// TestParseEventsBounded: lines, events and framing as the WHATWG rules
// read them, up to the limits.
func TestParseEventsBounded(t *testing.T) {
	got, _, err := parseEvents([]byte("\uFEFFid: 1\r\ndata: a\rdata: b\n\n: comment\n\nid: 2\nevent: done\ndata: complete\r\n\r\nid: 3\ndata: unfinished"))
	want := []event{{id: "1", data: "a\nb", end: 27}, {id: "2", typ: "done", data: "complete", end: 74}}
	if err != nil || !cmp.Equal(want, got, cmp.AllowUnexported(event{})) {
		t.Errorf("parseEvents: %v, %s", err, cmp.Diff(want, got, cmp.AllowUnexported(event{})))
	}
	if _, _, err := parseEvents(bytes.Repeat([]byte("x"), maxLineBytes+1)); err == nil || err.Error() != "sent a line of more than 64 KiB" {
		t.Errorf("a long line: %v", err)
	}
	if _, _, err := parseEvents(bytes.Repeat([]byte("data: x\n\n"), maxEvents+1)); err == nil || err.Error() != "sent more than 10000 events" {
		t.Errorf("too many events: %v", err)
	}
}

// readTrace reads a trace recorded through a real proxy (testdata/*.trace):
// each line is when a read of the raw body ended (ms from the request), the
// wall clock, its size and its bytes in hex; # lines are comments.
func readTrace(t *testing.T, file string) capture {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var pieces [][]byte
	var at []time.Duration
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var msec float64
		var wall, hexBytes string
		var n int
		if _, err := fmt.Sscan(line, &msec, &wall, &n, &hexBytes); err != nil {
			t.Fatalf("%s: %q: %v", file, line, err)
		}
		p, err := hex.DecodeString(hexBytes)
		if err != nil || len(p) != n {
			t.Fatalf("%s: %q: %d bytes, %v", file, line, len(p), err)
		}
		pieces = append(pieces, p)
		at = append(at, time.Duration(msec*float64(time.Millisecond)))
	}
	var c capture
	for i, p := range pieces {
		c.raw = append(c.raw, p...)
		c.marks = append(c.marks, mark{end: len(c.raw), at: at[i]})
	}
	c.ended, c.endAt = true, at[len(at)-1]
	return c
}

// TestRealProxyTraces times the gzip bodies of /events at one event a
// second, recorded through Debian's proxies: HAProxy's compression keeps
// each event's last line break until the next event comes, so a browser
// (and this check) gets each event a second late, the last with the end;
// nginx's, unbuffered, flushes every event. Go's own gzip reader yields the
// HAProxy body only at its end.
func TestRealProxyTraces(t *testing.T) {
	at := func(msecs ...float64) []time.Duration {
		out := make([]time.Duration, len(msecs))
		for i, m := range msecs {
			out[i] = time.Duration(m * float64(time.Millisecond))
		}
		return out
	}
	for _, tt := range []struct {
		file string
		want []time.Duration
	}{
		{"testdata/haproxy-gzip.trace", at(1007.383, 2005.223, 3004.753, 4005.146, 4005.146)},
		{"testdata/nginx-gzip.trace", at(1.456, 1002.099, 2001.127)},
	} {
		got := arrivalsOf(t, "gzip", readTrace(t, tt.file))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: arrivals (-want +got):\n%s", tt.file, diff)
		}
	}
	// What a check built on compress/gzip would have seen.
	c := readTrace(t, "testdata/haproxy-gzip.trace")
	reads := &pieceReader{c: c}
	zr, err := gzip.NewReader(reads)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := zr.Read(make([]byte, 4096)); n == 0 || reads.next != len(c.marks) {
		t.Errorf("compress/gzip yielded %d bytes first after piece %d of %d; this test says it waits for the last", n, reads.next, len(c.marks))
	}
}

// pieceReader reads a capture one mark's bytes at a time.
type pieceReader struct {
	c    capture
	next int // the mark whose bytes the next Read returns
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if r.next == len(r.c.marks) {
		return 0, io.EOF
	}
	start := 0
	if r.next > 0 {
		start = r.c.marks[r.next-1].end
	}
	n := copy(p, r.c.raw[start:r.c.marks[r.next].end])
	if start+n == r.c.marks[r.next].end {
		r.next++
	}
	return n, nil
}
