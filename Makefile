# tickstream's two promises: `make run` serves the routes on :8080 and
# `make test` runs every check CI runs. make test needs Go, Node.js and npm
# (js/wasm, the eventsource client test, and the edge tests, whose workerd,
# Deno, Bun and wrangler npm installs), Chromium (the browser tests),
# nginx, HAProxy, Apache httpd, Caddy, Varnish and Squid (the proxy tests),
# and the tools pinned in go.mod, which it installs; docs/testing.md says
# how to skip the browser and proxy tests.

GO       ?= go
GOROOT   := $(shell $(GO) env GOROOT)
BIN      := $(CURDIR)/.bin
# Packages without sockets: their tests also run under WebAssembly.
WASM_PKGS := ./sse/... ./handler/... ./internal/stream/... ./internal/wiretest/... ./internal/clock/... ./lambda/adapter/...

.PHONY: run test check test-native test-load test-js test-wasip1 fuzz bench edge build-TickstreamFunction

run:
	$(GO) run ./local

test: check test-native test-load test-js test-wasip1 fuzz

check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt -l:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	GOOS=js GOARCH=wasm $(GO) vet ./edge
	GOOS=js GOARCH=wasm $(GO) vet -tags edgetest ./edge
	$(GO) build -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck
	GOOS=js GOARCH=wasm $(BIN)/staticcheck ./edge
	GOOS=js GOARCH=wasm $(BIN)/staticcheck -tags edgetest ./edge

test-native:
	$(GO) test -race -count=1 ./...

# The load test holds more goroutines than the race detector allows, so it
# runs on its own, without -race.
test-load:
	$(GO) test -count=1 -run '^TestLoad$$' -v ./local

test-js:
	GOOS=js GOARCH=wasm $(GO) test -count=1 -exec="$(GOROOT)/lib/wasm/go_js_wasm_exec" $(WASM_PKGS)

# go_wasip1_wasm_exec runs the wazero on PATH: the one pinned in go.mod.
$(BIN)/wazero: go.mod go.sum
	GOBIN=$(BIN) $(GO) install github.com/tetratelabs/wazero/cmd/wazero

test-wasip1: $(BIN)/wazero
	PATH="$(BIN):$$PATH" GOOS=wasip1 GOARCH=wasm GOWASIRUNTIME=wazero \
		$(GO) test -count=1 -exec="$(GOROOT)/lib/wasm/go_wasip1_wasm_exec" $(WASM_PKGS)

# Each fuzz target runs briefly on top of its committed seed corpus
# (testdata/fuzz); run them longer with FUZZTIME=10m make fuzz. The default
# is a count of executions, not a duration: Go 1.26's fuzzing coordinator
# can fail a target with "context deadline exceeded" when a duration ends
# while a worker is busy on a loaded machine (go.dev/issue/75804, fixed in
# Go 1.27); a count has no deadline to race.
FUZZTIME ?= 10000x
FUZZ_TARGETS := ./sse:FuzzAppendEvent ./sse:FuzzParser ./handler:FuzzParams ./handler:FuzzParseLastEventID ./handler:FuzzEventsRequest
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "go test -run '^$$' -fuzz '^$${t#*:}$$' -fuzztime $(FUZZTIME) $${t%%:*}"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) $${t%%:*}; \
	done

# edge/dist/: the handler built for WebAssembly, its glue and an entry
# point for each fetch runtime (Cloudflare Workers and workerd, Deno, Bun).
edge:
	mkdir -p edge/dist
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags=-s -o edge/dist/tickstream.wasm ./edge
	cp "$(GOROOT)/lib/wasm/wasm_exec.js" edge/glue.mjs edge/worker.mjs edge/deno.mjs edge/bun.mjs edge/workerd.capnp edge/dist/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./sse/... ./handler/... ./internal/detach/... ./local/...

# sam build (Metadata: BuildMethod: makefile) runs this with ARTIFACTS_DIR set;
# the function runs on provided.al2023, arm64, as a binary named bootstrap.
# Run by hand, it writes where sam build would.
ARTIFACTS_DIR ?= $(CURDIR)/.aws-sam/build/TickstreamFunction
build-TickstreamFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
		-o "$(ARTIFACTS_DIR)/bootstrap" ./lambda
