package main

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// TestDetachedWireBytes reads a detached stream's raw bytes: the response
// head the handler writes itself, each event as one HTTP/1.1 chunk, the last
// chunk, and the connection closed.
func TestDetachedWireBytes(t *testing.T) {
	r := startRunnerWithClock(t, wiretest.SteppingClock(time.Second), []string{"-detach=true"}, handler.WithInterval(time.Millisecond))
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /events?count=2 HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, err := io.ReadAll(conn) // to the end: the server closes the connection
	if err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`Date: [^\r]*`).ReplaceAllString(string(raw), "Date: <now>")
	frame1 := "retry: 1000\nid: 1\nevent: tick\ndata: {\"id\":1,\"timestamp\":\"2000-01-01T00:00:00.000Z\",\"message\":\"Event #1\"}\n\n"
	frame2 := "id: 2\nevent: tick\ndata: {\"id\":2,\"timestamp\":\"2000-01-01T00:00:01.000Z\",\"message\":\"Event #2\"}\n\n"
	want := "HTTP/1.1 200 OK\r\n" +
		"Cache-Control: no-cache\r\n" +
		"Content-Type: text/event-stream\r\n" +
		"X-Accel-Buffering: no\r\n" +
		"X-Content-Type-Options: nosniff\r\n" +
		"Date: <now>\r\n" +
		"Transfer-Encoding: chunked\r\n" +
		"Connection: close\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n", len(frame1), frame1) +
		fmt.Sprintf("%x\r\n%s\r\n", len(frame2), frame2) +
		"0\r\n\r\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("raw response (-want +got):\n%s", diff)
	}
}
