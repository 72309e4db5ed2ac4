package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// read makes a response of format f whose records were readable at
// arrive(i), with header h.
func read(f format, n int, h http.Header, arrive func(int) time.Duration) response {
	evs := records(n, 100, arrive)
	return response{reading: reading{events: evs, start: t0, endAt: evs[n-1].at + ms, ended: true, doneAt: -1},
		status: 200, proto: "HTTP/1.1", format: f, header: h, headAt: ms, firstByteAt: ms}
}

func fptrOf(d time.Duration) *float64 { return tenths(d) }

// TestDeliveryFinding: a stream's delivery alone (with the caveat that the
// pattern cannot tell a bursty server from a batching path) and beside a
// comparison (which can).
func TestDeliveryFinding(t *testing.T) {
	sse := http.Header{"Content-Type": {"text/event-stream"}}
	batchedArrival := func(i int) time.Duration { return time.Duration(i/5*5+4)*50*ms + ms }
	live := read(formatSSE, 20, sse, every(50*ms, ms))
	batched := read(formatSSE, 20, sse, batchedArrival)
	twenty := 20
	tests := []struct {
		name  string
		reads streamReads
		cmp   bool
		want  Finding
	}{
		{"batched, alone", streamReads{browser: batched}, false, Finding{
			Name: "delivery", Verdict: "batched", Format: "sse", Events: &twenty, Fix: fixBuffering, problem: problemBuffering,
			FirstByteMs: fptrOf(ms), FirstEventMs: fptrOf(201 * ms),
			Detail: "sse: 20 events in 4 releases, 250ms of silence before the longest-held release; head after 1ms, first byte after 1ms, first event after 201ms" + burstsCaveat,
		}},
		{"the same server, bursty, beside its own bursts", streamReads{browser: batched, compare: read(formatSSE, 20, sse, batchedArrival)}, true, Finding{
			Name: "delivery", Verdict: "live", OK: true, Format: "sse", Events: &twenty, MatchedBy: "id",
			FirstByteMs: fptrOf(ms), FirstEventMs: fptrOf(201 * ms), AddedMsP50: fptrOf(0), AddedMsP99: fptrOf(0), AddedMsMax: fptrOf(0),
			Detail: "sse: 20 events in 4 releases, 250ms of silence before the longest-held release; head after 1ms, first byte after 1ms, first event after 201ms; " +
				"beside the comparison (20 of 20 matched by id), the path adds 0s at the median, 0s at p99, 0s at most",
		}},
		{"a batching path beside the live server", streamReads{browser: batched, compare: live}, true, Finding{
			Name: "delivery", Verdict: "batched", Format: "sse", Events: &twenty, MatchedBy: "id", Fix: fixBuffering, problem: problemBuffering,
			FirstByteMs: fptrOf(ms), FirstEventMs: fptrOf(201 * ms), AddedMsP50: fptrOf(100 * ms), AddedMsP99: fptrOf(200 * ms), AddedMsMax: fptrOf(200 * ms),
			Detail: "sse: 20 events in 4 releases, 250ms of silence before the longest-held release; head after 1ms, first byte after 1ms, first event after 201ms; " +
				"beside the comparison (20 of 20 matched by id), the path adds 100ms at the median, 200ms at p99, 200ms at most",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deliveryFinding(tt.reads, tt.cmp)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(Finding{})); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStreamCompression: a compressed read against the same request's
// without compression: flushed with every event, or holding them.
func TestStreamCompression(t *testing.T) {
	sse := http.Header{"Content-Type": {"text/event-stream"}}
	plain := read(formatSSE, 12, sse, every(250*ms, ms))
	flushed := read(formatSSE, 12, sse, every(250*ms, 2*ms))
	flushed.encoding = "gzip"
	tailHeld := read(formatSSE, 12, sse, every(250*ms, 251*ms))
	tailHeld.encoding = "br"
	tests := []struct {
		name    string
		browser response
		want    Finding
	}{
		{"none", plain, Finding{Name: "compression", Verdict: "none", OK: true, Detail: "not compressed, though the client accepts gzip, deflate, br, zstd as browsers do"}},
		{"flushed", flushed, Finding{Name: "compression", Verdict: "compressed", OK: true, Encoding: "gzip", MaxHoldMs: ptr(1),
			Detail: "gzip, flushed with every event (at most 1ms behind the read without compression)"}},
		{"each event held until the next", tailHeld, Finding{Name: "compression", Verdict: "holding", Encoding: "br", MaxHoldMs: ptr(250),
			Fix: fixCompression, problem: problemCompression,
			Detail: "br: each event readable 250ms later (median) than without compression: the compressor keeps events until more come"}},
		{"unreadable", response{encoding: "compress", undecodable: errors.New(`Content-Encoding "compress" is not one this check decodes (gzip, deflate, br, zstd)`)},
			Finding{Name: "compression", Verdict: "unreadable", Encoding: "compress", Fix: fixCompression, problem: problemCompression,
				Detail: `Content-Encoding "compress" is not one this check decodes (gzip, deflate, br, zstd), so the events cannot be timed (and a browser may not read them either)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, streamCompression(tt.browser, plain), cmp.AllowUnexported(Finding{})); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStreamHeaders: what EventSource needs, hop-by-hop headers on HTTP/2
// (which Safari refuses), and what tells proxies to leave a stream alone.
func TestStreamHeaders(t *testing.T) {
	get := request{method: "GET", header: http.Header{"Accept": {"text/event-stream"}}}
	post := request{method: "POST", header: http.Header{"Accept": {"*/*"}}}
	tests := []struct {
		name  string
		proto string
		h     http.Header
		req   request
		want  Finding
	}{
		{"an MCP server's", "HTTP/1.1", http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache, no-transform"}, "X-Accel-Buffering": {"no"}}, post,
			Finding{Name: "headers", Verdict: "intact", OK: true, Detail: "Content-Type: text/event-stream; Cache-Control: no-cache, no-transform; X-Accel-Buffering: no"}},
		{"NDJSON read with fetch", "HTTP/1.1", http.Header{"Content-Type": {"application/x-ndjson"}}, post,
			Finding{Name: "headers", Verdict: "intact", OK: true, Detail: "Content-Type: application/x-ndjson; Cache-Control: (none); X-Accel-Buffering: (none); without Cache-Control: no-transform, compressors on the path may take the stream"}},
		{"text read with EventSource", "HTTP/1.1", http.Header{"Content-Type": {"text/plain"}}, get,
			Finding{Name: "headers", Verdict: "rewritten", Fix: "pass the server's Content-Type through",
				Detail: "Content-Type: text/plain; Cache-Control: (none); browsers' EventSource refuses any Content-Type but text/event-stream"}},
		{"Connection and Keep-Alive over HTTP/2", "HTTP/2", http.Header{"Content-Type": {"text/event-stream"}, "Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}}, get,
			Finding{Name: "headers", Verdict: "hop-by-hop",
				Fix:    "remove Connection, Keep-Alive, Transfer-Encoding and Upgrade from responses sent over HTTP/2 (the server sets them, and the proxy relays them)",
				Detail: "Content-Type: text/event-stream; Cache-Control: (none); HTTP/2 response with Connection: keep-alive; Keep-Alive: timeout=5: Safari fails such a stream (HTTP/2 forbids connection headers)"}},
		{"Connection over HTTP/1.1 is its own", "HTTP/1.1", http.Header{"Content-Type": {"text/event-stream"}, "Connection": {"keep-alive"}, "Cache-Control": {"no-transform"}}, get,
			Finding{Name: "headers", Verdict: "intact", OK: true, Detail: "Content-Type: text/event-stream; Cache-Control: no-transform; X-Accel-Buffering: (none)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := streamHeaders(response{header: tt.h, proto: tt.proto}, tt.req)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(Finding{})); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStreamEnd: a stream's own end marker, a plain end, a stream still
// open when the read stopped, one cut by a reset, and one that ended
// cleanly mid-event (a truncation that looks whole).
func TestStreamEnd(t *testing.T) {
	sse := http.Header{"Content-Type": {"text/event-stream"}}
	done := read(formatSSE, 3, sse, every(50*ms, 0))
	done.events[2].data = "[DONE]"
	ollama := read(formatNDJSON, 2, nil, every(50*ms, 0))
	ollama.events[1].data = `{"done":true}`
	plain := read(formatSSE, 3, sse, every(50*ms, 0))
	open := read(formatSSE, 3, sse, every(50*ms, 0))
	open.ended, open.err, open.endAt = false, context.DeadlineExceeded, 30*time.Second
	reset := read(formatSSE, 3, sse, every(50*ms, 0))
	reset.ended, reset.err, reset.endAt, reset.bodyBytes = false, io.ErrUnexpectedEOF, 20*time.Second, 300
	truncated := read(formatSSE, 3, sse, every(50*ms, 0))
	truncated.unfinished = 17
	tests := []struct {
		name string
		r    response
		want Finding
	}{
		{"[DONE]", done, Finding{Name: "end", Verdict: "done", OK: true, Detail: "ended with its end marker ([DONE]), the response 1ms after it"}},
		{"Ollama's done", ollama, Finding{Name: "end", Verdict: "done", OK: true, Detail: `ended with its end marker ({"done":true}), the response 1ms after it`}},
		{"ended", plain, Finding{Name: "end", Verdict: "ended", OK: true, Detail: "the response ended after 101ms"}},
		{"open", open, Finding{Name: "end", Verdict: "open", OK: true, Detail: "still open after 30s, when the check stopped reading"}},
		{"cut", reset, Finding{Name: "end", Verdict: "cut",
			Detail: "the response broke off after 20s (300 bytes): unexpected EOF",
			Fix:    "something on the path ends streams early: a total or idle timeout (see -idle), or a size limit; streams should end before it and resume with Last-Event-ID"}},
		{"truncated, though it ended cleanly", truncated, Finding{Name: "end", Verdict: "cut",
			Detail: "the response ended with 17 bytes of an unfinished event after its last whole one: it was cut, though it ended cleanly",
			Fix:    "something on the path ends the response early and closes it as if whole"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, streamEnd(tt.r, 30*time.Second), cmp.AllowUnexported(Finding{})); diff != "" {
				t.Errorf("finding (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStreamRequest builds stream mode's request from curl's flags.
func TestStreamRequest(t *testing.T) {
	body := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(body, []byte(`{"stream":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, maxRequestBody+1), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		method  string
		headers []string
		data    string
		want    request
		err     string
	}{
		{"GET as EventSource", "", nil, "", request{method: "GET", header: http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}}, ""},
		{"-d implies POST, as fetch", "", []string{"Content-Type: application/json"}, `{"a":1}`,
			request{method: "POST", body: []byte(`{"a":1}`), header: http.Header{"Accept": {"*/*"}, "Content-Type": {"application/json"}}}, ""},
		{"-d @FILE, curl's default type", "", nil, "@" + body,
			request{method: "POST", body: []byte(`{"stream":true}`), header: http.Header{"Accept": {"*/*"}, "Content-Type": {"application/x-www-form-urlencoded"}}}, ""},
		{"-X PUT with -H Accept", "PUT", []string{"Accept:  application/json, text/event-stream ", "Authorization: Bearer x"}, "",
			request{method: "PUT", header: http.Header{"Accept": {"application/json, text/event-stream"}, "Authorization": {"Bearer x"}}}, ""},
		{"a header without colon", "", []string{"Accept text/event-stream"}, "", request{}, `-H "Accept text/event-stream": want 'Name: value'`},
		{"Accept-Encoding is the check's", "", []string{"Accept-Encoding: gzip"}, "", request{}, `-H "Accept-Encoding: gzip": the check sets Accept-Encoding itself (a browser's, then none)`},
		{"a body file too big", "", nil, "@" + big, request{}, "-d @" + big + ": larger than 1024 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := streamRequest(tt.method, tt.headers, tt.data)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(request{})); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}
