// Command lambda is tickstream's AWS Lambda function: build it as bootstrap
// for the provided.al2023 runtime with
//
//	GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./lambda
//
// (make build-TickstreamFunction, which sam build runs, does exactly that).
// It serves tickstream's routes through a function URL with InvokeMode
// RESPONSE_STREAM or an API Gateway REST API with response streaming, telling
// the two apart by their events. Each invocation serves one request; an
// /events stream ends cleanly TICKSTREAM_DEADLINE_MARGIN (default 2s) before
// the function's timeout, and the browser reconnects with Last-Event-ID.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/lambda/adapter"
)

func main() {
	a, err := newAdapter(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickstream:", err)
		os.Exit(1)
	}
	lambda.Start(a.Invoke)
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
	return adapter.New(h, adapter.WithDeadlineMargin(margin), adapter.WithBasePath(getenv("TICKSTREAM_BASE_PATH"))), nil
}
