package adapter_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"

	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/wiretest"
	"github.com/tickstream/tickstream/lambda/adapter"
)

const goldenDir = "../../handler/testdata"

// functionURLEvent returns a function URL event for a request.
func functionURLEvent(method, target string, header http.Header) json.RawMessage {
	path, query, _ := strings.Cut(target, "?")
	e := events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        path,
		RawQueryString: query,
		Headers:        map[string]string{"host": "abc123.lambda-url.eu-west-1.on.aws", "user-agent": "curl/8.5.0"},
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "abc123.lambda-url.eu-west-1.on.aws",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "203.0.113.7", UserAgent: "curl/8.5.0",
			},
		},
	}
	for k, v := range header {
		e.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	b, _ := json.Marshal(e)
	return b
}

// restEvent returns an API Gateway REST proxy event for a request to the
// stage prod.
func restEvent(method, target string, header http.Header) json.RawMessage {
	path, query, _ := strings.Cut(target, "?")
	e := events.APIGatewayProxyRequest{
		Resource:          "/{proxy+}",
		Path:              path,
		HTTPMethod:        method,
		MultiValueHeaders: map[string][]string{"Host": {"xyz.execute-api.eu-west-1.amazonaws.com"}},
		RequestContext: events.APIGatewayProxyRequestContext{
			Stage:      "prod",
			Path:       "/prod" + path,
			DomainName: "xyz.execute-api.eu-west-1.amazonaws.com",
			HTTPMethod: method,
			Identity:   events.APIGatewayRequestIdentity{SourceIP: "198.51.100.9"},
		},
	}
	for k, v := range header {
		e.MultiValueHeaders[k] = v
	}
	e.MultiValueQueryStringParameters = queryParameters(query)
	b, _ := json.Marshal(e)
	return b
}

// queryParameters splits a query string as API Gateway and ALB events carry
// it, without decoding anything: nil for an empty one.
func queryParameters(query string) map[string][]string {
	if query == "" {
		return nil
	}
	params := map[string][]string{}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = append(params[k], v)
	}
	return params
}

// httpAPIEvent returns an API Gateway HTTP API (payload format 2.0) event
// for a request to the $default stage.
func httpAPIEvent(method, target string, header http.Header) json.RawMessage {
	path, query, _ := strings.Cut(target, "?")
	e := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        path,
		RawQueryString: query,
		Headers:        map[string]string{"host": "aaaaaaaaaa.execute-api.eu-west-1.amazonaws.com"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: "aaaaaaaaaa.execute-api.eu-west-1.amazonaws.com",
			Stage:      "$default",
			HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.4"},
		},
	}
	for k, v := range header {
		e.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	b, _ := json.Marshal(e)
	return b
}

