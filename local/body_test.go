package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRequestBodiesRefused: only a POST to a stream route takes a body, so
// any other request that announces one is answered at once, without its
// body being read or waited for, and its connection is closed: nothing
// hidden in a body is read as a next request.
func TestRequestBodiesRefused(t *testing.T) {
	r := startRunner(t, nil)
	addr := strings.TrimPrefix(r.url, "http://")
	bodyRefused := answer("400 Bad Request", `{"error":"request body not allowed: only POST /events and POST /stream/fast take one"}`)
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
			"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
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

// answer is the exact refusal the runner writes, with status and a JSON
// body, its Date header masked as dateHeader masks it.
func answer(status, body string) string {
	return "HTTP/1.1 " + status + "\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Content-Type: application/json\r\n" +
		"X-Content-Type-Options: nosniff\r\n" +
		"Date: <now>\r\n\r\n" + body
}

// TestPostBodiesBounded: a POST stream's body is bounded as a hostile
// client would test it. One announced over 64 KiB gets 413 at once, unread;
// one that grows past it while it is sent gets 413 when it does; one not
// complete within the read-header timeout gets 408; each closes the
// connection. Bad JSON gets 400. A body that arrives slowly but in time is
// served.
func TestPostBodiesBounded(t *testing.T) {
	for _, detach := range []string{"true", "false"} {
		t.Run("detach="+detach, func(t *testing.T) {
			r := startRunner(t, []string{"-read-header-timeout", "1s", "-detach=" + detach})
			addr := strings.TrimPrefix(r.url, "http://")
			clientClosed := func(a string) string {
				return strings.Replace(strings.Replace(a, "Connection: close\r\n", "", 1), "Date: <now>\r\n", "Date: <now>\r\nConnection: close\r\n", 1)
			}
			tooLarge := answer("413 Request Entity Too Large", `{"error":"request body over 64 KiB; send a JSON object such as {\"count\":20}"}`)
			big := strings.Repeat(" ", 70<<10)
			for _, tt := range []struct {
				name, request, want string
				atOnce              bool // answered before the read-header timeout could pass
			}{
				{"announced over 64 KiB, never sent",
					"POST /stream/fast HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n", tooLarge, true},
				{"chunked, over 64 KiB",
					"POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
						strconv.FormatInt(int64(len(big)), 16) + "\r\n" + big + "\r\n0\r\n\r\n", tooLarge, true},
				{"stalled",
					"POST /stream/fast HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{\"count\":",
					answer("408 Request Timeout", `{"error":"request body not complete within 1s"}`), false},
				{"invalid JSON", // read whole, so the connection could serve on: the client closes it
					"POST /stream/fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 9\r\n\r\n{\"count\":",
					clientClosed(answer("400 Bad Request", `{"error":"request body: invalid JSON: unexpected EOF"}`)), true},
			} {
				t.Run(tt.name, func(t *testing.T) {
					got, elapsed := rawExchange(t, addr, tt.request)
					got = dateHeader.ReplaceAllString(got, "Date: <now>")
					if diff := cmp.Diff(tt.want, got); diff != "" {
						t.Errorf("answer (-want +got):\n%s", diff)
					}
					if tt.atOnce && elapsed > 900*time.Millisecond {
						t.Errorf("answered %v after the request, want at once", elapsed)
					}
					if !tt.atOnce && (elapsed < time.Second || elapsed > 4*time.Second) {
						t.Errorf("answered %v after the request, want just after the 1s timeout", elapsed)
					}
				})
			}
			t.Run("slow but in time", func(t *testing.T) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				body := `{"count":2,"delay":"0s"}`
				io.WriteString(conn, "POST /stream/fast HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
				for i := range len(body) {
					time.Sleep(20 * time.Millisecond)
					io.WriteString(conn, body[i:i+1])
				}
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				if want := "id: 0\n"; resp.StatusCode != 200 || !strings.HasPrefix(string(got), want) || !strings.HasSuffix(string(got), "id: 2\nevent: done\ndata: complete\n\n") {
					t.Errorf("%s %q, want 200 with events 0, 1 and done", resp.Status, got)
				}
			})
		})
	}
}
