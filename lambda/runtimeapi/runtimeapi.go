// Package runtimeapi runs a Lambda function's invocations on the Lambda
// Runtime API, one after another, as aws-lambda-go's lambda.Start does for
// a handler that returns an io.Reader, with one difference: an
// invocation's response is sent within its deadline. aws-lambda-go posts a
// response with no deadline, so a streamed response whose client stopped
// reading (the Runtime API stops taking its bytes) holds its invocation,
// and the function, until Lambda's hard timeout; here the post is given up
// just before the deadline, its connection closed, and the function goes
// on to its next invocation.
//
// The handler gets what lambda.Start gives it: a context with the
// invocation's deadline and its lambdacontext.LambdaContext (request id,
// function ARN, client context, Cognito identity), and the event. Its
// response's Content-Type is its ContentType method's, if it has one (as a
// streamed HTTP response's does); a read error from it ends the response
// with the error trailers Lambda reports as a function error; a handler
// error is posted as the invocation's error. The response is closed after
// it is sent, if it is an io.Closer.
package runtimeapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// A Handler serves one invocation's event.
type Handler func(ctx context.Context, event json.RawMessage) (io.Reader, error)

// PostSlack is how long before an invocation's deadline its response's
// post is given up, if the Runtime API has not taken it all by then: the
// function then asks for its next invocation before Lambda's timeout.
const PostSlack = 250 * time.Millisecond

// maxEvent bounds an invocation's event: Lambda's synchronous payload
// limit is 6 MB.
const maxEvent = 6 << 20

const apiVersion = "2018-06-01"

// Start serves invocations from the Runtime API that AWS_LAMBDA_RUNTIME_API
// names until it fails, then exits the process with status 1, as
// lambda.Start does.
func Start(h Handler) {
	err := Serve(context.Background(), os.Getenv("AWS_LAMBDA_RUNTIME_API"), h, slog.Default())
	slog.Error("the Runtime API failed", "err", err)
	os.Exit(1)
}

// Serve serves invocations from the Runtime API at api (host:port) with h,
// one at a time, until ctx is done or the Runtime API cannot be reached.
// A response the Runtime API did not take within its invocation's
// deadline is logged to logger, and the next invocation served.
func Serve(ctx context.Context, api string, h Handler, logger *slog.Logger) error {
	if api == "" {
		return errors.New("runtimeapi: AWS_LAMBDA_RUNTIME_API is not set: not running on Lambda")
	}
	c := &client{base: "http://" + api + "/" + apiVersion + "/runtime/", http: &http.Client{Transport: &http.Transport{}}}
	for {
		inv, err := c.next(ctx)
		if err != nil {
			return err
		}
		if err := c.serve(ctx, inv, h); err != nil {
			logger.Error("the invocation's answer did not reach the Runtime API", "request_id", inv.id, "err", err)
		}
	}
}

// A client talks to the Runtime API.
type client struct {
	base string
	http *http.Client
}

// An invocation is one event the Runtime API handed out.
type invocation struct {
	id       string
	deadline time.Time
	header   http.Header
	event    []byte
}

// next waits for the next invocation.
func (c *client) next(ctx context.Context) (*invocation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"invocation/next", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("runtimeapi: the next invocation: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("runtimeapi: the next invocation: %s", resp.Status)
	}
	event, err := io.ReadAll(io.LimitReader(resp.Body, maxEvent+1))
	if err != nil {
		return nil, fmt.Errorf("runtimeapi: reading the next invocation: %w", err)
	}
	if len(event) > maxEvent {
		return nil, fmt.Errorf("runtimeapi: an event over %d bytes", maxEvent)
	}
	ms, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("runtimeapi: invocation %s: Lambda-Runtime-Deadline-Ms %q", resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), resp.Header.Get("Lambda-Runtime-Deadline-Ms"))
	}
	return &invocation{id: resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), deadline: time.UnixMilli(ms), header: resp.Header, event: event}, nil
}

