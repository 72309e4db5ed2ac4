package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// offeredH3 returns the first HTTP/3 alternative that h's Alt-Svc offers:
// its entry as written (h3=":443") and its authority (":443", or
// "host:443" for another host). Browsers switch to it for later requests.
func offeredH3(h http.Header) (entry, authority string, ok bool) {
	for _, v := range h.Values("Alt-Svc") {
		for alt := range strings.SplitSeq(v, ",") {
			proto, rest, found := strings.Cut(strings.TrimSpace(alt), "=")
			if !found || proto != "h3" {
				continue
			}
			value, _, _ := strings.Cut(rest, ";")
			authority, err := strconv.Unquote(strings.TrimSpace(value))
			if err != nil {
				continue
			}
			if _, _, err := net.SplitHostPort(authority); err != nil {
				continue
			}
			return "h3=" + strconv.Quote(authority), authority, true
		}
	}
	return "", "", false
}

// newH3Client returns a client that sends every request to base's origin
// over HTTP/3 to authority (an Alt-Svc alternative), with tlsConfig, with
// no transparent compression, and with a deadline on the connection's
// setup as newClient's clients have.
func newH3Client(base, authority string, tlsConfig *tls.Config, setup time.Duration) (*http.Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		return nil, fmt.Errorf("Alt-Svc authority %q: %w", authority, err)
	}
	if host == "" {
		host = u.Hostname()
	}
	addr := net.JoinHostPort(host, port)
	tr := &http3.Transport{
		TLSClientConfig:        tlsConfig.Clone(),
		QUICConfig:             &quic.Config{HandshakeIdleTimeout: setup, MaxIdleTimeout: 30 * time.Second, KeepAlivePeriod: 10 * time.Second},
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		Dial: func(ctx context.Context, _ string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tlsConf, conf)
		},
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// An h3Leg is the burst read over HTTP/3 where a response offered it.
type h3Leg struct {
	entry   string // the Alt-Svc entry that offered it; "" when none did
	result  probeResult
	err     error  // why the burst could not be read over HTTP/3
	skipped string // why it was not tried
}

// h3Probe is the burst a browser would read over HTTP/3 once Alt-Svc
// offered it.
var h3Probe = probe{name: "burst over HTTP/3, as a browser asks", method: "GET", target: "/stream/fast?count=40", ask: browser, takes: 2 * time.Second}

// readH3 reads h3Probe over HTTP/3 if header, a response of the battery,
// offers it in Alt-Svc.
func (c *checker) readH3(ctx context.Context, header http.Header) h3Leg {
	return readOverH3(header, c.base, c.proxy, c.tlsConfig, c.limits.header, func(client *http.Client) (probeResult, error) {
		h3c := *c
		h3c.client = client
		return h3c.stream(ctx, h3Probe)
	})
}

// readOverH3 reads over HTTP/3 what read reads with the client it is
// given, if header, a response from target's origin, offers HTTP/3 in
// Alt-Svc. Browsers do not use HTTP/3 for a cleartext origin nor through a
// forward proxy (proxy is "direct" for none), so neither does the check.
func readOverH3(header http.Header, target, proxy string, tlsConfig *tls.Config, setup time.Duration, read func(*http.Client) (probeResult, error)) h3Leg {
	entry, authority, ok := offeredH3(header)
	switch {
	case !ok:
		return h3Leg{}
	case !strings.HasPrefix(target, "https://"):
		return h3Leg{entry: entry, skipped: "offered for a cleartext origin, where browsers do not use it"}
	case proxy != "direct":
		return h3Leg{entry: entry, skipped: "not tried through the forward proxy, as browsers do not use it through one"}
	}
	client, err := newH3Client(target, authority, tlsConfig, setup)
	if err != nil {
		return h3Leg{entry: entry, err: err}
	}
	defer client.Transport.(*http3.Transport).Close()
	r, err := read(client)
	return h3Leg{entry: entry, result: r, err: err}
}

// fixH3 is the fix for a path whose HTTP/3 holds streams that its TCP
// protocols pass.
const fixH3 = "the path's HTTP/3 holds streams that its HTTP/1.1 and HTTP/2 pass: fix or update its HTTP/3 support, " +
	"or stop offering h3 in Alt-Svc for the streams' origin"

// protocolFinding says what protocol the client got over TCP (proto, with
// TLS or not), and, where Alt-Svc offered HTTP/3 (h3), how the burst came
// over it beside how it came over TCP (tcp, the same burst as a browser
// asks for it).
func protocolFinding(proto string, tls bool, h3 h3Leg, tcp probeResult) Finding {
	f := Finding{Name: "protocol", Verdict: proto, OK: true}
	transport := "without TLS"
	if tls {
		transport = "over TLS"
	}
	f.Detail = proto + " " + transport
	if strings.HasPrefix(proto, "HTTP/1") {
		f.Detail += "; browsers open at most 6 HTTP/1.1 connections per origin, so a 7th open stream waits (HTTP/2 lifts that)"
	}
	if h3.entry == "" {
		return f
	}
	f.Detail += "; Alt-Svc offers HTTP/3 (" + h3.entry + ")"
	switch {
	case h3.skipped != "":
		f.Detail += ": " + h3.skipped
		return f
	case h3.err != nil:
		f.HTTP3 = "unreachable"
		f.Detail += fmt.Sprintf(", which did not answer (%v): browsers fall back to TCP after trying it", h3.err)
		return f
	}
	f.HTTP3 = deliveryVerdict(h3.result)
	f.Detail += ": over " + h3.result.proto + " the stream came " + encoded(h3.result.encoding, f.HTTP3)
	if tcpVerdict := deliveryVerdict(tcp); f.HTTP3 != "live" && tcpVerdict == "live" {
		f.OK = false
		f.Detail += ", where over " + tcp.proto + " it came live"
		f.Fix, f.problem = fixH3, problemH3
	}
	return f
}
