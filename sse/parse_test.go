package sse_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/sse"
)

// blocks returns every block p reads, and its error.
func blocks(p *sse.Parser) ([]sse.Block, error) {
	var got []sse.Block
	for {
		b, ok := p.Next()
		if !ok {
			return got, p.Err()
		}
		got = append(got, b)
	}
}

// TestParserBlocks reads streams as the WHATWG rules say a browser does,
// each block with the offset just past its blank line.
func TestParserBlocks(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []sse.Block
	}{
		{"one event", "id: 1\nevent: tick\ndata: {}\n\n", []sse.Block{
			{Event: sse.Event{ID: "1", Type: "tick", Data: "{}"}, Dispatched: true, End: 28},
		}},
		{"CRLF and CR line ends", "data: a\r\ndata: b\r\r\ndata: c\r\r", []sse.Block{
			{Event: sse.Event{Data: "a\nb"}, Dispatched: true, End: 19},
			{Event: sse.Event{Data: "c"}, Dispatched: true, End: 28},
		}},
		{"a leading byte order mark is dropped", "\uFEFFdata: x\n\n", []sse.Block{
			{Event: sse.Event{Data: "x"}, Dispatched: true, End: 12},
		}},
		{"the id persists, a NUL id is ignored, comments and retry", ": hi\nid: 7\nretry: 250\ndata: a\n\nid: 8\x00\ndata: b\n\n: beat\n\n", []sse.Block{
			{Event: sse.Event{Comment: "hi", ID: "7", Retry: 250 * time.Millisecond, Data: "a"}, Dispatched: true, End: 31},
			{Event: sse.Event{ID: "7", Data: "b"}, Dispatched: true, End: 47},
			{Event: sse.Event{ID: "7", Comment: "beat"}, End: 55},
		}},
		{"a block without data is not dispatched and loses its type", "event: x\n\n", []sse.Block{
			{Event: sse.Event{}, End: 10},
		}},
		{"an unfinished block is not returned", "data: a\n\ndata: b\n", []sse.Block{
			{Event: sse.Event{Data: "a"}, Dispatched: true, End: 9},
		}},
		{"invalid UTF-8 becomes U+FFFD, a field without colon is its name", "data\ndata:\xff\xfe\n\n", []sse.Block{
			{Event: sse.Event{Data: "\n\uFFFD"}, Dispatched: true, End: 14},
		}},
		{"the OpenAI stream's end", "data: {\"choices\":[]}\n\ndata: [DONE]\n\n", []sse.Block{
			{Event: sse.Event{Data: `{"choices":[]}`}, Dispatched: true, End: 22},
			{Event: sse.Event{Data: "[DONE]"}, Dispatched: true, End: 36},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := blocks(sse.NewParser([]byte(tt.stream)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("blocks (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParserMaxLine stops at a line longer than MaxLine, finished or not,
// after returning the blocks before it.
func TestParserMaxLine(t *testing.T) {
	for _, tail := range []string{"\n\n", ""} {
		p := sse.NewParser([]byte("data: a\n\ndata: " + strings.Repeat("x", 100) + tail))
		p.MaxLine = 64
		got, err := blocks(p)
		want := []sse.Block{{Event: sse.Event{Data: "a"}, Dispatched: true, End: 9}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tail %q: blocks (-want +got):\n%s", tail, diff)
		}
		if !errors.Is(err, sse.ErrLineTooLong) {
			t.Errorf("tail %q: error %v, want ErrLineTooLong", tail, err)
		}
	}
}

// TestParserReadsWhatAppendEventWrites: every block of an encoded stream
// comes back with its offset at the end of its frame.
func TestParserReadsWhatAppendEventWrites(t *testing.T) {
	evs := []sse.Event{
		{ID: "1", Type: "tick", Data: "line one\r\nline two\rthree"},
		{Comment: "keep\nalive", Data: ""},
		{ID: "2", Retry: time.Second, Data: "  spaced"},
	}
	var stream []byte
	var want []sse.Block
	for _, ev := range evs {
		var err error
		if stream, err = sse.AppendEvent(stream, ev); err != nil {
			t.Fatal(err)
		}
		ev.Data = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(ev.Data)
		if ev.ID == "" {
			ev.ID = want[len(want)-1].Event.ID
		}
		want = append(want, sse.Block{Event: ev, Dispatched: true, End: len(stream)})
	}
	got, err := blocks(sse.NewParser(stream))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
}

// FuzzParser reads any bytes, as a check reads what a hostile server
// sends: it never panics, each block's offset is past the one before and
// within the stream, every value it returns is valid UTF-8, and a block is
// whole at its offset: the stream cut there reads back as the same blocks.
func FuzzParser(f *testing.F) {
	f.Add([]byte("id: 1\nevent: tick\ndata: {}\n\n"), 0)
	f.Add([]byte("\uFEFFdata: a\r\ndata: b\r\r: c\n\nretry: 10\nid: \x00\n\n"), 0)
	f.Add([]byte("data: [DONE]\n\ndata: unfinished"), 8)
	f.Add([]byte("data:\xff\xfe\r\n\r\n"), 3)
	f.Fuzz(func(t *testing.T, stream []byte, maxLine int) {
		p := sse.NewParser(stream)
		p.MaxLine = maxLine % 64
		got, err := blocks(p)
		if err != nil && !errors.Is(err, sse.ErrLineTooLong) {
			t.Fatalf("error %v", err)
		}
		prev := 0
		for i, b := range got {
			if b.End <= prev || b.End > len(stream) {
				t.Fatalf("block %d ends at %d, after %d, in %d bytes", i, b.End, prev, len(stream))
			}
			prev = b.End
			for _, v := range []string{b.Event.Comment, b.Event.ID, b.Event.Type, b.Event.Data} {
				if !utf8.ValidString(v) {
					t.Fatalf("block %d: %q is not valid UTF-8", i, v)
				}
			}
			cut := sse.NewParser(stream[:b.End])
			cut.MaxLine = p.MaxLine
			again, _ := blocks(cut)
			if diff := cmp.Diff(got[:i+1], again); diff != "" {
				t.Fatalf("the stream cut after block %d reads back otherwise (-whole +cut):\n%s", i, diff)
			}
		}
	})
}
