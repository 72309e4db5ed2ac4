// Package adapter serves an http.Handler on AWS Lambda with response
// streaming, behind a function URL (InvokeMode RESPONSE_STREAM) or an API
// Gateway REST API whose integration streams (response transfer mode
// STREAM).
//
// Use it as the function's handler:
//
//	lambda.Start(adapter.New(h).Invoke)
//
// It does what aws-lambda-go's lambdaurl.Wrap does (an event in, a piped
// response out), and also:
//
//   - tells a function URL event from an API Gateway REST event by its shape
//     and answers each with its streaming response type, converting REST
//     events with aws-lambda-go-api-proxy's core.RequestAccessor;
//   - gives the handler a ResponseWriter that implements Flush and
//     FlushError, so http.NewResponseController(w).Flush works. Writes go
//     through an unbuffered pipe to the Runtime API as they are made;
//   - ends the handler's request context a margin before the invocation's
//     deadline, so an endless stream ends cleanly, on its own terms, and the
//     response completes, instead of being cut when Lambda times out;
//   - recovers a panic in the handler and reports it as a function error:
//     the invocation's error before the response began, or the Runtime API's
//     error trailers after;
//   - does not double cookies, which function URL events carry twice.
package adapter

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// DefaultDeadlineMargin is how long before the invocation's deadline the
// handler's request context is done, unless WithDeadlineMargin says
// otherwise. It leaves the handler time to finish its response and the
// runtime time to send it.
const DefaultDeadlineMargin = 2 * time.Second

// An Adapter serves one http.Handler on Lambda. Create one with New.
type Adapter struct {
	handler  http.Handler
	margin   time.Duration
	basePath string
}

// An Option configures an Adapter.
type Option func(*Adapter)

// WithDeadlineMargin sets how long before the invocation's deadline the
// handler's request context is done (default DefaultDeadlineMargin).
func WithDeadlineMargin(d time.Duration) Option {
	return func(a *Adapter) { a.margin = max(d, 0) }
}

// WithBasePath strips a base path from the paths of API Gateway REST events,
// for an API mapped under a path of a custom domain.
func WithBasePath(p string) Option {
	return func(a *Adapter) { a.basePath = p }
}

// New returns an Adapter that serves h.
func New(h http.Handler, opts ...Option) *Adapter {
	a := &Adapter{handler: h, margin: DefaultDeadlineMargin}
	for _, opt := range opts {
		opt(a)
	}
	return a
}

// ErrUnsupportedEvent is returned, wrapped, for an event that is neither a
// function URL event nor an API Gateway REST proxy event.
var ErrUnsupportedEvent = errors.New("adapter: unsupported event")

// eventShape holds the fields that tell the event kinds apart.
type eventShape struct {
	RawPath        string `json:"rawPath"`
	HTTPMethod     string `json:"httpMethod"`
	RequestContext struct {
		HTTP  *struct{} `json:"http"`
		Stage string    `json:"stage"`
		ELB   *struct{} `json:"elb"`
	} `json:"requestContext"`
}

// Invoke handles one invocation: it converts event to an *http.Request,
// serves it with the handler in a goroutine, and returns, as soon as the
// handler has written or flushed for the first time (or returned), a
// streaming response whose body is what the handler writes. Its signature
// suits lambda.Start.
//
// A function URL event gets an *events.LambdaFunctionURLStreamingResponse,
// an API Gateway REST event an *events.APIGatewayProxyStreamingResponse. Any
// other event gets an error wrapping ErrUnsupportedEvent.
func (a *Adapter) Invoke(ctx context.Context, event json.RawMessage) (io.Reader, error) {
	var shape eventShape
	if err := json.Unmarshal(event, &shape); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrUnsupportedEvent, err)
	}
	switch {
	case shape.RequestContext.HTTP != nil && shape.RawPath != "":
		var e events.LambdaFunctionURLRequest
		if err := json.Unmarshal(event, &e); err != nil {
			return nil, fmt.Errorf("adapter: decoding function URL event: %w", err)
		}
		req, err := functionURLRequest(ctx, &e)
		if err != nil {
			return nil, err
		}
		return a.serve(req, functionURLResponse)
	case shape.HTTPMethod != "" && shape.RequestContext.Stage != "" && shape.RequestContext.ELB == nil:
		var e events.APIGatewayProxyRequest
		if err := json.Unmarshal(event, &e); err != nil {
			return nil, fmt.Errorf("adapter: decoding API Gateway REST event: %w", err)
		}
		req, err := a.restRequest(ctx, &e)
		if err != nil {
			return nil, err
		}
		return a.serve(req, restResponse)
	case shape.RequestContext.ELB != nil:
		return nil, fmt.Errorf("%w: an ALB event (ALB does not stream responses; use a function URL)", ErrUnsupportedEvent)
	}
	return nil, fmt.Errorf("%w: want a function URL or API Gateway REST proxy event", ErrUnsupportedEvent)
}

