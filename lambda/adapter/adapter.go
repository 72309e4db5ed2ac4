// Package adapter serves an http.Handler on AWS Lambda, behind every HTTP
// event source: a function URL, an API Gateway REST API, an API Gateway
// HTTP API (payload format 2.0 or 1.0) and an Application Load Balancer.
//
// Use it as the function's handler:
//
//	runtimeapi.Start(adapter.New(h).Invoke)
//
// (package tickstream/lambda/runtimeapi; aws-lambda-go's lambda.Start works
// too, but waits forever for a Runtime API that stops taking a stalled
// client's stream).
//
// It tells the sources apart by their events, and answers each the way it
// expects, in the same function:
//
//   - a function URL (InvokeMode RESPONSE_STREAM) and a REST API (an
//     integration whose response transfer mode is STREAM) get a streamed
//     response: every write reaches the Runtime API as it is made, through
//     an unbuffered pipe, and Flush (http.NewResponseController(w).Flush)
//     has nothing left to push;
//   - an HTTP API and an ALB cannot relay a stream: they get the whole
//     response once the handler returns, up to their limit (6 MB for an
//     HTTP API, as for any synchronous invocation; 1 MB for an ALB). A
//     response that outgrows it is replaced by a 502 with a short JSON
//     error, and logged, never cut and passed off as whole. An HTTP API
//     waits for its integration 30 s at most, so its invocations count as
//     ending then if the function's timeout is later.
//
// Events that are not HTTP requests (SQS, S3, authorizers, ...) fail with
// an UnsupportedEventError. Events that are HTTP requests but that net/http
// would refuse (an invalid path escape, an invalid base64 body) get 400.
//
// The request is what net/http would make of the same HTTP request: the
// path as the client sent it, with a named HTTP API stage and the adapter's
// base path (WithBasePath) removed as whole segments; Host in r.Host;
// query parameters, headers and cookies once each. EventFromContext gives
// the handler the event itself.
//
// The response writer behaves as net/http's does where Lambda allows (see
// responseWriter): no body for HEAD, 204 or 304; a sniffed Content-Type; a
// panic on an invalid status code. Lambda cannot send trailers or
// informational (1xx) responses: they are dropped.
//
// The handler's request context is done a margin (WithDeadlineMargin)
// before the invocation's deadline, so an endless stream can end cleanly on
// its own terms and the client reconnect. A handler that ignores it has its
// response ended by the adapter half the margin before the deadline: the
// client sees the response end after the last complete write, the
// handler's later writes fail, and the adapter logs it. The next invocation
// is not affected.
//
// A panic in the handler is logged once, with its stack and the request
// id, and reported as a function error: the invocation's error before a
// streamed response began, or the Runtime API's error trailers after.
package adapter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// DefaultDeadlineMargin is how long before the invocation's deadline the
// handler's request context is done, unless WithDeadlineMargin says
// otherwise. It leaves the handler time to finish its response and the
// runtime time to send it.
const DefaultDeadlineMargin = 2 * time.Second

// httpAPITimeout is the longest an HTTP API waits for its integration.
const httpAPITimeout = 30 * time.Second

// An Adapter serves one http.Handler on Lambda. Create one with New.
type Adapter struct {
	handler  http.Handler
	margin   time.Duration
	basePath string
	logger   *slog.Logger
}

// An Option configures an Adapter.
type Option func(*Adapter)

// WithDeadlineMargin sets how long before the invocation's deadline the
// handler's request context is done (default DefaultDeadlineMargin).
func WithDeadlineMargin(d time.Duration) Option {
	return func(a *Adapter) { a.margin = max(d, 0) }
}

// WithBasePath removes a base path from the start of every request's path,
// as whole segments: with "/api", "/api/events" is served as "/events" and
// "/api" as "/", while "/apiary" is left as it is. Use it for an API mapped
// under a path of a custom domain, or a CloudFront behaviour that forwards
// a path prefix.
func WithBasePath(p string) Option {
	return func(a *Adapter) {
		p = strings.Trim(p, "/")
		if p != "" {
			p = "/" + p
		}
		a.basePath = p
	}
}

// WithLogger sets where the adapter logs panics, handlers that outlive
// their deadline and responses too large for their source (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(a *Adapter) { a.logger = l }
}

// New returns an Adapter that serves h.
func New(h http.Handler, opts ...Option) *Adapter {
	a := &Adapter{handler: h, margin: DefaultDeadlineMargin, logger: slog.Default()}
	for _, opt := range opts {
		opt(a)
	}
	return a
}

// Invoke handles one invocation: it converts the event to an
// *http.Request, serves it with the handler in a goroutine, and returns the
// response in the form the event's source expects. A streamed response is
// returned as soon as the handler has written or flushed for the first
// time (or returned), and its body is what the handler writes; a buffered
// one once the handler has returned. Its signature suits runtimeapi.Start
// and lambda.Start.
func (a *Adapter) Invoke(ctx context.Context, payload json.RawMessage) (io.Reader, error) {
	e, err := parseEvent(payload)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, eventKey{}, e)
	h := a.handler
	req, err := a.request(ctx, e)
	if err != nil {
		var bad *badRequest
		if !errors.As(err, &bad) {
			return nil, err
		}
		p, body := jsonError(http.StatusBadRequest, "bad request: "+bad.reason)
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range p.header {
				w.Header()[k] = v
			}
			w.WriteHeader(p.status)
			io.WriteString(w, body)
		})
		req = (&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Header: http.Header{}, Body: http.NoBody}).WithContext(ctx)
	}
	return a.serve(ctx, e, req, h)
}

