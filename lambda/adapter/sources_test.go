package adapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/lambda/adapter"
)

// httpAPIv1Event returns an HTTP API event in payload format 1.0.
func httpAPIv1Event(method, target string, header http.Header) json.RawMessage {
	path, query, _ := strings.Cut(target, "?")
	e := events.APIGatewayProxyRequest{
		Path:              path,
		HTTPMethod:        method,
		MultiValueHeaders: map[string][]string{"Host": {"bbbbbbbbbb.execute-api.eu-west-1.amazonaws.com"}},
		RequestContext: events.APIGatewayProxyRequestContext{
			Stage: "$default", DomainName: "bbbbbbbbbb.execute-api.eu-west-1.amazonaws.com",
			Identity: events.APIGatewayRequestIdentity{SourceIP: "192.0.2.5"},
		},
	}
	for k, v := range header {
		e.MultiValueHeaders[k] = v
	}
	e.MultiValueQueryStringParameters = queryParameters(query)
	b, _ := json.Marshal(struct {
		Version string `json:"version"`
		events.APIGatewayProxyRequest
	}{"1.0", e})
	return b
}

// albSingleEvent returns an ALB event for a target group without
// multi-value headers: albEvent's, each multi-value field made single.
func albSingleEvent(method, target string, header http.Header) json.RawMessage {
	var e events.ALBTargetGroupRequest
	json.Unmarshal(albEvent(method, target, header), &e)
	e.Headers, e.QueryStringParameters = lastValues(e.MultiValueHeaders), lastValues(e.MultiValueQueryStringParameters)
	e.MultiValueHeaders, e.MultiValueQueryStringParameters = nil, nil
	b, _ := json.Marshal(e)
	return b
}

// lastValues keeps the last value of each key, as an ALB without
// multi-value headers does.
func lastValues(multi map[string][]string) map[string]string {
	if multi == nil {
		return nil
	}
	single := make(map[string]string, len(multi))
	for k, vs := range multi {
		single[k] = vs[len(vs)-1]
	}
	return single
}

// invoke serves event with a and returns the whole response as the Runtime
// API receives it.
func invoke(t *testing.T, a *adapter.Adapter, event json.RawMessage) string {
	t.Helper()
	resp, err := a.Invoke(context.Background(), event)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	b, err := io.ReadAll(resp)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return string(b)
}

const nul8 = "\x00\x00\x00\x00\x00\x00\x00\x00"

// TestSourceResponses: one handler answers each source the way it expects
// (the status and headers as they were when the response began):
// streamed preludes for a function URL and a REST API, whole JSON
// documents for an HTTP API (both payload formats) and an ALB (single- and
// multi-value), with the same status, headers, cookies and body.
func TestSourceResponses(t *testing.T) {
	var sources []adapter.Source
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, _ := adapter.EventFromContext(r.Context())
		sources = append(sources, e.Source)
		w.Header().Add("Set-Cookie", "s=1; Secure")
		w.Header().Add("Set-Cookie", "t=2")
		w.Header().Add("X-Multi", "one")
		w.Header().Add("X-Multi", "two")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusTeapot) // ignored, as net/http ignores it
		io.WriteString(w, "made")
		w.Header().Set("X-Late", "ignored") // after the response began
	})
	for _, tt := range []struct {
		name  string
		event json.RawMessage
		want  string
	}{
		{"function URL", functionURLEvent("GET", "/", nil),
			`{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Multi":"one, two"},"cookies":["s=1; Secure","t=2"]}` + nul8 + "made"},
		{"REST", restEvent("GET", "/", nil),
			`{"statusCode":201,"multiValueHeaders":{"Content-Type":["text/plain"],"Set-Cookie":["s=1; Secure","t=2"],"X-Multi":["one","two"]}}` + nul8 + "made"},
		{"HTTP API", httpAPIEvent("GET", "/", nil),
			`{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Multi":"one, two"},"cookies":["s=1; Secure","t=2"],"body":"made","isBase64Encoded":false}`},
		{"HTTP API payload 1.0", httpAPIv1Event("GET", "/", nil),
			`{"statusCode":201,"multiValueHeaders":{"Content-Type":["text/plain"],"Set-Cookie":["s=1; Secure","t=2"],"X-Multi":["one","two"]},"body":"made","isBase64Encoded":false}`},
		{"ALB multi-value", albEvent("GET", "/", nil),
			`{"statusCode":201,"statusDescription":"201 Created","multiValueHeaders":{"Content-Type":["text/plain"],"Set-Cookie":["s=1; Secure","t=2"],"X-Multi":["one","two"]},"body":"made","isBase64Encoded":false}`},
		{"ALB single-value", albSingleEvent("GET", "/", nil),
			`{"statusCode":201,"statusDescription":"201 Created","headers":{"Content-Type":"text/plain","Set-Cookie":"t=2","X-Multi":"one, two"},"body":"made","isBase64Encoded":false}`},
	} {
		if diff := cmp.Diff(tt.want, invoke(t, adapter.New(h), tt.event)); diff != "" {
			t.Errorf("%s response (-want +got):\n%s", tt.name, diff)
		}
	}
	want := []adapter.Source{adapter.FunctionURL, adapter.RESTAPI, adapter.HTTPAPI, adapter.HTTPAPI, adapter.ALB, adapter.ALB}
	if diff := cmp.Diff(want, sources); diff != "" {
		t.Errorf("sources the handler saw (-want +got):\n%s", diff)
	}
}

