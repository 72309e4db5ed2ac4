//go:build !js && !wasip1

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// runtimeAPI plays the Lambda Runtime API on loopback for one function
// process: it hands out the invocations the test queues and records each
// response as it arrives, with the time of each piece.
type runtimeAPI struct {
	srv     *httptest.Server
	next    chan *invocation
	closing chan struct{} // closed when the test ends: stalled reads give up

	mu          sync.Mutex
	invocations map[string]*invocation
	initErr     string
}

// An invocation is one event and what the function answered.
type invocation struct {
	id       string
	event    []byte
	deadline time.Time
	handed   time.Time // when the function took the event
	// stallAfter, if not 0, is how many bytes of the response the Runtime
	// API takes before it stops reading, as when the client stalls.
	stallAfter int
	pieces     chan piece  // the response body as it arrives; closed at its end
	result     chan result // how the invocation ended
}

// A piece is one read of the response body.
type piece struct {
	at   time.Duration // since the function took the event
	data []byte
}

type result struct {
	endpoint    string      // "response" or "error"
	contentType string      // the response's Content-Type
	trailer     http.Header // the response's trailers
	body        []byte      // an error report's body
}

func newRuntimeAPI(t *testing.T) *runtimeAPI {
	api := &runtimeAPI{next: make(chan *invocation, 8), invocations: map[string]*invocation{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case inv := <-api.next:
			inv.handed = time.Now()
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(inv.deadline.UnixMilli()))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:tickstream")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793")
			w.Write(inv.event)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		inv := api.invocation(t, r.PathValue("id"))
		buf := make([]byte, 64<<10)
		read := 0
		for {
			if inv.stallAfter > 0 && read >= inv.stallAfter {
				<-api.closing // the client stalled: nothing more is read
				close(inv.pieces)
				return
			}
			n, err := r.Body.Read(buf)
			read += n
			if n > 0 {
				inv.pieces <- piece{time.Since(inv.handed), bytes.Clone(buf[:n])}
			}
			if err != nil {
				break
			}
		}
		close(inv.pieces)
		inv.result <- result{endpoint: "response", contentType: r.Header.Get("Content-Type"), trailer: r.Trailer}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		inv := api.invocation(t, r.PathValue("id"))
		body, _ := io.ReadAll(r.Body)
		close(inv.pieces)
		inv.result <- result{endpoint: "error", body: body}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		api.initErr = string(body)
		api.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	api.closing = make(chan struct{})
	api.srv = httptest.NewServer(mux)
	t.Cleanup(api.srv.Close)
	t.Cleanup(func() { close(api.closing) }) // before Close, which waits for the stalled reads
	return api
}

func (api *runtimeAPI) invocation(t *testing.T, id string) *invocation {
	api.mu.Lock()
	defer api.mu.Unlock()
	inv, ok := api.invocations[id]
	if !ok {
		t.Errorf("the function answered an unknown invocation %q", id)
	}
	return inv
}

// invoke queues event with a deadline timeout from now.
func (api *runtimeAPI) invoke(event []byte, timeout time.Duration) *invocation {
	return api.invokeStalling(event, timeout, 0)
}

// invokeStalling is invoke with a Runtime API that stops reading the
// response after stallAfter bytes (0: never).
func (api *runtimeAPI) invokeStalling(event []byte, timeout time.Duration, stallAfter int) *invocation {
	api.mu.Lock()
	id := fmt.Sprintf("req-%d", len(api.invocations)+1)
	inv := &invocation{id: id, event: event, deadline: time.Now().Add(timeout), stallAfter: stallAfter,
		pieces: make(chan piece, 1024), result: make(chan result, 1)}
	api.invocations[id] = inv
	api.mu.Unlock()
	api.next <- inv
	return inv
}

