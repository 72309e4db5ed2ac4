// Command lambda is tickstream's AWS Lambda function: build it as bootstrap
// for the provided.al2023 runtime with
//
//	GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./lambda
//
// (make build-TickstreamFunction, which sam build runs, does exactly that).
// It serves tickstream's routes to every HTTP event source, telling them
// apart by their events: streamed through a function URL with InvokeMode
// RESPONSE_STREAM or an API Gateway REST API whose integration streams,
// buffered through an API Gateway HTTP API or an Application Load Balancer.
// Each invocation serves one request; an /events stream ends cleanly
// TICKSTREAM_DEADLINE_MARGIN (default 2s) before the function's timeout, and
// the browser reconnects with Last-Event-ID. TICKSTREAM_BASE_PATH (default
// none) is removed from the start of every path, as whole segments, for
// routes served under a path prefix (a custom domain's API mapping, a
// CloudFront behaviour).
package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/lambda/adapter"
	"github.com/tickstream/tickstream/lambda/runtimeapi"
)

func main() {
	a, err := newAdapter(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickstream:", err)
		os.Exit(1)
	}
	runtimeapi.Start(a.Invoke)
}

// newAdapter builds the function's adapter from its environment.
func newAdapter(getenv func(string) string) (*adapter.Adapter, error) {
	margin := adapter.DefaultDeadlineMargin
	if s := getenv("TICKSTREAM_DEADLINE_MARGIN"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("TICKSTREAM_DEADLINE_MARGIN=%q: want a duration such as 2s", s)
		}
		margin = d
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	h := handler.New(handler.WithLogger(logger))
	return adapter.New(h,
		adapter.WithDeadlineMargin(margin),
		adapter.WithBasePath(getenv("TICKSTREAM_BASE_PATH")),
		adapter.WithLogger(logger)), nil
}
