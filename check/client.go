package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// httpURL parses s, which must be an http or https URL.
func httpURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return u, nil
}

// baseURL checks that s is an http or https URL and returns it without a
// trailing slash, query or fragment.
func baseURL(s string) (string, error) {
	u, err := httpURL(s)
	if err != nil {
		return "", err
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
// connection's setup and, in the battery, every response's headers. In
// stream mode a path that holds a whole response holds its head too: the
// stream's window bounds the wait for it, and a head that comes only with
// the end is a finding, not a stall. Its TLS configuration is tlsConfig
// (clientTLS's).
func newClient(base string, o options, tlsConfig *tls.Config) (*http.Client, string, error) {
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
		TLSClientConfig:        tlsConfig,
	}
	if o.stream {
		tr.ResponseHeaderTimeout = 0
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

// clientTLS returns the TLS configuration of the check's clients: the
// system's roots and -cacert's, or no verification with -insecure.
func clientTLS(o options) (*tls.Config, error) {
	conf := &tls.Config{InsecureSkipVerify: o.insecure} //nolint:gosec // only with -insecure
	if o.caCert == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(o.caCert)
	if err != nil {
		return nil, fmt.Errorf("-cacert: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-cacert %s: no PEM certificate in it", o.caCert)
	}
	conf.RootCAs = pool
	return conf, nil
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

// describe words a request's failure: which request, and what stalled.
func describe(what string, err error, limit time.Duration) error {
	var redirect *redirectError
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.As(err, &redirect):
		return fmt.Errorf("%s: %w", what, redirect)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Errorf("%s: stalled: no whole answer within %v", what, limit)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%w (pass the certificate of the CA that signed the server's with -cacert FILE, or skip verification with -insecure)", err)
	}
	return err
}

// protoName writes a protocol as people do: HTTP/2, not HTTP/2.0.
func protoName(proto string) string {
	switch proto {
	case "HTTP/2.0":
		return "HTTP/2"
	case "HTTP/3.0":
		return "HTTP/3"
	}
	return proto
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
