// Command check tells what the path between a tickstream server and this
// client does to event streams:
//
//	go run ./check [-json] [-idle 2m] URL
//
// URL is tickstream's base URL as a client sees it: direct, through a
// reverse proxy, CDN or gateway, under a prefix, or a Lambda function URL.
// In about 10 s it reads a few streams and prints one line per finding,
// with a verdict and, where one is known, the fix:
//
//	buffering    are events without X-Accel-Buffering relayed live, batched or buffered?
//	accel        and events with X-Accel-Buffering: no?
//	compression  is the stream compressed, and does that hold events?
//	resume       does Last-Event-ID reach the server?
//	headers      do Content-Type and Cache-Control arrive as sent?
//	protocol     HTTP/1.1 or HTTP/2, TLS or not
//	idle         (with -idle) when does the path cut a silent stream?
//	end          does a finished stream's end arrive with its last event?
//
// The exit status is 0 when no finding breaks live streaming, 1 when one
// does, and 2 when URL cannot be reached or is not a tickstream server.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command and returns its exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	idle := fs.Duration("idle", 0, "also open a silent stream and wait this long (such as 2m) for the path to cut it")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./check [-json] [-idle d] URL\n\n"+
			"Tells what the path to a tickstream server does to event streams.\n"+
			"Exit status: 0 live, 1 a finding breaks live streaming, 2 not a reachable tickstream.\n\n")
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
	base, err := baseURL(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	if *idle < 0 {
		fmt.Fprintln(stderr, "check: -idle must not be negative")
		return 2
	}
	c := &checker{base: base, client: newClient(), idle: *idle}
	rep, err := c.run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep) //nolint:errcheck // stdout
	} else {
		printReport(stdout, rep)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// baseURL checks that s is an http or https URL and returns it without a
// trailing slash, query or fragment.
func baseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/"), nil
}

// newClient returns the client the battery uses: HTTP/2 where the server
// offers it over TLS, as browsers get it, and no transparent compression,
// so that the check sees what the path sends.
func newClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	tr.ForceAttemptHTTP2 = true
	return &http.Client{Transport: tr, Timeout: 0}
}

// printReport writes one line per finding, and its fix on the next.
func printReport(w io.Writer, rep Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n", rep.URL)
	for _, f := range rep.Checks {
		mark := "ok"
		if !f.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, f.Name, f.Verdict, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(tw, "\t\tfix:\t%s\n", f.Fix)
		}
	}
	tw.Flush()
	if rep.OK {
		fmt.Fprintln(w, "streams reach this client live")
	} else {
		fmt.Fprintln(w, "the path breaks live streaming (see FAIL above)")
	}
}
