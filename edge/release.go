//go:build js && wasm && !edgetest

package main

import (
	"context"
	"net/http"

	"github.com/tickstream/tickstream/handler"
)

// testOptions and testContext change nothing outside the tests' build
// (testing.go).
func testOptions() []handler.Option { return nil }

func testContext(ctx context.Context, _ *http.Request) context.Context { return ctx }