// albEvent returns an ALB event for a target group with multi-value headers
// turned on.
func albEvent(method, target string, header http.Header) json.RawMessage {
	path, query, _ := strings.Cut(target, "?")
	e := events.ALBTargetGroupRequest{
		HTTPMethod:        method,
		Path:              path,
		MultiValueHeaders: map[string][]string{"host": {"tickstream-123.eu-west-1.elb.amazonaws.com"}},
		RequestContext:    events.ALBTargetGroupRequestContext{ELB: events.ELBContext{TargetGroupArn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/tickstream/0123456789abcdef"}},
	}
	for k, v := range header {
		e.MultiValueHeaders[strings.ToLower(k)] = v
	}
	e.MultiValueQueryStringParameters = queryParameters(query)
	b, _ := json.Marshal(e)
	return b
}

// eventKinds are the event builders, one per source (ALB with multi-value
// headers), and whether the adapter streams their responses.
var eventKinds = []struct {
	name     string
	event    func(method, target string, header http.Header) json.RawMessage
	streamed bool
}{
	{"function URL", functionURLEvent, true},
	{"REST", restEvent, true},
	{"HTTP API", httpAPIEvent, false},
	{"ALB", albEvent, false},
}

// splitResponse reads a response as the Runtime API receives it: for a
// streamed one, a JSON prelude, eight NUL bytes and the body; for a
// buffered one, a JSON document with the body inside.
func splitResponse(t *testing.T, r io.Reader) (status int, header http.Header, body []byte, err error) {
	t.Helper()
	all, err := io.ReadAll(r)
	head, body, streamed := bytes.Cut(all, make([]byte, 8))
	var p struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Cookies           []string            `json:"cookies"`
		Body              *string             `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
	}
	if jerr := json.Unmarshal(head, &p); jerr != nil {
		t.Fatalf("response %q: %v", head, jerr)
	}
	if !streamed {
		if p.Body == nil {
			t.Fatalf("buffered response %s has no body", head)
		}
		body = []byte(*p.Body)
		if p.IsBase64Encoded {
			if body, err = base64.StdEncoding.DecodeString(*p.Body); err != nil {
				t.Fatalf("body: %v", err)
			}
		}
	}
	header = http.Header{}
	for k, v := range p.Headers {
		header.Set(k, v)
	}
	for k, vs := range p.MultiValueHeaders {
		for _, v := range vs {
			header.Add(k, v)
		}
	}
	for _, c := range p.Cookies {
		header.Add("Set-Cookie", c)
	}
	return p.StatusCode, header, body, err
}

// TestGolden serves every golden case through every source: streamed
// through a function URL and a REST API, buffered through an HTTP API and
// an ALB, the same bytes. Endless streams are ended by the deadline margin
// itself: the invocation's deadline is set so the handler's context is done
// half a period after the last frame the golden file holds.
func TestGolden(t *testing.T) {
	const margin = 2 * time.Second
	for _, kind := range eventKinds {
		for _, gc := range wiretest.Cases {
			t.Run(kind.name+"/"+gc.File, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					run := time.Hour
					if gc.Units() > 0 {
						run = time.Duration(gc.Units())*gc.Period - gc.Period/2
					}
					ctx, cancel := context.WithTimeout(context.Background(), run+margin)
					defer cancel()
					a := adapter.New(handler.New(), adapter.WithDeadlineMargin(margin))
					resp, err := a.Invoke(ctx, withBody(kind.event(gc.Method, gc.Path, gc.Header), gc.Body))
					if err != nil {
						t.Fatal(err)
					}
					status, header, body, err := splitResponse(t, resp)
					if err != nil {
						t.Fatalf("reading the body: %v", err)
					}
					wiretest.Golden(t, filepath.Join(goldenDir, gc.File), wiretest.Dump(status, header, body))
				})
			})
		}
	}
}

// withBody returns event with body as its (plain text) body: every HTTP
// event source carries it in "body", with "isBase64Encoded" false.
func withBody(event json.RawMessage, body string) json.RawMessage {
	if body == "" {
		return event
	}
	var m map[string]any
	if err := json.Unmarshal(event, &m); err != nil {
		panic(err) // the builders' own JSON
	}
	m["body"], m["isBase64Encoded"] = body, false
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// requestSeen is what a handler sees of a request.
type requestSeen struct {
	Method, URL, RequestURI, Host, RemoteAddr, Body string
	Header                                          http.Header
	ContentLength                                   int64
}

// capture serves event and returns what the handler saw.
func capture(t *testing.T, a func(http.Handler) *adapter.Adapter, event json.RawMessage) requestSeen {
	t.Helper()
	var seen requestSeen
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = requestSeen{r.Method, r.URL.String(), r.RequestURI, r.Host, r.RemoteAddr, string(body), r.Header, r.ContentLength}
	})
	resp, err := a(h).Invoke(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp)
	return seen
}

func TestFunctionURLRequest(t *testing.T) {
	event := events.LambdaFunctionURLRequest{
		Version:         "2.0",
		RawPath:         "/events",
		RawQueryString:  "interval=250ms&count=2",
		Cookies:         []string{"a=1", "b=2"},
		Headers:         map[string]string{"host": "u.lambda-url.us-east-1.on.aws", "cookie": "a=1; b=2", "last-event-id": "41", "accept": "text/event-stream"},
		Body:            "aGVsbG8=",
		IsBase64Encoded: true,
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "u.lambda-url.us-east-1.on.aws",
			HTTP:       events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", SourceIP: "2001:db8::7"},
		},
	}
	b, _ := json.Marshal(event)
	got := capture(t, func(h http.Handler) *adapter.Adapter { return adapter.New(h) }, b)
	want := requestSeen{
		Method:     "POST",
		URL:        "https://u.lambda-url.us-east-1.on.aws/events?interval=250ms&count=2",
		RequestURI: "/events?interval=250ms&count=2",
		Host:       "u.lambda-url.us-east-1.on.aws",
		RemoteAddr: "[2001:db8::7]:0",
		Body:       "hello",
		Header: http.Header{
			"Cookie":        {"a=1; b=2"},
			"Last-Event-Id": {"41"},
			"Accept":        {"text/event-stream"},
		},
		ContentLength: 5,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestRESTRequest(t *testing.T) {
	event := events.APIGatewayProxyRequest{
		Path:                            "/api/stream/fast",
		HTTPMethod:                      "GET",
		MultiValueHeaders:               map[string][]string{"Accept": {"text/event-stream"}, "X-Multi": {"one", "two"}},
		MultiValueQueryStringParameters: map[string][]string{"count": {"3"}},
		RequestContext: events.APIGatewayProxyRequestContext{
			Stage: "prod", DomainName: "api.example.com", Identity: events.APIGatewayRequestIdentity{SourceIP: "198.51.100.9"},
		},
	}
	b, _ := json.Marshal(event)
	got := capture(t, func(h http.Handler) *adapter.Adapter { return adapter.New(h, adapter.WithBasePath("api")) }, b)
	want := requestSeen{
		Method:     "GET",
		URL:        "https://api.example.com/stream/fast?count=3",
		RequestURI: "/stream/fast?count=3",
		Host:       "api.example.com",
		RemoteAddr: "198.51.100.9:0",
		Header:     http.Header{"Accept": {"text/event-stream"}, "X-Multi": {"one", "two"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

// TestHandlerWritesNothing: a handler that returns without writing still
// answers, with 200 or the status it set.
func TestHandlerWritesNothing(t *testing.T) {
	for _, tt := range []struct {
		h    http.HandlerFunc
		want string
	}{
		{func(http.ResponseWriter, *http.Request) {}, `{"statusCode":200}`},
		{func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, `{"statusCode":204}`},
	} {
		resp, err := adapter.New(tt.h).Invoke(context.Background(), functionURLEvent("GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp)
		if err != nil || string(raw) != tt.want+"\x00\x00\x00\x00\x00\x00\x00\x00" {
			t.Errorf("response %q, %v; want %s and an empty body", raw, err, tt.want)
		}
	}
}

// TestFlushReachesRuntimeAtOnce proves that what the handler writes and
// flushes is readable while the handler is still running.
func TestFlushReachesRuntimeAtOnce(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: first\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		<-release
		io.WriteString(w, "data: second\n\n")
	})
	resp, err := adapter.New(h).Invoke(context.Background(), functionURLEvent("GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	got, err := wiretest.ReadFrames(resp, 1) // the prelude and the first frame
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(got, []byte("\x00\x00\x00\x00\x00\x00\x00\x00data: first\n\n")) {
		t.Errorf("read %q while the handler runs", got)
	}
	close(release)
	rest, err := io.ReadAll(resp)
	if err != nil || string(rest) != "data: second\n\n" {
		t.Errorf("then %q, %v", rest, err)
	}
}

// TestDeadlineMargin: the handler's context is done the margin before the
// invocation's deadline, and the response then ends cleanly.
func TestDeadlineMargin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var doneAt time.Duration
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "data: x\n\n")
			<-r.Context().Done()
			doneAt = time.Since(start)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adapter.New(h, adapter.WithDeadlineMargin(1500*time.Millisecond)).Invoke(ctx, functionURLEvent("GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp); err != nil {
			t.Errorf("body ended with %v, want a clean end", err)
		}
		if doneAt != 8500*time.Millisecond {
			t.Errorf("handler's context done after %v, want 8.5s", doneAt)
		}
	})
}

// TestEventsEndBeforeDeadline runs tickstream's endless /events with an 8s
// invocation deadline and a 1.5s margin: the stream ends cleanly, on an
// event boundary, 1.5s before the deadline, and resumes from Last-Event-ID
// in the next invocation.
func TestEventsEndBeforeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := adapter.New(handler.New(), adapter.WithDeadlineMargin(1500*time.Millisecond))
		deadline := time.Now().Add(8 * time.Second)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		resp, err := a.Invoke(ctx, functionURLEvent("GET", "/events", nil))
		if err != nil {
			t.Fatal(err)
		}
		_, _, body, err := splitResponse(t, resp)
		if err != nil {
			t.Fatalf("body ended with %v", err)
		}
		events := wiretest.Events(body)
		if len(events) != 7 || !bytes.HasSuffix(body, []byte("\n\n")) {
			t.Fatalf("%d events, body ends %q; want 7 (at 0s to 6s) and an event boundary", len(events), body[max(0, len(body)-20):])
		}
		if left := time.Until(deadline); left != 1500*time.Millisecond {
			t.Errorf("the response ended %v before the deadline, want 1.5s", left)
		}

		ctx2, cancel2 := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel2()
		resp, err = a.Invoke(ctx2, functionURLEvent("GET", "/events", http.Header{"Last-Event-ID": {events[6].ID}}))
		if err != nil {
			t.Fatal(err)
		}
		_, _, body, _ = splitResponse(t, resp)
		if got := wiretest.Events(body)[0].ID; got != "8" {
			t.Errorf("the next invocation starts at id %s, want 8", got)
		}
	})
}

// TestPanic: a handler that panics fails the invocation before its response
// begins, and ends the body with an error (the runtime's error trailers)
// after.
func TestPanic(t *testing.T) {
	before := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	quiet := adapter.WithLogger(slog.New(slog.DiscardHandler))
	_, err := adapter.New(before, quiet).Invoke(context.Background(), functionURLEvent("GET", "/", nil))
	if err == nil || err.Error() != "adapter: handler panicked: boom" {
		t.Errorf("panic before the response: %v", err)
	}

	after := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "data: 1\n\n")
		panic(http.ErrAbortHandler)
	})
	resp, err := adapter.New(after, quiet).Invoke(context.Background(), functionURLEvent("GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp)
	if err == nil || err.Error() != "adapter: handler panicked: net/http: abort Handler" {
		t.Errorf("panic after the response began: body error %v", err)
	}
}

// TestUnsupportedEvents: events that are not HTTP requests fail with an
// UnsupportedEventError that says what the event looks like.
func TestUnsupportedEvents(t *testing.T) {
	const want = "; this function serves HTTP requests from a function URL, an API Gateway REST or HTTP API, or an Application Load Balancer"
	for event, kind := range map[string]string{
		`hello`: "not a JSON object",
		`[1,2]`: "not a JSON object",
		`{}`:    "an event from no HTTP source",
		`{"Records":[{"eventSource":"aws:sqs"}]}`:                                                                      "an event from aws:sqs",
		`{"Records":[{"EventSource":"aws:sns"}]}`:                                                                      "an event from aws:sns",
		`{"records":[{"data":"eA=="}]}`:                                                                                "an event with records",
		`{"httpMethod":"GET","path":"/"}`:                                                                              "an event from no HTTP source",
		`{"type":"TOKEN","methodArn":"arn:x","authorizationToken":"t"}`:                                                "an API Gateway Lambda authorizer event",
		`{"requestContext":{"eventType":"MESSAGE","connectionId":"c","stage":"prod"}}`:                                 "an API Gateway WebSocket event",
		`{"detail-type":"Scheduled Event","source":"aws.events"}`:                                                      "an EventBridge event",
		`{"version":"2.0","rawPath":"/","requestContext":{"http":"GET","domainName":"x.lambda-url.eu-west-1.on.aws"}}`: "a malformed function URL event: json: cannot unmarshal string into Go struct field LambdaFunctionURLRequestContext.requestContext.http of type events.LambdaFunctionURLRequestContextHTTPDescription",
	} {
		_, err := adapter.New(http.NotFoundHandler()).Invoke(context.Background(), json.RawMessage(event))
		var unsupported *adapter.UnsupportedEventError
		if !errors.As(err, &unsupported) || !errors.Is(err, adapter.ErrUnsupportedEvent) {
			t.Errorf("%s: error %v, want an UnsupportedEventError", event, err)
			continue
		}
		if got := err.Error(); got != "adapter: unsupported event: "+kind+want {
			t.Errorf("%s: error %q, want it to say %q", event, got, kind)
		}
	}
}

// TestCutWithStalledRuntime: a streamed response whose reader (the
// runtime, when the Runtime API stops taking bytes because the client
// stalled) reads the prelude and nothing more still ends at the deadline
// margin: the write blocked in the pipe fails, the handler returns before
// the deadline, and the body ends with the cut's reason, not as if whole.
func TestCutWithStalledRuntime(t *testing.T) {
	returned := make(chan time.Time, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- time.Now() }()
		frame := bytes.Repeat([]byte("x"), 64<<10)
		for {
			if _, err := w.Write(frame); err != nil {
				return // as tickstream's streams do: a failed write ends them
			}
		} // and never looks at its context: the write it is in never returns
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	resp, err := adapter.New(h, adapter.WithDeadlineMargin(2*time.Second)).Invoke(ctx, functionURLEvent("GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp, make([]byte, 100<<10)); err != nil { // the prelude and some body, then a stall
		t.Fatal(err)
	}
	select {
	case at := <-returned:
		if left := deadline.Sub(at); left < 500*time.Millisecond {
			t.Errorf("the handler returned %v before the deadline, want about 1s (half the margin)", left)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler was still blocked in its write 10s on: the cut waited for the write")
	}
	_, err = io.Copy(io.Discard, resp)
	if err == nil || !strings.Contains(err.Error(), "deadline margin") {
		t.Errorf("the body ended with %v, want the cut's reason", err)
	}
}
