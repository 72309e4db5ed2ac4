package wiretest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/sse"
)

// TestParse checks the parser against the rules of the WHATWG "Server-sent
// events" section that the encoder's tests rely on.
func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []Block
	}{
		{"LF lines", "data: a\n\n", []Block{{sse.Event{Data: "a"}, true}}},
		{"CRLF lines", "data: a\r\n\r\n", []Block{{sse.Event{Data: "a"}, true}}},
		{"CR lines", "data: a\r\rdata: b\r\r", []Block{{sse.Event{Data: "a"}, true}, {sse.Event{Data: "b"}, true}}},
		{"leading BOM dropped once", "\uFEFFdata: a\n\n", []Block{{sse.Event{Data: "a"}, true}}},
		{"one space stripped", "data:  a\n\n", []Block{{sse.Event{Data: " a"}, true}}},
		{"no space", "data:a\n\n", []Block{{sse.Event{Data: "a"}, true}}},
		{"field without colon", "data\n\n", []Block{{sse.Event{}, true}}},
		{"data lines joined", "data: a\ndata: b\n\n", []Block{{sse.Event{Data: "a\nb"}, true}}},
		{"no data: not dispatched", "event: x\n\n", []Block{{sse.Event{}, false}}},
		{"comment", ": hi\n\n", []Block{{sse.Event{Comment: "hi"}, false}}},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\n", []Block{{sse.Event{ID: "1", Data: "a"}, true}, {sse.Event{ID: "1", Data: "b"}, true}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []Block{{sse.Event{ID: "1", Data: "a"}, true}, {sse.Event{ID: "1", Data: "b"}, true}}},
		{"empty id resets", "id: 1\n\nid\ndata: a\n\n", []Block{{sse.Event{ID: "1"}, false}, {sse.Event{Data: "a"}, true}}},
		{"retry digits", "retry: 1500\ndata: a\n\n", []Block{{sse.Event{Retry: 1500 * time.Millisecond, Data: "a"}, true}}},
		{"retry not digits ignored", "retry: 1.5\ndata: a\n\n", []Block{{sse.Event{Data: "a"}, true}}},
		{"unknown field ignored", "foo: bar\ndata: a\n\n", []Block{{sse.Event{Data: "a"}, true}}},
		{"unfinished event discarded", "data: a\n\ndata: b\n", []Block{{sse.Event{Data: "a"}, true}}},
		{"invalid UTF-8 replaced", "data: \xff\n\n", []Block{{sse.Event{Data: "\uFFFD"}, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Parse([]byte(tt.stream))); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.stream, diff)
			}
		})
	}
}

func TestReadFrames(t *testing.T) {
	stream := "data: 1\n\n: c\n\ndata: 3\n\ndata: 4\n\n"
	got, err := ReadFrames(strings.NewReader(stream), 3)
	if err != nil || string(got) != "data: 1\n\n: c\n\ndata: 3\n\n" {
		t.Errorf("ReadFrames(3) = %q, %v", got, err)
	}
	if _, err := ReadFrames(strings.NewReader("data: 1\n\n"), 2); err == nil {
		t.Error("ReadFrames past the end: no error")
	}
}

func TestDump(t *testing.T) {
	h := http.Header{"Content-Type": {"text/event-stream"}, "Date": {"today"}, "Cache-Control": {"no-cache"}}
	want := "200 OK\nCache-Control: no-cache\nContent-Type: text/event-stream\n\nbody"
	if diff := cmp.Diff(want, string(Dump(200, h, []byte("body")))); diff != "" {
		t.Errorf("Dump (-want +got):\n%s", diff)
	}
}
