package sse_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/internal/wiretest"
	"github.com/tickstream/tickstream/sse"
)

// TestAppendEventRoundTrip encodes each event, reads the frame back with a
// parser that follows the spec, and expects the same event, with line breaks
// in data and comments read back as LF, as the format defines.
func TestAppendEventRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ev   sse.Event
		want sse.Event // zero means: the same as ev
	}{
		{name: "data only", ev: sse.Event{Data: "hello"}},
		{name: "empty data", ev: sse.Event{}},
		{name: "all fields", ev: sse.Event{Comment: "note", Retry: 1500 * time.Millisecond, ID: "7", Type: "tick", Data: `{"a":1}`}},
		{name: "LF in data", ev: sse.Event{Data: "one\ntwo\nthree"}},
		{name: "CRLF in data", ev: sse.Event{Data: "one\r\ntwo"}, want: sse.Event{Data: "one\ntwo"}},
		{name: "lone CR in data", ev: sse.Event{Data: "one\rtwo"}, want: sse.Event{Data: "one\ntwo"}},
		{name: "CR at end of data", ev: sse.Event{Data: "one\r"}, want: sse.Event{Data: "one\n"}},
		{name: "LF CR is two breaks", ev: sse.Event{Data: "a\n\rb"}, want: sse.Event{Data: "a\n\nb"}},
		{name: "trailing newline", ev: sse.Event{Data: "line\n"}},
		{name: "only newlines", ev: sse.Event{Data: "\n\n"}},
		{name: "leading newline", ev: sse.Event{Data: "\nx"}},
		{name: "blank line inside data", ev: sse.Event{Data: "a\n\nb"}},
		{name: "leading space", ev: sse.Event{Data: " indented", ID: " 1", Type: " spaced"}},
		{name: "two leading spaces", ev: sse.Event{Data: "  two"}},
		{name: "colon in data", ev: sse.Event{Data: "key: value: more"}},
		{name: "data that looks like fields", ev: sse.Event{Data: "id: 9\nevent: fake\n\nretry: 1"}},
		{name: "colon first in data", ev: sse.Event{Data: ":not a comment"}},
		{name: "unicode", ev: sse.Event{ID: "é1", Type: "ünï", Data: "日本語 🚀 \u2028 end", Comment: "ça va"}},
		{name: "NUL in data", ev: sse.Event{Data: "a\x00b"}},
		{name: "NUL in event type", ev: sse.Event{Type: "a\x00b", Data: "x"}},
		{name: "BOM inside data", ev: sse.Event{Data: "\uFEFFx"}},
		{name: "multi-line comment", ev: sse.Event{Comment: "one\r\ntwo\rthree", Data: "x"}, want: sse.Event{Comment: "one\ntwo\nthree", Data: "x"}},
		{name: "retry rounds down to milliseconds", ev: sse.Event{Retry: 2500 * time.Microsecond, Data: "x"}, want: sse.Event{Retry: 2 * time.Millisecond, Data: "x"}},
		{name: "long data", ev: sse.Event{Data: string(make([]byte, 70000))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, err := sse.AppendEvent(nil, tt.ev)
			if err != nil {
				t.Fatalf("AppendEvent(%+v): %v", tt.ev, err)
			}
			want := tt.want
			if want == (sse.Event{}) {
				want = tt.ev
			}
			got := wiretest.Parse(frame)
			wantBlocks := []wiretest.Block{{Event: want, Dispatched: true}}
			if diff := cmp.Diff(wantBlocks, got); diff != "" {
				t.Errorf("frame %q read back differently (-want +got):\n%s", frame, diff)
			}
		})
	}
}