// wait collects the response: its prelude, its body with the time each
// frame's last byte arrived, and how it ended. It fails the test if the
// invocation has not ended within limit.
func (inv *invocation) wait(t *testing.T, limit time.Duration) (prelude string, body []byte, frameTimes []time.Duration, res result) {
	t.Helper()
	timeout := time.After(limit)
	var all []byte
	for {
		select {
		case p, ok := <-inv.pieces:
			if !ok {
				select {
				case res = <-inv.result:
				case <-timeout:
					t.Fatalf("invocation %s did not end within %v", inv.id, limit)
				}
				head, body, _ := bytes.Cut(all, make([]byte, 8))
				return string(head), body, frameTimes, res
			}
			start := len(all)
			all = append(all, p.data...)
			if _, after, found := bytes.Cut(all, make([]byte, 8)); found {
				// One time for each frame end in this piece.
				n := bytes.Count(after, []byte("\n\n")) - bytes.Count(all[:start], []byte("\n\n"))
				for range max(n, 0) {
					frameTimes = append(frameTimes, p.at)
				}
			}
		case <-timeout:
			t.Fatalf("invocation %s did not end within %v", inv.id, limit)
		}
	}
}

// startFunction builds the Go package pkg as a Lambda function and runs it
// against api until the test ends.
func startFunction(t *testing.T, api *runtimeAPI, pkg string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, pkg)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(api.srv.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME=tickstream", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		api.mu.Lock()
		defer api.mu.Unlock()
		if api.initErr != "" || t.Failed() {
			t.Logf("function output:\n%s\ninit error: %s", logs.String(), api.initErr)
		}
	})
}

func urlEvent(target string, header map[string]string) []byte {
	path, query, _ := strings.Cut(target, "?")
	headers := map[string]string{"host": "abc.lambda-url.eu-west-1.on.aws"}
	for k, v := range header {
		headers[k] = v
	}
	b, _ := json.Marshal(events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: path, RawQueryString: query, Headers: headers,
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "abc.lambda-url.eu-west-1.on.aws",
			HTTP:       events.LambdaFunctionURLRequestContextHTTPDescription{Method: "GET", Path: path, SourceIP: "203.0.113.7"},
		},
	})
	return b
}

// TestFastStreamsEventByEvent: /stream/fast reaches the Runtime API event
// by event over about 5 s, the first within a few hundred milliseconds, not
// in one piece at the end.
func TestFastStreamsEventByEvent(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	startFunction(t, api, ".")
	prelude, body, at, res := api.invoke(urlEvent("/stream/fast", nil), 60*time.Second).wait(t, 30*time.Second)

	wantPrelude := `{"statusCode":200,"headers":{"Cache-Control":"no-cache","Content-Type":"text/event-stream","X-Content-Type-Options":"nosniff"}}`
	if prelude != wantPrelude || res.endpoint != "response" || res.trailer.Get("Lambda-Runtime-Function-Error-Type") != "" {
		t.Fatalf("prelude %s, ended by %q with trailers %v", prelude, res.endpoint, res.trailer)
	}
	if n := len(wiretest.Events(body)); n != 101 || len(at) != 101 {
		t.Fatalf("%d events, %d frame times; want 101", n, len(at))
	}
	t.Logf("first event after %v, event 50 after %v, done after %v", at[0], at[50], at[100])
	if at[0] > 500*time.Millisecond {
		t.Errorf("the first event arrived after %v, want within 500ms", at[0])
	}
	if at[50] < 2*time.Second || at[50] > 3500*time.Millisecond {
		t.Errorf("event 50 arrived after %v, want about 2.5s: events are not streamed one by one", at[50])
	}
	if at[100] < 4500*time.Millisecond {
		t.Errorf("done arrived after %v, want about 5s", at[100])
	}
}