// errDeadlineMargin is the cause of a handler's context ending at the
// deadline margin; errOutlived ends the response of a handler that ignored
// it.
var (
	errDeadlineMargin = errors.New("adapter: the invocation's deadline margin was reached")
	errOutlived       = errors.New("adapter: the handler did not return by the invocation's deadline margin; its response was ended")
)

// A PanicError reports a handler's panic as the invocation's error (type
// PanicError in Lambda's report).
type PanicError struct {
	Value any // what the handler panicked with
}

func (e *PanicError) Error() string { return fmt.Sprintf("adapter: handler panicked: %v", e.Value) }

// serve runs h for req and returns e's source's response. The handler's
// context derives from ctx, the invocation's.
func (a *Adapter) serve(ctx context.Context, e *Event, req *http.Request, h http.Handler) (io.Reader, error) {
	deadline, hasDeadline := ctx.Deadline()
	if e.Source == HTTPAPI {
		if limit := time.Now().Add(httpAPITimeout); !hasDeadline || limit.Before(deadline) {
			deadline, hasDeadline = limit, true
		}
	}
	hctx, cancel := context.WithCancelCause(ctx)
	release := func() {}
	if hasDeadline {
		var stop context.CancelFunc
		hctx, stop = context.WithDeadlineCause(hctx, deadline.Add(-a.margin), errDeadlineMargin)
		release = func() { stop() }
	}

	started := make(chan prelude, 1)
	failed := make(chan error, 1)
	var (
		s   sink
		pr  *io.PipeReader
		buf *bufferSink
	)
	if e.Source.streams() {
		var pw *io.PipeWriter
		pr, pw = io.Pipe()
		s = pipeSink{pw}
	} else {
		buf = &bufferSink{limit: bufferLimit(e.Source)}
		s = buf
	}
	w := newResponseWriter(req.Method, s, started)
	requestID := ""
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		requestID = lc.AwsRequestID
	}

	if hasDeadline {
		cut := time.AfterFunc(time.Until(deadline.Add(-a.margin/2)), func() {
			p, msg := jsonError(http.StatusGatewayTimeout, "the handler did not answer before the invocation's deadline")
			w.abort(errOutlived, p, msg, func() {
				a.logger.Warn("the handler ignored its context and was still running at the deadline margin: its response was ended",
					"request_id", requestID, "method", req.Method, "path", req.URL.Path, "margin", a.margin)
			})
		})
		releaseContext := release
		release = func() { cut.Stop(); releaseContext() }
	}
	go func() {
		<-w.done
		if err := w.result(); err != errHandlerReturned {
			cancel(err) // the response was ended for the handler: say why
		}
		cancel(nil)
		release()
	}()

	go func() {
		defer func() {
			p := recover()
			if p == nil {
				w.finish()
				return
			}
			err := &PanicError{Value: p}
			if p != http.ErrAbortHandler { // net/http's way to abort quietly
				a.logger.Error("handler panicked", "request_id", requestID, "method", req.Method, "path", req.URL.Path,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
			w.fail(err, failed, e.Source.streams())
		}()
		h.ServeHTTP(w, req.WithContext(hctx))
	}()

	if e.Source.streams() {
		select {
		case err := <-failed:
			return nil, err
		case p := <-started:
			head, err := streamedPrelude(e.Source, p)
			if err != nil {
				a.logger.Error("response not sent", "request_id", requestID, "source", e.Source.String(), "err", err)
				pr.CloseWithError(err) // the handler's writes fail
				pe, msg := jsonError(http.StatusBadGateway, err.Error())
				head, _ = streamedPrelude(e.Source, pe)
				return &streamedResponse{prelude: io.MultiReader(bytes.NewReader(head), strings.NewReader(msg)), body: emptyPipe()}, nil
			}
			return &streamedResponse{prelude: bytes.NewReader(head), body: pr}, nil
		}
	}

	<-w.done
	select {
	case err := <-failed:
		return nil, err
	default:
	}
	p := <-started
	var out []byte
	err := w.result()
	if errors.Is(err, errTooLarge) {
		err = fmt.Errorf("%w: the handler wrote more than the %d bytes %s takes from Lambda", errTooLarge, bufferLimit(e.Source), e.Source.article())
	} else {
		out, err = bufferedResponse(e, p, buf.buf.Bytes())
	}
	if err != nil {
		a.logger.Error("response not sent", "request_id", requestID, "source", e.Source.String(), "err", err)
		pe, msg := jsonError(http.StatusBadGateway, err.Error())
		if out, err = bufferedResponse(e, pe, []byte(msg)); err != nil {
			return nil, err
		}
	}
	return jsonResponse{bytes.NewReader(out)}, nil
}

// jsonResponse is a buffered response: a JSON document.
type jsonResponse struct{ *bytes.Reader }

// ContentType tells the runtime the response is JSON.
func (jsonResponse) ContentType() string { return "application/json" }

// emptyPipe returns a pipe reader at its end.
func emptyPipe() *io.PipeReader {
	r, w := io.Pipe()
	w.Close()
	return r
}