// functionURLRequest converts a function URL event. Function URL events
// carry cookies both in a cookie header and in their cookies list; the
// request gets them once.
func functionURLRequest(ctx context.Context, e *events.LambdaFunctionURLRequest) (*http.Request, error) {
	body, err := eventBody(e.Body, e.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	target := e.RawPath
	if e.RawQueryString != "" {
		target += "?" + e.RawQueryString
	}
	req, err := http.NewRequestWithContext(ctx, e.RequestContext.HTTP.Method, "https://"+e.RequestContext.DomainName+target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("adapter: function URL event: %w", err)
	}
	for k, v := range e.Headers {
		switch {
		case strings.EqualFold(k, "Host"):
			req.Host = v // as net/http does, the Host header moves to req.Host
		case strings.EqualFold(k, "Cookie") && len(e.Cookies) > 0:
			// the cookies list below holds the same cookies
		default:
			req.Header.Add(k, v)
		}
	}
	if len(e.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(e.Cookies, "; "))
	}
	req.RequestURI = target
	req.RemoteAddr = remoteAddr(e.RequestContext.HTTP.SourceIP)
	return req, nil
}

// restRequest converts an API Gateway REST proxy event with
// aws-lambda-go-api-proxy, which resolves the path without the stage (and,
// with WithBasePath, without a custom domain's base path) and keeps
// multi-value headers and query parameters.
func (a *Adapter) restRequest(ctx context.Context, e *events.APIGatewayProxyRequest) (*http.Request, error) {
	var accessor core.RequestAccessor
	if a.basePath != "" {
		accessor.StripBasePath(a.basePath)
	}
	req, err := accessor.EventToRequestWithContext(ctx, *e)
	if err != nil {
		return nil, fmt.Errorf("adapter: API Gateway REST event: %w", err)
	}
	req.RemoteAddr = remoteAddr(e.RequestContext.Identity.SourceIP)
	return req, nil
}

func eventBody(body string, isBase64 bool) ([]byte, error) {
	if !isBase64 {
		return []byte(body), nil
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("adapter: decoding base64 body: %w", err)
	}
	return b, nil
}

// remoteAddr gives the client's IP address the form net/http gives
// RemoteAddr, host:port; Lambda does not say the port.
func remoteAddr(ip string) string {
	if ip == "" {
		return ""
	}
	return net.JoinHostPort(ip, "0")
}

// A prelude is what the response says before its body.
type prelude struct {
	status int
	header http.Header
}

// serve runs the handler and returns the response made by respond once the
// prelude is known. The request's context derives from the invocation's.
func (a *Adapter) serve(req *http.Request, respond func(prelude, io.Reader) io.Reader) (io.Reader, error) {
	ctx := req.Context()
	hctx, cancel := context.WithCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		hctx, cancel = context.WithDeadline(ctx, deadline.Add(-a.margin))
	}
	pr, pw := io.Pipe()
	w := &responseWriter{header: http.Header{}, pipe: pw, started: make(chan prelude, 1)}
	failed := make(chan error, 1)
	go func() {
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				err := fmt.Errorf("adapter: handler panicked: %v", p)
				// If the response has not begun, the invocation fails;
				// if it has, the runtime sends error trailers.
				w.once.Do(func() { failed <- err })
				pw.CloseWithError(err)
				return
			}
			w.begin(http.StatusOK) // a handler that wrote nothing still answers
			pw.Close()
		}()
		a.handler.ServeHTTP(w, req.WithContext(hctx))
	}()
	select {
	case p := <-w.started:
		return respond(p, pr), nil
	case err := <-failed:
		return nil, err
	}
}

// functionURLResponse makes a function URL's streaming response. Its headers
// are single-valued: repeated headers are joined with ", ", and Set-Cookie
// headers become the response's cookies.
func functionURLResponse(p prelude, body io.Reader) io.Reader {
	resp := &events.LambdaFunctionURLStreamingResponse{StatusCode: p.status, Body: body}
	for k, v := range p.header {
		if k == "Set-Cookie" {
			resp.Cookies = v
			continue
		}
		if resp.Headers == nil {
			resp.Headers = make(map[string]string, len(p.header))
		}
		resp.Headers[k] = strings.Join(v, ", ")
	}
	return resp
}

// restResponse makes an API Gateway REST streaming response, which has no
// default status and keeps multi-value headers.
func restResponse(p prelude, body io.Reader) io.Reader {
	resp := &events.APIGatewayProxyStreamingResponse{StatusCode: p.status, Body: body}
	if len(p.header) > 0 {
		resp.MultiValueHeaders = p.header
	}
	return resp
}

// responseWriter is the handler's http.ResponseWriter. The status and
// headers are frozen into the prelude at the first Write or Flush (or when
// the handler returns); the body goes into an unbuffered pipe that the
// runtime reads as it streams the response, so every write reaches the
// Runtime API as it is made, and Flush has nothing left to push.
type responseWriter struct {
	header  http.Header
	pipe    *io.PipeWriter
	status  int
	once    sync.Once // begins the response
	started chan prelude
}

func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader records the status the response will begin with. Like
// net/http's, it ignores informational (1xx) statuses and calls after the
// response has begun.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 200 && w.status == 0 {
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.begin(http.StatusOK)
	return w.pipe.Write(p)
}

// Flush begins the response if it has not begun. Written bytes are already
// on their way.
func (w *responseWriter) Flush() { w.begin(http.StatusOK) }

// FlushError is Flush for http.ResponseController.
func (w *responseWriter) FlushError() error {
	w.Flush()
	return nil
}

// begin freezes the prelude, once, with the status set by WriteHeader or
// else status.
func (w *responseWriter) begin(status int) {
	w.once.Do(func() {
		if w.status != 0 {
			status = w.status
		}
		w.started <- prelude{status: status, header: w.header.Clone()}
	})
}