// TestBufferedBinaryBody: a body that is not UTF-8 goes back base64.
func TestBufferedBinaryBody(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte{0xff, 0x00, 'a'})
	})
	got := invoke(t, adapter.New(h), httpAPIEvent("GET", "/", nil))
	want := `{"statusCode":200,"headers":{"Content-Type":"application/octet-stream"},"body":"/wBh","isBase64Encoded":true}`
	if got != want {
		t.Errorf("response %s, want %s", got, want)
	}
}

// logRecords returns the JSON log records in buf without their time, and
// with each stack trace replaced by whether it names the test's file.
func logRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var records []map[string]any
	for line := range strings.Lines(buf.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		delete(r, "time")
		if stack, ok := r["stack"].(string); ok {
			r["stack"] = strings.Contains(stack, "sources_test.go")
		}
		records = append(records, r)
	}
	return records
}

func jsonLogger(buf *bytes.Buffer) *slog.Logger { return slog.New(slog.NewJSONHandler(buf, nil)) }

// TestBufferedTooLarge: a buffered response that outgrows its source's
// limit is replaced by a 502 with a JSON error and logged: an endless
// writer is stopped (its context ends and its writes fail), and a body
// that fits but whose JSON (base64) does not is refused whole.
func TestBufferedTooLarge(t *testing.T) {
	// endless writes until a write fails, then waits for its context to
	// end and sends the write's error.
	endless := func(stopped chan<- error) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("data: x\n\n"), 1000)
			for {
				if _, err := w.Write(chunk); err != nil {
					<-r.Context().Done()
					stopped <- err
					return
				}
			}
		})
	}
	for _, tt := range []struct {
		name    string
		event   json.RawMessage
		handler func(stopped chan<- error) http.Handler
		want    string
		log     string
		source  string
	}{
		{"ALB, endless", albEvent("GET", "/", nil), endless,
			`{"statusCode":502,"statusDescription":"502 Bad Gateway","multiValueHeaders":{"Content-Type":["application/json"],"X-Content-Type-Options":["nosniff"]},"body":"{\"error\":\"response too large: the handler wrote more than the 1048576 bytes an Application Load Balancer takes from Lambda\"}\n","isBase64Encoded":false}`,
			"response too large: the handler wrote more than the 1048576 bytes an Application Load Balancer takes from Lambda", "Application Load Balancer"},
		{"HTTP API, endless", httpAPIEvent("GET", "/", nil), endless,
			`{"statusCode":502,"headers":{"Content-Type":"application/json","X-Content-Type-Options":"nosniff"},"body":"{\"error\":\"response too large: the handler wrote more than the 6291456 bytes an API Gateway HTTP API takes from Lambda\"}\n","isBase64Encoded":false}`,
			"response too large: the handler wrote more than the 6291456 bytes an API Gateway HTTP API takes from Lambda", "API Gateway HTTP API"},
		{"ALB, binary that grows as base64", albEvent("GET", "/", nil), func(stopped chan<- error) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, err := w.Write(bytes.Repeat([]byte{0xff}, 900_000))
				stopped <- err
			})
		},
			`{"statusCode":502,"statusDescription":"502 Bad Gateway","multiValueHeaders":{"Content-Type":["application/json"],"X-Content-Type-Options":["nosniff"]},"body":"{\"error\":\"response too large: 1200147 bytes as JSON, over the 1048576 an Application Load Balancer takes from Lambda\"}\n","isBase64Encoded":false}`,
			"response too large: 1200147 bytes as JSON, over the 1048576 an Application Load Balancer takes from Lambda", "Application Load Balancer"},
	} {
		var logs bytes.Buffer
		stopped := make(chan error, 1)
		got := invoke(t, adapter.New(tt.handler(stopped), adapter.WithLogger(jsonLogger(&logs))), tt.event)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: response (-want +got):\n%s", tt.name, diff)
		}
		wantLog := []map[string]any{{"level": "ERROR", "msg": "response not sent", "request_id": "", "source": tt.source, "err": tt.log}}
		if diff := cmp.Diff(wantLog, logRecords(t, &logs)); diff != "" {
			t.Errorf("%s: log (-want +got):\n%s", tt.name, diff)
		}
		// An endless handler gets here once its context has ended.
		if err := <-stopped; strings.Contains(tt.name, "endless") != (err != nil) {
			t.Errorf("%s: the handler's write ended with %v", tt.name, err)
		}
	}
}

