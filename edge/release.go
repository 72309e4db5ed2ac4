//go:build js && wasm && !edgetest

package main

import (
	"context"
	"net/http"

	"github.com/tickstream/tickstream/handler"
)

// testOptions, testContext and testHandler change nothing outside the
// tests' build (testing.go).
func testOptions() []handler.Option { return nil }

func testHandler(h http.Handler) http.Handler { return h }

func testContext(ctx context.Context, _ *http.Request) context.Context { return ctx }
