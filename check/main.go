// Command check tells what the path between a server and this client does
// to event streams, as a browser would get them. It has two modes.
//
//	go run ./check [flags] URL
//
// The battery: URL is tickstream's base URL as a client sees it (direct,
// through a reverse proxy, CDN or gateway, under a prefix, or a Lambda
// function URL). In about 5 s it reads nine streams at once, some asking
// for compression as Chromium does (Accept-Encoding: gzip, deflate, br,
// zstd) and some not, and prints one line per finding, with a verdict and,
// where one is known, the fix for the software the responses show:
//
//	buffering    are events without X-Accel-Buffering relayed live, batched, buffered or held to the end?
//	accel        and events with X-Accel-Buffering: no?
//	compression  is the stream compressed, and does that hold events (or each event's tail)?
//	latency      round trip, first event, and how late events arrive by the server's clock
//	post         is a POST-answered stream (LLM tokens, MCP) relayed live?
//	resume       does Last-Event-ID reach the server?
//	headers      do Content-Type and Cache-Control arrive as sent, or from a cache?
//	protocol     HTTP/1.1 or HTTP/2, TLS or not
//	cap          (with -duration) does the path cut a busy stream at a fixed age?
//	idle         (with -idle) when does the path cut a silent stream?
//	end          does a finished stream's end arrive with its last event?
//
//	go run ./check -stream [-X METHOD] [-H 'Name: value']... [-d DATA|@FILE] [-compare URL2] URL
//
// Stream mode: URL is any streaming endpoint (an OpenAI-compatible API,
// an MCP server, NDJSON, text, any text/event-stream). It sends the request
// (flags named as curl's) as EventSource or fetch would, twice at once,
// with and without compression, and with -compare once more to URL2 at the
// same moment; it divides the body into records by its Content-Type and
// judges delivery (from the arrival pattern, or by what URL's path adds
// beside URL2's), compression, headers, protocol and end.
//
// The exit status is 0 when no finding breaks live streaming, 1 when one
// does, and 2 when URL cannot be reached, is not a tickstream server (in
// the battery) or not a stream, or answers past the check's limits (a
// stall, an endless body, a redirect to another origin): the message names
// the request.
//
// The files: main.go (flags), client.go (the HTTP client), fetch.go and
// capture.go (bounded reading of any response), decode.go (decoding as
// browsers do), records.go (SSE, NDJSON and text records, timed),
// analysis.go (pure functions over arrival traces), battery.go and
// batteryfindings.go (tickstream's battery), streammode.go (stream mode),
// findings.go and fixes.go (shared findings, products and their settings),
// output.go and report.go (text, JSON and HTML).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are what the command line sets.
type options struct {
	asJSON   bool
	idle     time.Duration
	duration time.Duration
	caCert   string // a PEM file of CA certificates to trust
	insecure bool
	proxy    string // a forward proxy's URL; "" for the environment's
	follow   bool   // follow redirects to other origins
	report   string // an HTML file to write
	limits   limits

	// Stream mode.
	stream  bool
	compare string   // a URL to read beside URL
	method  string   // -X
	headers []string // -H
	data    string   // -d
}

// run runs the command and returns its exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWithLimits(ctx, args, stdout, stderr, defaultLimits)
}

// runWithLimits is run with other time limits, for tests.
func runWithLimits(ctx context.Context, args []string, stdout, stderr io.Writer, lim limits) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{limits: lim}
	fs.BoolVar(&o.asJSON, "json", false, "print the report as one JSON object")
	fs.DurationVar(&o.duration, "duration", 0, "with the battery: also hold a stream of an event a second this long (such as 2m) to find a cap on a response's whole time; with -stream: read the stream this long (default 30s)")
	fs.DurationVar(&o.idle, "idle", 0, "with the battery: also open a silent stream and wait this long (such as 2m) for the path to cut it")
	fs.StringVar(&o.caCert, "cacert", "", "trust the CA certificates in this PEM `file` too (a private CA's)")
	fs.BoolVar(&o.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fs.StringVar(&o.proxy, "proxy", "", "go through this forward proxy (`URL`, http:// or https://) for every target, loopback too; default: HTTPS_PROXY, HTTP_PROXY and NO_PROXY")
	fs.BoolVar(&o.follow, "follow", false, "follow redirects to another origin (by default the check stops and names it)")
	fs.StringVar(&o.report, "report", "", "also write the report as a self-contained HTML `file` with a timeline of every stream")
	fs.BoolVar(&o.stream, "stream", false, fmt.Sprintf("read the one stream at URL, any server's (SSE, NDJSON or text), instead of tickstream's battery; an endless stream is read for %v", lim.stream))
	fs.StringVar(&o.compare, "compare", "", "with -stream: send the same request to this `URL` (the server directly, or another path) at the same moment, and report what URL's path adds to each event")
	fs.StringVar(&o.method, "X", "", "with -stream: the request's `method` (default GET, or POST with -d), as curl's -X")
	fs.Func("H", "with -stream: add a request header, `'Name: value'` (repeatable), as curl's -H", func(s string) error {
		o.headers = append(o.headers, s)
		return nil
	})
	fs.StringVar(&o.data, "d", "", "with -stream: send this request body (`DATA`, or @FILE for a file's), as curl's -d: it implies POST and Content-Type: application/x-www-form-urlencoded unless -H sets one")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./check [flags] URL\n"+
			"       go run ./check -stream [-X METHOD] [-H 'Name: value']... [-d DATA|@FILE] [-compare URL2] [flags] URL\n\n"+
			"Tells what the path to a tickstream server does to event streams; with\n"+
			"-stream, what the path does to any one stream (SSE, NDJSON, text).\n"+
			"Exit status: 0 live, 1 a finding breaks live streaming, 2 not a reachable\n"+
			"tickstream or stream, or it answered past the check's limits (the message\n"+
			"says which).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	var (
		rep Report
		err error
	)
	if o.stream {
		rep, err = checkStream(ctx, fs.Arg(0), o)
	} else if o.compare != "" || o.method != "" || len(o.headers) > 0 || o.data != "" {
		err = errors.New("-compare, -X, -H and -d go with -stream")
	} else {
		rep, err = check(ctx, fs.Arg(0), o)
	}
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	if o.report != "" {
		if err := os.WriteFile(o.report, renderReport(rep), 0o644); err != nil {
			fmt.Fprintln(stderr, "check:", err)
			return 2
		}
	}
	if o.asJSON {
		printJSON(stdout, rep)
	} else {
		printReport(stdout, rep)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// check runs the battery against rawURL.
func check(ctx context.Context, rawURL string, o options) (Report, error) {
	base, err := baseURL(rawURL)
	if err != nil {
		return Report{}, err
	}
	if o.idle < 0 || o.duration < 0 {
		return Report{}, errors.New("-idle and -duration must not be negative")
	}
	tlsConfig, err := clientTLS(o)
	if err != nil {
		return Report{}, err
	}
	client, proxy, err := newClient(base, o, tlsConfig)
	if err != nil {
		return Report{}, err
	}
	c := &checker{base: base, client: client, tlsConfig: tlsConfig, proxy: proxy, idle: o.idle, duration: o.duration, limits: o.limits}
	if o.follow {
		if c.base, err = c.follow(ctx); err != nil {
			return Report{}, err
		}
	}
	rep, err := c.run(ctx)
	if c.base != base {
		rep.RedirectedFrom = base
	}
	return rep, err
}
