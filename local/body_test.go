package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRequestBodiesRefused: no route takes a body, so a request that
// announces one is answered at once, without its body being read or waited
// for, and its connection is closed: nothing hidden in a body is read as a
// next request.
func TestRequestBodiesRefused(t *testing.T) {
	r := startRunner(t, nil)
	addr := strings.TrimPrefix(r.url, "http://")
	answer := func(status, body string) string {
		return "HTTP/1.1 " + status + "\r\n" +
			"Connection: close\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
			"Content-Type: application/json\r\n" +
			"X-Content-Type-Options: nosniff\r\n" +
			"Date: <now>\r\n\r\n" + body
	}
	bodyRefused := answer("400 Bad Request", `{"error":"request body not allowed: no route takes one"}`)
	for _, tt := range []struct {
		name, request, want string
	}{
		{"Content-Length and no body",
			"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", bodyRefused},
		{"chunked body never sent",
			"GET /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", bodyRefused},
		{"body sent",
			"GET /stream/fast HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", bodyRefused},
		{"Expect: 100-continue to a route that takes no POST",
			"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
			strings.Replace(answer("405 Method Not Allowed", `{"error":"method POST not allowed; use GET or HEAD"}`),
				"Connection: close\r\n", "Allow: GET, HEAD\r\nConnection: close\r\n", 1)},
		{"Content-Length and Transfer-Encoding, a request hidden in the body",
			"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n", bodyRefused},
		{"unknown path",
			"GET /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
			answer("404 Not Found", `{"error":"no route for path /nothing"}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, elapsed := rawExchange(t, addr, tt.request)
			got = dateHeader.ReplaceAllString(got, "Date: <now>")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			// rawExchange reads until the server closes the connection.
			if elapsed > time.Second {
				t.Errorf("the connection was closed %v after the request, want at once", elapsed)
			}
		})
	}
}

var dateHeader = regexp.MustCompile(`Date: [^\r]*`)