func TestAppendEventBytes(t *testing.T) {
	tests := []struct {
		name string
		ev   sse.Event
		want string
	}{
		{"tick", sse.Event{ID: "1", Type: "tick", Data: `{"id":1}`}, "id: 1\nevent: tick\ndata: {\"id\":1}\n\n"},
		{"done", sse.Event{Type: "done", Data: "complete"}, "event: done\ndata: complete\n\n"},
		{"empty data", sse.Event{}, "data:\n\n"},
		{"order of fields", sse.Event{Data: "d", Type: "t", ID: "i", Retry: time.Second, Comment: "c"}, ": c\nretry: 1000\nid: i\nevent: t\ndata: d\n\n"},
		{"split data", sse.Event{Data: "a\r\nb\rc\n"}, "data: a\ndata: b\ndata: c\ndata:\n\n"},
		{"empty comment line", sse.Event{Comment: "a\n\nb", Data: "x"}, ": a\n:\n: b\ndata: x\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sse.AppendEvent([]byte("prefix|"), tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff("prefix|"+tt.want, string(got)); diff != "" {
				t.Errorf("AppendEvent(%+v) (-want +got):\n%s", tt.ev, diff)
			}
		})
	}
}

func TestAppendEventRejects(t *testing.T) {
	tests := []struct {
		name string
		ev   sse.Event
	}{
		{"LF in id", sse.Event{ID: "1\nevent: evil", Data: "x"}},
		{"CR in id", sse.Event{ID: "1\r", Data: "x"}},
		{"NUL in id", sse.Event{ID: "1\x002", Data: "x"}},
		{"LF in event type", sse.Event{Type: "tick\ndata: injected", Data: "x"}},
		{"CR in event type", sse.Event{Type: "tick\r", Data: "x"}},
		{"negative retry", sse.Event{Retry: -time.Second, Data: "x"}},
		{"invalid UTF-8 in data", sse.Event{Data: "\xff\xfe"}},
		{"invalid UTF-8 in id", sse.Event{ID: "\xc3", Data: "x"}},
		{"invalid UTF-8 in comment", sse.Event{Comment: "\x80", Data: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("kept")
			got, err := sse.AppendEvent(dst, tt.ev)
			if !errors.Is(err, sse.ErrInvalidEvent) {
				t.Fatalf("AppendEvent(%+v) error = %v, want one wrapping ErrInvalidEvent", tt.ev, err)
			}
			if string(got) != "kept" {
				t.Errorf("AppendEvent(%+v) wrote %q on error, want dst unchanged", tt.ev, got)
			}
		})
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"keepalive", ": keepalive\n\n"},
		{"", ":\n\n"},
		{"a\r\nb", ": a\n: b\n\n"},
	}
	for _, tt := range tests {
		got, err := sse.AppendComment(nil, tt.text)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, string(got)); diff != "" {
			t.Errorf("AppendComment(%q) (-want +got):\n%s", tt.text, diff)
		}
		blocks := wiretest.Parse(got)
		if len(blocks) != 1 || blocks[0].Dispatched {
			t.Errorf("AppendComment(%q) parsed as %+v, want one block that dispatches nothing", tt.text, blocks)
		}
	}
	if _, err := sse.AppendComment(nil, "\xff"); !errors.Is(err, sse.ErrInvalidEvent) {
		t.Errorf("AppendComment(invalid UTF-8) error = %v, want ErrInvalidEvent", err)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	ev := sse.Event{
		ID:   "12345",
		Type: "tick",
		Data: `{"id":12345,"timestamp":"2000-01-01T00:00:00.000Z","message":"Event #12345"}`,
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = sse.AppendEvent(buf[:0], ev)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEventMultiline(b *testing.B) {
	ev := sse.Event{Type: "log", Data: "line one\nline two\r\nline three\rline four"}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = sse.AppendEvent(buf[:0], ev)
	}
}

func ExampleAppendEvent() {
	frame, err := sse.AppendEvent(nil, sse.Event{ID: "42", Type: "greeting", Data: "hello\nworld"})
	if err != nil {
		panic(err)
	}
	fmt.Print(string(frame))
	// Output:
	// id: 42
	// event: greeting
	// data: hello
	// data: world
}
