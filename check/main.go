// Command check tells what the path between a tickstream server and this
// client does to event streams, as a browser would get them:
//
//	go run ./check [flags] URL
//
// URL is tickstream's base URL as a client sees it: direct, through a
// reverse proxy, CDN or gateway, under a prefix, or a Lambda function URL.
// In about 5 s it reads nine streams at once, some asking for compression
// as Chromium does (Accept-Encoding: gzip, deflate, br, zstd) and some not,
// and prints one line per finding, with a verdict and, where one is known,
// the fix for the software the responses show:
//
//	buffering    are events without X-Accel-Buffering relayed live, batched, buffered or held to the end?
//	accel        and events with X-Accel-Buffering: no?
//	compression  is the stream compressed, and does that hold events (or each event's tail)?
//	latency      round trip, first event, and how late events arrive by the server's clock
//	post         is a POST-answered stream (LLM tokens, MCP) relayed live?
//	resume       does Last-Event-ID reach the server?
//	headers      do Content-Type and Cache-Control arrive as sent, or from a cache?
//	protocol     HTTP/1.1 or HTTP/2, TLS or not
//	idle         (with -idle) when does the path cut a silent stream?
//	end          does a finished stream's end arrive with its last event?
//
// The exit status is 0 when no finding breaks live streaming, 1 when one
// does, and 2 when URL cannot be reached, is not a tickstream server, or
// answers past the check's limits (a stall, an endless body, a redirect to
// another origin): the message names the request.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
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
	caCert   string // a PEM file of CA certificates to trust
	insecure bool
	proxy    string // a forward proxy's URL; "" for the environment's
	follow   bool   // follow redirects to other origins
	report   string // an HTML file to write
	limits   limits
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
	fs.DurationVar(&o.idle, "idle", 0, "also open a silent stream and wait this long (such as 2m) for the path to cut it")
	fs.StringVar(&o.caCert, "cacert", "", "trust the CA certificates in this PEM `file` too (a private CA's)")
	fs.BoolVar(&o.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fs.StringVar(&o.proxy, "proxy", "", "go through this forward proxy (`URL`, http:// or https://) for every target, loopback too; default: HTTPS_PROXY, HTTP_PROXY and NO_PROXY")
	fs.BoolVar(&o.follow, "follow", false, "follow redirects to another origin (by default the check stops and names it)")
	fs.StringVar(&o.report, "report", "", "also write the report as a self-contained HTML `file` with a timeline of every stream")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./check [flags] URL\n\n"+
			"Tells what the path to a tickstream server does to event streams.\n"+
			"Exit status: 0 live, 1 a finding breaks live streaming, 2 not a reachable\n"+
			"tickstream, or it answered past the check's limits (the message says which).\n\n")
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
	rep, err := check(ctx, fs.Arg(0), o)
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

// check runs the battery against rawURL.
func check(ctx context.Context, rawURL string, o options) (Report, error) {
	base, err := baseURL(rawURL)
	if err != nil {
		return Report{}, err
	}
	if o.idle < 0 {
		return Report{}, errors.New("-idle must not be negative")
	}
	client, proxy, err := newClient(base, o)
	if err != nil {
		return Report{}, err
	}
	c := &checker{base: base, client: client, proxy: proxy, idle: o.idle, limits: o.limits}
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

// A redirectError is a redirect to another origin, which the check does not
// follow without -follow: what it would measure there is another path.
type redirectError struct{ from, to *url.URL }

func (e *redirectError) Error() string {
	return fmt.Sprintf("redirected to %s, another origin: check that URL, or rerun with -follow", e.to.Redacted())
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// newClient returns the client the battery uses, and the forward proxy it
// goes through ("direct" for none): HTTP/2 where the server offers it over
// TLS, as browsers get it; no transparent compression, so that the check
// decodes what the path sends itself and times it; a deadline on every
// connection's setup and every response's headers.
func newClient(base string, o options) (*http.Client, string, error) {
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: o.limits.header, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    o.limits.header,
		ResponseHeaderTimeout:  o.limits.header,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
		IdleConnTimeout:        30 * time.Second,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: o.insecure}, //nolint:gosec // only with -insecure
	}
	if o.caCert != "" {
		pem, err := os.ReadFile(o.caCert)
		if err != nil {
			return nil, "", fmt.Errorf("-cacert: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("-cacert %s: no PEM certificate in it", o.caCert)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	proxy := "direct"
	if o.proxy != "" {
		u, err := url.Parse(o.proxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, "", fmt.Errorf("-proxy %q: want an http:// or https:// URL", o.proxy)
		}
		tr.Proxy = http.ProxyURL(u)
		proxy = u.Redacted()
	} else if req, err := http.NewRequest(http.MethodGet, base, nil); err == nil {
		if u, err := http.ProxyFromEnvironment(req); err == nil && u != nil {
			proxy = u.Redacted()
		}
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if !o.follow && !sameOrigin(req.URL, via[0].URL) {
			return &redirectError{from: via[0].URL, to: req.URL}
		}
		return nil
	}}
	return client, proxy, nil
}

// follow returns the base URL that /health redirects to, if it does (for
// -follow): the battery then runs there.
func (c *checker) follow(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.limits.header)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/health", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", describe("GET /health", err, c.limits.header)
	}
	resp.Body.Close()
	u := *resp.Request.URL
	u.RawQuery = ""
	return strings.TrimSuffix(u.String(), "/health"), nil
}

// printReport writes one line per finding, and its fix on the next.
func printReport(w io.Writer, rep Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n", rep.URL)
	if rep.RedirectedFrom != "" {
		fmt.Fprintf(tw, "redirected from %s\n", rep.RedirectedFrom)
	}
	via := "proxy: " + rep.Proxy
	if len(rep.Software) > 0 {
		via += "; the responses show " + strings.Join(rep.Software, ", ")
	}
	fmt.Fprintln(tw, via)
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