// TestWriterSemantics: the response writer does what net/http's does.
func TestWriterSemantics(t *testing.T) {
	type writeResult struct {
		N   int
		Err string
	}
	write := func(w http.ResponseWriter, s string) writeResult {
		n, err := io.WriteString(w, s)
		if err != nil {
			return writeResult{n, err.Error()}
		}
		return writeResult{n, ""}
	}
	for _, tt := range []struct {
		name   string
		method string
		h      func(w http.ResponseWriter) []writeResult
		want   string
		writes []writeResult
	}{
		{"HEAD drops the body", "HEAD", func(w http.ResponseWriter) []writeResult {
			w.Header().Set("Content-Type", "text/plain")
			return []writeResult{write(w, "body")}
		}, `{"statusCode":200,"headers":{"Content-Type":"text/plain"}}` + nul8, []writeResult{{4, ""}}},
		{"Content-Type sniffed", "GET", func(w http.ResponseWriter) []writeResult {
			return []writeResult{write(w, "<html><body>hi")}
		}, `{"statusCode":200,"headers":{"Content-Type":"text/html; charset=utf-8"}}` + nul8 + "<html><body>hi", []writeResult{{14, ""}}},
		{"sniffing turned off with a nil Content-Type", "GET", func(w http.ResponseWriter) []writeResult {
			w.Header()["Content-Type"] = nil
			return []writeResult{write(w, "<html>")}
		}, `{"statusCode":200,"headers":{"Content-Type":""}}` + nul8 + "<html>", []writeResult{{6, ""}}},
		{"no sniffing of an encoded body", "GET", func(w http.ResponseWriter) []writeResult {
			w.Header().Set("Content-Encoding", "gzip")
			return []writeResult{write(w, "<html>")}
		}, `{"statusCode":200,"headers":{"Content-Encoding":"gzip"}}` + nul8 + "<html>", []writeResult{{6, ""}}},
		{"no body with 204", "GET", func(w http.ResponseWriter) []writeResult {
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(http.StatusNoContent)
			return []writeResult{write(w, "body")}
		}, `{"statusCode":204}` + nul8, []writeResult{{0, "http: request method or response status code does not allow body"}}},
		{"304 without Content-Type", "GET", func(w http.ResponseWriter) []writeResult {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return nil
		}, `{"statusCode":304,"headers":{"Etag":"\"v1\""}}` + nul8, nil},
		{"Content-Length not exceeded", "GET", func(w http.ResponseWriter) []writeResult {
			w.Header().Set("Content-Length", "3")
			return []writeResult{write(w, "ab"), write(w, "cd")}
		}, `{"statusCode":200,"headers":{"Content-Length":"3","Content-Type":"text/plain; charset=utf-8"}}` + nul8 + "ab",
			[]writeResult{{2, ""}, {0, "http: wrote more than the declared Content-Length"}}},
		{"trailers dropped", "GET", func(w http.ResponseWriter) []writeResult {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Trailer", "X-Checksum")
			w.Header().Set(http.TrailerPrefix+"X-Sum", "1")
			r := write(w, "x")
			w.Header().Set("X-Checksum", "2")
			return []writeResult{r}
		}, `{"statusCode":200,"headers":{"Content-Type":"text/plain"}}` + nul8 + "x", []writeResult{{1, ""}}},
		{"1xx ignored", "GET", func(w http.ResponseWriter) []writeResult {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusAccepted)
			return []writeResult{write(w, "x")}
		}, `{"statusCode":202,"headers":{"Content-Type":"text/plain"}}` + nul8 + "x", []writeResult{{1, ""}}},
	} {
		var writes []writeResult
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writes = tt.h(w) })
		got := invoke(t, adapter.New(h), functionURLEvent(tt.method, "/", nil))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: response (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(tt.writes, writes); diff != "" {
			t.Errorf("%s: writes (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestInvalidStatusCode: WriteHeader panics on a code that is not three
// digits, as net/http's does, which fails the invocation.
func TestInvalidStatusCode(t *testing.T) {
	for _, code := range []int{0, 99, 1000} {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
		_, err := adapter.New(h, adapter.WithLogger(slog.New(slog.DiscardHandler))).Invoke(context.Background(), functionURLEvent("GET", "/", nil))
		var p *adapter.PanicError
		if !errors.As(err, &p) || p.Value != "invalid WriteHeader code "+strconv.Itoa(code) {
			t.Errorf("WriteHeader(%d): error %v, want the panic of an invalid code", code, err)
		}
	}
}

// TestPreludeTooLarge: headers too large for a prelude replace the
// response with a 502, the handler's writes fail, and it is logged.
func TestPreludeTooLarge(t *testing.T) {
	var logs bytes.Buffer
	writeErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("b", 70_000))
		_, err := io.WriteString(w, "data: 1\n\n")
		writeErr <- err
	})
	got := invoke(t, adapter.New(h, adapter.WithLogger(jsonLogger(&logs))), functionURLEvent("GET", "/", nil))
	const msg = "response headers too large: 70084 bytes as JSON, over the 65536 the adapter sends"
	want := `{"statusCode":502,"headers":{"Content-Type":"application/json","X-Content-Type-Options":"nosniff"}}` + nul8 + `{"error":"` + msg + `"}` + "\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	if err := <-writeErr; err == nil {
		t.Error("the handler's write succeeded")
	}
	wantLog := []map[string]any{{"level": "ERROR", "msg": "response not sent", "request_id": "", "source": "function URL", "err": msg}}
	if diff := cmp.Diff(wantLog, logRecords(t, &logs)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// TestRequestPaths: base paths and HTTP API stages come off as whole
// segments; an HTTP API's decoded path is encoded again; query parameters
// keep each source's encoding; r.Host is the Host header, as in net/http.
func TestRequestPaths(t *testing.T) {
	type seen struct{ RequestURI, Host, HostHeader string }
	for _, tt := range []struct {
		name  string
		opts  []adapter.Option
		event json.RawMessage
		want  seen
	}{
		{"base path", []adapter.Option{adapter.WithBasePath("api")}, functionURLEvent("GET", "/api/events?count=2", nil),
			seen{"/events?count=2", "abc123.lambda-url.eu-west-1.on.aws", ""}},
		{"base path alone", []adapter.Option{adapter.WithBasePath("/api/")}, functionURLEvent("GET", "/api", nil),
			seen{"/", "abc123.lambda-url.eu-west-1.on.aws", ""}},
		{"base path is whole segments", []adapter.Option{adapter.WithBasePath("/api")}, restEvent("GET", "/apiary/x", nil),
			seen{"/apiary/x", "xyz.execute-api.eu-west-1.amazonaws.com", ""}},
		{"REST Host header", nil, restEvent("GET", "/health", http.Header{"Host": {"sse.example.com"}}),
			seen{"/health", "sse.example.com", ""}},
		{"REST query decoded by API Gateway", nil, restEvent("GET", "/e?q=a b&r=1/2", nil),
			seen{"/e?q=a+b&r=1%2F2", "xyz.execute-api.eu-west-1.amazonaws.com", ""}},
		{"ALB query as sent", nil, albEvent("GET", "/e?q=a%20b&a=1", nil),
			seen{"/e?a=1&q=a%20b", "tickstream-123.eu-west-1.elb.amazonaws.com", ""}},
		{"HTTP API named stage", nil, httpAPIStageEvent("prod", "/prod/events"),
			seen{"/events", "aaaaaaaaaa.execute-api.eu-west-1.amazonaws.com", ""}},
		{"HTTP API stage is whole segments", nil, httpAPIStageEvent("prod", "/production"),
			seen{"/production", "aaaaaaaaaa.execute-api.eu-west-1.amazonaws.com", ""}},
		{"HTTP API decoded path", nil, httpAPIEvent("GET", "/a b%/c", nil),
			seen{"/a%20b%25/c", "aaaaaaaaaa.execute-api.eu-west-1.amazonaws.com", ""}},
	} {
		var got seen
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = seen{r.RequestURI, r.Host, r.Header.Get("Host")}
		})
		invoke(t, adapter.New(h, tt.opts...), tt.event)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// httpAPIStageEvent returns an HTTP API event for a named stage, whose
// name starts rawPath.
func httpAPIStageEvent(stage, rawPath string) json.RawMessage {
	var e events.APIGatewayV2HTTPRequest
	json.Unmarshal(httpAPIEvent("GET", rawPath, nil), &e)
	e.RequestContext.Stage = stage
	b, _ := json.Marshal(e)
	return b
}

// TestBadRequests: what net/http would refuse gets 400 and a JSON error,
// streamed or buffered as the source expects, and the handler never runs.
func TestBadRequests(t *testing.T) {
	badBase64 := func(event json.RawMessage) json.RawMessage {
		var m map[string]any
		json.Unmarshal(event, &m)
		m["body"], m["isBase64Encoded"] = "not base64!", true
		b, _ := json.Marshal(m)
		return b
	}
	streamed := func(msg string) string {
		return `{"statusCode":400,"headers":{"Content-Type":"application/json","X-Content-Type-Options":"nosniff"}}` + nul8 + `{"error":"bad request: ` + msg + `"}` + "\n"
	}
	for _, tt := range []struct {
		name  string
		event json.RawMessage
		want  string
	}{
		{"bad escape", functionURLEvent("GET", "/%zz", nil), streamed(`malformed request target \"/%zz\"`)},
		{"bad escape in the query", restEvent("GET", "/events", nil), ""}, // REST parameters arrive decoded: nothing to refuse
		{"bad method", functionURLEvent("GE T", "/", nil), streamed(`invalid method \"GE T\"`)},
		{"bad base64, streamed", badBase64(functionURLEvent("POST", "/", nil)), streamed("body marked base64 is not valid base64")},
		{"bad base64, buffered", badBase64(albEvent("POST", "/", nil)),
			`{"statusCode":400,"statusDescription":"400 Bad Request","multiValueHeaders":{"Content-Type":["application/json"],"X-Content-Type-Options":["nosniff"]},"body":"{\"error\":\"bad request: body marked base64 is not valid base64\"}\n","isBase64Encoded":false}`},
	} {
		if tt.want == "" {
			continue
		}
		called := false
		h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
		if diff := cmp.Diff(tt.want, invoke(t, adapter.New(h), tt.event)); diff != "" {
			t.Errorf("%s: response (-want +got):\n%s", tt.name, diff)
		}
		if called {
			t.Errorf("%s: the handler ran", tt.name)
		}
	}
}

// TestHandlerIgnoresContext: a handler that neither returns nor stops
// writing when its context ends has its response ended by the adapter half
// the margin before the deadline: the client gets what it had written, in
// a response that ends cleanly; its later writes fail; it is logged; and
// the next invocation is served as usual.
func TestHandlerIgnoresContext(t *testing.T) {
	for _, kind := range []struct {
		name  string
		event json.RawMessage
		want  string
	}{
		{"streamed", functionURLEvent("GET", "/", nil), `{"statusCode":200,"headers":{"Content-Type":"text/event-stream"}}` + nul8 + "data: 1\n\n"},
		{"buffered", httpAPIEvent("GET", "/", nil), `{"statusCode":200,"headers":{"Content-Type":"text/event-stream"},"body":"data: 1\n\n","isBase64Encoded":false}`},
	} {
		t.Run(kind.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs bytes.Buffer
				release := make(chan struct{})
				lateWrite := make(chan error, 1)
				stubborn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/event-stream")
					io.WriteString(w, "data: 1\n\n")
					w.(http.Flusher).Flush()
					<-release // ignores r.Context()
					_, err := io.WriteString(w, "data: 2\n\n")
					lateWrite <- err
				})
				mux := http.NewServeMux()
				mux.Handle("/", stubborn)
				mux.HandleFunc("/next", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "next") })
				a := adapter.New(mux, adapter.WithDeadlineMargin(2*time.Second), adapter.WithLogger(jsonLogger(&logs)))

				start := time.Now()
				ctx, cancel := context.WithTimeout(lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"}), 10*time.Second)
				defer cancel()
				resp, err := a.Invoke(ctx, kind.event)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp)
				if err != nil {
					t.Fatalf("the response ended with %v, want a clean end", err)
				}
				if diff := cmp.Diff(kind.want, string(got)); diff != "" {
					t.Errorf("response (-want +got):\n%s", diff)
				}
				if ended := time.Since(start); ended != 9*time.Second {
					t.Errorf("the response ended after %v, want 9s (half the 2s margin before the 10s deadline)", ended)
				}
				wantLog := []map[string]any{{"level": "WARN", "msg": "the handler ignored its context and was still running at the deadline margin: its response was ended",
					"request_id": "req-1", "method": "GET", "path": "/", "margin": float64(2 * time.Second)}}
				if diff := cmp.Diff(wantLog, logRecords(t, &logs)); diff != "" {
					t.Errorf("log (-want +got):\n%s", diff)
				}

				next := invoke(t, a, functionURLEvent("GET", "/next", nil))
				if want := `{"statusCode":200,"headers":{"Content-Type":"text/plain; charset=utf-8"}}` + nul8 + "next"; next != want {
					t.Errorf("the next invocation: %q, want %q", next, want)
				}
				close(release)
				if err := <-lateWrite; err == nil || err.Error() != "adapter: the handler did not return by the invocation's deadline margin; its response was ended" {
					t.Errorf("a write after the response was ended: %v", err)
				}
			})
		})
	}
}