// TestEventsEndBeforeDeadline: an endless /events invocation with an 8 s
// deadline ends cleanly, on an event boundary, at least half a second
// before it; the next invocation resumes after Last-Event-ID.
func TestEventsEndBeforeDeadline(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	startFunction(t, api, ".")
	inv := api.invoke(urlEvent("/events", nil), 8*time.Second)
	_, body, at, res := inv.wait(t, 20*time.Second)
	ended := time.Now()
	if res.endpoint != "response" || res.trailer.Get("Lambda-Runtime-Function-Error-Type") != "" {
		t.Fatalf("ended by %q with trailers %v", res.endpoint, res.trailer)
	}
	events := wiretest.Events(body)
	if len(events) < 5 || !bytes.HasSuffix(body, []byte("\n\n")) {
		t.Fatalf("%d events, body ends %q; want about 6, ending on an event boundary", len(events), body[max(0, len(body)-30):])
	}
	left := inv.deadline.Sub(ended)
	t.Logf("%d events, the last after %v; the response ended %v before the deadline", len(events), at[len(at)-1], left)
	if left < 500*time.Millisecond {
		t.Errorf("the response ended %v before the deadline, want at least 500ms", left)
	}

	last := events[len(events)-1].ID
	_, body, _, _ = api.invoke(urlEvent("/events", map[string]string{"last-event-id": last}), 3*time.Second).wait(t, 10*time.Second)
	if got, want := wiretest.Events(body)[0].ID, fmt.Sprint(mustAtoi(last)+1); got != want {
		t.Errorf("the next invocation after Last-Event-ID %s starts at %s, want %s", last, got, want)
	}
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// TestResumeAndREST: Last-Event-ID 41 resumes at 42, and an API Gateway
// REST event for stage prod reaches /stream/fast.
func TestResumeAndREST(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	startFunction(t, api, ".")
	_, body, _, _ := api.invoke(urlEvent("/events", map[string]string{"last-event-id": "41"}), 3*time.Second).wait(t, 10*time.Second)
	if events := wiretest.Events(body); len(events) == 0 || events[0].ID != "42" {
		t.Errorf("Last-Event-ID 41: events %v, want the first with id 42", events)
	}

	rest, _ := json.Marshal(events.APIGatewayProxyRequest{
		Resource: "/{proxy+}", Path: "/stream/fast", HTTPMethod: "GET",
		MultiValueQueryStringParameters: map[string][]string{"count": {"3"}, "delay": {"10ms"}},
		RequestContext: events.APIGatewayProxyRequestContext{
			Stage: "prod", Path: "/prod/stream/fast", DomainName: "xyz.execute-api.eu-west-1.amazonaws.com",
		},
	})
	prelude, body, _, res := api.invoke(rest, 30*time.Second).wait(t, 10*time.Second)
	want := `{"statusCode":200,"multiValueHeaders":{"Cache-Control":["no-cache"],"Content-Type":["text/event-stream"],"X-Content-Type-Options":["nosniff"]}}`
	if prelude != want || res.endpoint != "response" {
		t.Errorf("REST prelude %s (ended by %s), want %s", prelude, res.endpoint, want)
	}
	var got []string
	for _, ev := range wiretest.Events(body) {
		got = append(got, ev.Type+ev.Data)
	}
	if len(got) != 4 || got[3] != "donecomplete" {
		t.Errorf("REST /stream/fast?count=3: events %q, want 3 and done", got)
	}
}

// TestEverySource: GET /health through one event of each HTTP source, and
// what the function posts back for it, whole: a streamed response (a
// prelude, eight NUL bytes, the body) for a function URL and a REST API, a
// JSON document for an HTTP API and an ALB.
func TestEverySource(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	startFunction(t, api, ".")
	const streamed = "application/vnd.awslambda.http-integration-response"
	const health = `{"status":"healthy"}`
	marshal := func(v any) []byte { b, _ := json.Marshal(v); return b }
	alb := events.ALBTargetGroupRequest{
		HTTPMethod: "GET", Path: "/health",
		RequestContext: events.ALBTargetGroupRequestContext{ELB: events.ELBContext{TargetGroupArn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tickstream/0123456789abcdef"}},
	}
	albMulti := alb
	albMulti.MultiValueHeaders = map[string][]string{"host": {"tickstream-1.eu-west-1.elb.amazonaws.com"}}
	alb.Headers = map[string]string{"host": "tickstream-1.eu-west-1.elb.amazonaws.com"}
	for _, tt := range []struct {
		name, contentType, want string
		event                   []byte
	}{
		{"function URL", streamed,
			`{"statusCode":200,"headers":{"Content-Length":"20","Content-Type":"application/json","X-Content-Type-Options":"nosniff"}}` + "\x00\x00\x00\x00\x00\x00\x00\x00" + health,
			urlEvent("/health", nil)},
		{"REST API", streamed,
			`{"statusCode":200,"multiValueHeaders":{"Content-Length":["20"],"Content-Type":["application/json"],"X-Content-Type-Options":["nosniff"]}}` + "\x00\x00\x00\x00\x00\x00\x00\x00" + health,
			marshal(events.APIGatewayProxyRequest{Path: "/health", HTTPMethod: "GET", RequestContext: events.APIGatewayProxyRequestContext{Stage: "prod", DomainName: "xyz.execute-api.eu-west-1.amazonaws.com"}})},
		{"HTTP API", "application/json",
			`{"statusCode":200,"headers":{"Content-Length":"20","Content-Type":"application/json","X-Content-Type-Options":"nosniff"},"body":"{\"status\":\"healthy\"}","isBase64Encoded":false}`,
			marshal(events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: "/health",
				RequestContext: events.APIGatewayV2HTTPRequestContext{Stage: "$default", DomainName: "aaaaaaaaaa.execute-api.eu-west-1.amazonaws.com",
					HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/health"}}})},
		{"ALB", "application/json",
			`{"statusCode":200,"statusDescription":"200 OK","headers":{"Content-Length":"20","Content-Type":"application/json","X-Content-Type-Options":"nosniff"},"body":"{\"status\":\"healthy\"}","isBase64Encoded":false}`,
			marshal(alb)},
		{"ALB with multi-value headers", "application/json",
			`{"statusCode":200,"statusDescription":"200 OK","multiValueHeaders":{"Content-Length":["20"],"Content-Type":["application/json"],"X-Content-Type-Options":["nosniff"]},"body":"{\"status\":\"healthy\"}","isBase64Encoded":false}`,
			marshal(albMulti)},
	} {
		head, body, _, res := api.invoke(tt.event, 30*time.Second).wait(t, 10*time.Second)
		got := head
		if len(body) > 0 || tt.contentType == streamed {
			got += "\x00\x00\x00\x00\x00\x00\x00\x00" + string(body)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" || res.endpoint != "response" || res.contentType != tt.contentType {
			t.Errorf("%s: posted to %q as %q, want %q; response (-want +got):\n%s", tt.name, res.endpoint, res.contentType, tt.contentType, diff)
		}
	}
}

// TestPanicReported: a handler that panics after its first event yields
// the Runtime API's error trailers; one that panics before yields an
// invocation error. The process keeps serving.
func TestPanicReported(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	startFunction(t, api, "./testdata/panicker")

	_, body, _, res := api.invoke(urlEvent("/after", nil), 30*time.Second).wait(t, 10*time.Second)
	if string(body) != "data: 1\n\n" {
		t.Errorf("body before the panic: %q", body)
	}
	errType := res.trailer.Get("Lambda-Runtime-Function-Error-Type")
	errBody, _ := base64.StdEncoding.DecodeString(res.trailer.Get("Lambda-Runtime-Function-Error-Body"))
	var report struct{ ErrorMessage, ErrorType string }
	json.Unmarshal(errBody, &report)
	if errType == "" || report.ErrorMessage != "adapter: handler panicked: boom after the first event" {
		t.Errorf("trailers %v (body %s), want the panic as a function error", res.trailer, errBody)
	}

	_, _, _, res = api.invoke(urlEvent("/before", nil), 30*time.Second).wait(t, 10*time.Second)
	json.Unmarshal(res.body, &report)
	if res.endpoint != "error" || report.ErrorMessage != "adapter: handler panicked: boom before the response" {
		t.Errorf("ended by %q with %s, want an invocation error", res.endpoint, res.body)
	}
}

// TestStubbornHandler: a handler that ignores its context and never
// returns has its response ended by the adapter half the margin (2 s)
// before the deadline, cleanly and with what it wrote; the function then
// serves the next invocation.
func TestStubbornHandler(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	startFunction(t, api, "./testdata/panicker")
	inv := api.invoke(urlEvent("/stubborn", nil), 4*time.Second)
	_, body, _, res := inv.wait(t, 10*time.Second)
	left := time.Until(inv.deadline)
	if string(body) != "data: 1\n\n" || res.endpoint != "response" || res.trailer.Get("Lambda-Runtime-Function-Error-Type") != "" {
		t.Errorf("body %q, ended by %q with trailers %v; want the one event and a clean end", body, res.endpoint, res.trailer)
	}
	if left < 500*time.Millisecond || left > 1500*time.Millisecond {
		t.Errorf("the response ended %v before the deadline, want about 1s", left)
	}
	_, body, _, res = api.invoke(urlEvent("/ok", nil), 30*time.Second).wait(t, 10*time.Second)
	if string(body) != "ok" || res.endpoint != "response" {
		t.Errorf("the next invocation: body %q, ended by %q", body, res.endpoint)
	}
}

// TestFinishedStream: on Lambda too, a reconnection to a finished stream
// gets 204 (the EventSource's cue to stop), and one inside it resumes.
func TestFinishedStream(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	startFunction(t, api, ".")
	prelude, body, _, _ := api.invoke(urlEvent("/stream/fast", map[string]string{"last-event-id": "100"}), 30*time.Second).wait(t, 10*time.Second)
	if want := `{"statusCode":204,"headers":{"Cache-Control":"no-cache","X-Content-Type-Options":"nosniff"}}`; prelude != want || len(body) != 0 {
		t.Errorf("Last-Event-ID 100: prelude %s, body %q; want %s and no body", prelude, body, want)
	}
	_, body, _, _ = api.invoke(urlEvent("/events?count=5&interval=10ms", map[string]string{"last-event-id": "3"}), 30*time.Second).wait(t, 10*time.Second)
	var ids []string
	for _, ev := range wiretest.Events(body) {
		ids = append(ids, ev.ID)
	}
	if diff := cmp.Diff([]string{"4", "5"}, ids); diff != "" {
		t.Errorf("/events?count=5 after Last-Event-ID 3: ids (-want +got):\n%s", diff)
	}
}

// TestStalledClientLetsGo: a stream of 64 KiB events whose client stalls
// (the Runtime API stops reading after 100 KB) under a 6 s deadline: the
// function cuts the stream at the deadline margin, gives up the response
// before the deadline, and takes its next invocation, which it serves.
func TestStalledClientLetsGo(t *testing.T) {
	t.Parallel()
	api := newRuntimeAPI(t)
	startFunction(t, api, ".")
	stalled := api.invokeStalling(urlEvent("/events?interval=10ms&size=65536", nil), 6*time.Second, 100<<10)
	next := api.invoke(urlEvent("/health", nil), 30*time.Second)
	_, body, _, res := next.wait(t, 15*time.Second)
	if early := stalled.deadline.Sub(next.handed); early < 0 {
		t.Errorf("the function took its next invocation %v after the stalled one's deadline, want before it", -early)
	}
	if string(body) != `{"status":"healthy"}` || res.endpoint != "response" {
		t.Errorf("the next invocation: body %q, ended by %q", body, res.endpoint)
	}
}