// serve runs h on inv and posts its answer, within inv's deadline.
func (c *client) serve(ctx context.Context, inv *invocation, h Handler) error {
	lc := &lambdacontext.LambdaContext{AwsRequestID: inv.id, InvokedFunctionArn: inv.header.Get("Lambda-Runtime-Invoked-Function-Arn")}
	if err := unmarshalHeader(inv.header, "Lambda-Runtime-Client-Context", &lc.ClientContext); err != nil {
		return c.fail(ctx, inv, err)
	}
	if err := unmarshalHeader(inv.header, "Lambda-Runtime-Cognito-Identity", &lc.Identity); err != nil {
		return c.fail(ctx, inv, err)
	}
	if trace := inv.header.Get("Lambda-Runtime-Trace-Id"); trace != "" {
		os.Setenv("_X_AMZN_TRACE_ID", trace) // for the X-Ray SDK, as aws-lambda-go does
	}
	hctx, cancel := context.WithDeadline(lambdacontext.NewContext(ctx, lc), inv.deadline)
	defer cancel()
	resp, err := call(hctx, h, inv.event)
	if err != nil {
		return c.fail(ctx, inv, err)
	}
	if closer, ok := resp.(io.Closer); ok {
		defer closer.Close()
	}
	contentType := "application/octet-stream"
	if ct, ok := resp.(interface{ ContentType() string }); ok {
		contentType = ct.ContentType()
	}
	body := &trailingReader{r: resp, trailer: http.Header{errorTypeTrailer: nil, errorBodyTrailer: nil}}
	return c.post(ctx, inv, "response", contentType, body, nil, body.trailer)
}

// call runs h, turning a panic into an error.
func call(ctx context.Context, h Handler, event []byte) (resp io.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("runtimeapi: the handler panicked: %v", p)
		}
	}()
	return h(ctx, event)
}

// The trailers by which a response reports that it broke off.
const (
	errorTypeTrailer = "Lambda-Runtime-Function-Error-Type"
	errorBodyTrailer = "Lambda-Runtime-Function-Error-Body"
)

// fail posts err as inv's error.
func (c *client) fail(ctx context.Context, inv *invocation, err error) error {
	report := errorReport(err)
	b, _ := json.Marshal(report)
	header := http.Header{errorTypeTrailer: {report.ErrorType}}
	return c.post(ctx, inv, "error", "application/json", bytes.NewReader(b), header, nil)
}

// post posts body, with header and then trailer, as inv's endpoint
// ("response" or "error"), bounded by inv's deadline less PostSlack: a
// Runtime API that stops taking the body has its connection closed then.
func (c *client) post(ctx context.Context, inv *invocation, endpoint, contentType string, body io.Reader, header, trailer http.Header) error {
	ctx, cancel := context.WithDeadline(ctx, inv.deadline.Add(-PostSlack))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"invocation/"+inv.id+"/"+endpoint, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	req.Trailer = trailer
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("posting its %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // the status says it all
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("posting its %s: %s", endpoint, resp.Status)
	}
	return nil
}

// unmarshalHeader decodes the JSON of h's header name into v, if it is set.
func unmarshalHeader(h http.Header, name string, v any) error {
	s := h.Get(name)
	if s == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("runtimeapi: %s: %w", name, err)
	}
	return nil
}

// A report is an error as Lambda reports it.
type report struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// errorReport reports err, its type named as aws-lambda-go names it.
func errorReport(err error) report {
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return report{ErrorMessage: err.Error(), ErrorType: t.Name()}
}

// A trailingReader reads a response, and ends it at the first read error
// with the trailers Lambda reports as the function's error.
type trailingReader struct {
	r       io.Reader
	trailer http.Header
}

func (t *trailingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	rep := errorReport(err)
	b, _ := json.Marshal(rep)
	t.trailer.Set(errorTypeTrailer, rep.ErrorType)
	t.trailer.Set(errorBodyTrailer, base64.StdEncoding.EncodeToString(b))
	return n, io.EOF
}
