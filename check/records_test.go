package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestFormatOf: the Content-Types streams are sent with, and how each
// divides into records.
func TestFormatOf(t *testing.T) {
	for ct, want := range map[string]format{
		"text/event-stream":                formatSSE,
		"text/event-stream; charset=utf-8": formatSSE,
		"application/x-ndjson":             formatNDJSON,
		"application/jsonl":                formatNDJSON,
		"text/plain; charset=utf-8":        formatText,
		"application/json":                 formatText,
		"":                                 formatText,
	} {
		if got := formatOf(ct); got != want {
			t.Errorf("formatOf(%q) = %q, want %q", ct, got, want)
		}
	}
}

// TestParseRecords reads each format's records with their ends and the
// bytes of an unfinished one after the last, from plain captures whose
// pieces arrive 100ms apart.
func TestParseRecords(t *testing.T) {
	at := []time.Duration{0, 100 * ms, 200 * ms}
	tests := []struct {
		name       string
		f          format
		pieces     []string
		want       []event
		unfinished int
	}{
		{"SSE, OpenAI's chunks and [DONE]", formatSSE,
			[]string{"data: {\"a\":1}\n\n", ": keep-alive\n\ndata: [DONE]\n\n", ""},
			[]event{{data: `{"a":1}`, end: 15, at: 0}, {data: "[DONE]", end: 43, at: 100 * ms}}, 0},
		{"SSE cut mid-event", formatSSE,
			[]string{"event: message\ndata: 1\n\n", "event: message\ndata: {\"res", ""},
			[]event{{typ: "message", data: "1", end: 24, at: 0}}, 26},
		{"NDJSON, Ollama's", formatNDJSON,
			[]string{"{\"response\":\"Hel\",\"done\":false}\n", "{\"response\":\"lo\",\"done\":false}\r\n\n", "{\"done\":true}\n"},
			[]event{{data: `{"response":"Hel","done":false}`, end: 32, at: 0}, {data: `{"response":"lo","done":false}`, end: 64, at: 100 * ms}, {data: `{"done":true}`, end: 79, at: 200 * ms}}, 0},
		{"NDJSON cut mid-line", formatNDJSON,
			[]string{"{\"n\":1}\n", "{\"n\":", ""},
			[]event{{data: `{"n":1}`, end: 8, at: 0}}, 5},
		{"text, a chunk a read", formatText,
			[]string{"Hello", ", wor", "ld"},
			[]event{{data: "Hello", end: 5, at: 0}, {data: ", wor", end: 10, at: 100 * ms}, {data: "ld", end: 12, at: 200 * ms}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pieces := make([][]byte, len(tt.pieces))
			for i, p := range tt.pieces {
				pieces[i] = []byte(p)
			}
			c := feed(pieces, at)
			got, unfinished, err := parseRecords(tt.f, c.raw, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(event{})); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if unfinished != tt.unfinished {
				t.Errorf("unfinished %d, want %d", unfinished, tt.unfinished)
			}
		})
	}
}

// TestTextChunksCompressed: a compressed text stream's chunks are what each
// read lets a browser's decoder yield, in every encoding, flushed a chunk
// at a time.
func TestTextChunksCompressed(t *testing.T) {
	chunks := []string{"The ", "quick ", "brown ", "fox"}
	at := []time.Duration{0, 100 * ms, 200 * ms, 300 * ms}
	for _, c := range compressors {
		t.Run(c.encoding, func(t *testing.T) {
			var body bytes.Buffer
			w := c.new(&body)
			var pieces [][]byte
			for i, s := range chunks {
				w.Write([]byte(s))
				if i == len(chunks)-1 {
					w.Close()
				} else {
					w.Flush()
				}
				pieces = append(pieces, bytes.Clone(body.Bytes()))
				body.Reset()
			}
			capt := feed(pieces, at)
			d, _ := newDecoder(c.encoding)
			text, err := decodeAll(d, capt)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := parseRecords(formatText, text, capt, d)
			if err != nil {
				t.Fatal(err)
			}
			var gotAt []time.Duration
			var gotText []string
			for _, e := range got {
				gotAt = append(gotAt, e.at.Truncate(ms))
				gotText = append(gotText, e.data)
			}
			if diff := cmp.Diff(chunks, gotText); diff != "" {
				t.Errorf("chunks (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(at, gotAt); diff != "" {
				t.Errorf("readable at (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRecordsBounded: NDJSON and text are bounded as events are.
func TestRecordsBounded(t *testing.T) {
	if _, _, err := parseLines([]byte(strings.Repeat("x", maxLineBytes+1))); err != errLongLine {
		t.Errorf("a long unfinished line: %v", err)
	}
	if _, _, err := parseLines([]byte(strings.Repeat("{}\n", maxEvents+1))); err != errTooManyEvents {
		t.Errorf("too many lines: %v", err)
	}
	var c capture
	for i := range maxEvents + 1 {
		c.raw = append(c.raw, 'x')
		c.marks = append(c.marks, mark{end: len(c.raw), at: time.Duration(i) * ms})
	}
	if _, err := textChunks(c.raw, c, nil); err != errTooManyEvents {
		t.Errorf("too many chunks: %v", err)
	}
}

// TestIsDone: the end markers of the streams people send.
func TestIsDone(t *testing.T) {
	tests := []struct {
		f    format
		data string
		want bool
	}{
		{formatSSE, "[DONE]", true},
		{formatSSE, `{"done":true}`, false},
		{formatNDJSON, `{"model":"x","done":true,"total_duration":1}`, true},
		{formatNDJSON, `{"done":false}`, false},
		{formatText, "[DONE]", false},
	}
	for _, tt := range tests {
		if got := (event{data: tt.data}).isDone(tt.f); got != tt.want {
			t.Errorf("%s %q: isDone %v, want %v", tt.f, tt.data, got, tt.want)
		}
	}
}