// TestHandlerNeverAnswers: a handler that writes nothing and ignores its
// context gets a 504 in its place at the cut.
func TestHandlerNeverAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adapter.New(h, adapter.WithLogger(slog.New(slog.DiscardHandler))).Invoke(ctx, functionURLEvent("GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp)
		want := `{"statusCode":504,"headers":{"Content-Type":"application/json","X-Content-Type-Options":"nosniff"}}` + nul8 + `{"error":"the handler did not answer before the invocation's deadline"}` + "\n"
		if diff := cmp.Diff(want, string(got)); diff != "" {
			t.Errorf("response (-want +got):\n%s", diff)
		}
		close(release)
	})
}

// TestHTTPAPIDeadline: an HTTP API waits 30 s at most for its integration,
// so a handler behind one has its context done the margin before 30 s,
// whatever the function's timeout.
func TestHTTPAPIDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var doneAfter time.Duration
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			doneAfter = time.Since(start)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		invokeCtx(t, adapter.New(h), ctx, httpAPIEvent("GET", "/", nil))
		if doneAfter != 28*time.Second {
			t.Errorf("the handler's context was done after %v, want 28s", doneAfter)
		}
	})
}

func invokeCtx(t *testing.T, a *adapter.Adapter, ctx context.Context, event json.RawMessage) string {
	t.Helper()
	resp, err := a.Invoke(ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp)
	return string(b)
}

// TestPanicLogged: a panic is logged once, with its stack and the request
// id; a panic with http.ErrAbortHandler, net/http's quiet abort, is not.
func TestPanicLogged(t *testing.T) {
	var logs bytes.Buffer
	a := adapter.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			io.WriteString(w, "data: 1\n\n")
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}), adapter.WithLogger(jsonLogger(&logs)))
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-7"})
	if _, err := a.Invoke(ctx, functionURLEvent("GET", "/boom", nil)); err == nil {
		t.Error("a panic before the response: no error")
	}
	resp, err := a.Invoke(ctx, functionURLEvent("GET", "/abort", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp); err == nil {
		t.Error("an aborted response ended cleanly")
	}
	want := []map[string]any{{"level": "ERROR", "msg": "handler panicked", "request_id": "req-7", "method": "GET", "path": "/boom", "panic": "boom", "stack": true}}
	if diff := cmp.Diff(want, logRecords(t, &logs)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// TestBufferedPanic: a panic fails a buffered invocation even after the
// handler has written: a partial body is never sent as a whole one.
func TestBufferedPanic(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: 1\n\n")
		panic("boom")
	})
	_, err := adapter.New(h, adapter.WithLogger(slog.New(slog.DiscardHandler))).Invoke(context.Background(), albEvent("GET", "/", nil))
	var p *adapter.PanicError
	if !errors.As(err, &p) || err.Error() != "adapter: handler panicked: boom" {
		t.Errorf("error %v, want the panic", err)
	}
}
