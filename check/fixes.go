package main

import (
	"net/http"
	"slices"
	"strings"
)

// The fixes for paths whose software the check cannot tell: each names the
// kind of setting to look for, and the setting measured on each proxy the
// tests run.
const (
	fixBuffering = "turn response buffering off for text/event-stream on the proxy or gateway " +
		"(the setting is called buffering or flushing: nginx proxy_buffering off, HAProxy option http-no-delay, " +
		"Apache flushpackets=on, Varnish beresp.do_stream = true)"
	fixCompression = "do not compress text/event-stream on the path, or have the compressor flush after every event " +
		"(nginx: proxy_buffering off, so gzip flushes; HAProxy: leave text/event-stream out of compression type and set option http-no-delay; " +
		"Caddy: keep text/event-stream out of encode; Varnish: beresp.do_gzip = false; Apache: SetEnv no-gzip 1 and no-brotli 1)"
	fixLatency = "something on the path delays every byte (a distant relay, a gateway that holds the first bytes, " +
		"or compression that keeps each event until the next); compare with a client nearer the server"
	fixResume = "forward the Last-Event-ID request header to the server"
	fixCap    = "raise the path's limit on a response's whole time above your streams' length, or end each stream before it " +
		"and have clients resume with Last-Event-ID (tickstream's Lambda adapter and MAX_STREAM_DURATION at the edge do); heartbeats do not help"
)

// The problems a finding's fix is for, by which products' settings are
// looked up.
const (
	problemBuffering   = "buffering"   // a response buffer holds events
	problemAccel       = "accel"       // and X-Accel-Buffering: no does not release them
	problemCompression = "compression" // compression holds events
	problemIdle        = "idle"        // an idle timeout cuts silent streams
	problemCache       = "cache"       // a cache replays streams
	problemCap         = "cap"         // a limit on a response's whole time cuts busy streams
)

// A product is proxy or server software that responses show, and the
// settings that fix what the check finds behind it. Each was measured with
// the Debian package of that software (nginx 1.22, Apache httpd 2.4,
// Caddy 2.6, Varnish 7.1, Squid 5.7); check_test.go runs each.
type product struct {
	name  string
	shows func(h http.Header) bool
	fixes map[string]string // by problem; an accel problem takes the buffering fix unless it has its own
}

// varnishVCL is the VCL that makes Varnish relay event streams live, one
// fresh fetch per client.
const varnishVCL = "in vcl_backend_response, for text/event-stream: set beresp.do_stream = true; set beresp.do_gzip = false; " +
	"set beresp.uncacheable = true; set beresp.ttl = 0s; return (deliver);"

// products are the software the check tells apart.
var products = []product{
	{
		name:  "nginx",
		shows: func(h http.Header) bool { return serverIs(h, "nginx") },
		fixes: map[string]string{
			problemBuffering:   "proxy_buffering off in the location that proxies the stream (docs/nginx-sse.conf), or have the server send X-Accel-Buffering: no",
			problemAccel:       "proxy_buffering off in the location: this nginx does not honour X-Accel-Buffering (look for proxy_ignore_headers X-Accel-Buffering)",
			problemCompression: "proxy_buffering off, or X-Accel-Buffering: no from the server: nginx's gzip then flushes every event (gzip off alone leaves the 4 KiB buffer)",
			problemIdle:        "proxy_read_timeout longer than the stream's silences (default 60s)",
		},
	},
	{
		name:  "Apache httpd",
		shows: func(h http.Header) bool { return serverIs(h, "apache") },
		fixes: map[string]string{
			problemBuffering:   "flushpackets=on on the ProxyPass line",
			problemCompression: "SetEnv no-gzip 1 and SetEnv no-brotli 1 where the stream is proxied (Cache-Control: no-transform does not stop mod_deflate)",
			problemIdle:        "ProxyTimeout longer than the stream's silences (default: Timeout, 60s)",
		},
	},
	{
		name:  "Caddy",
		shows: func(h http.Header) bool { return serverIs(h, "caddy") },
		fixes: map[string]string{
			problemBuffering:   "flush_interval -1 in reverse_proxy",
			problemCompression: "keep event streams out of encode with a match of the types to compress (encode gzip zstd { match { header Content-Type text/html* } }), or skip it for clients that ask for events (@notsse not header Accept *text/event-stream*, then encode @notsse gzip zstd); flush_interval -1 and Cache-Control: no-transform do not help",
		},
	},
	{
		name: "Varnish",
		shows: func(h http.Header) bool {
			return h.Get("X-Varnish") != "" || strings.Contains(strings.ToLower(h.Get("Via")), "varnish")
		},
		fixes: map[string]string{
			problemBuffering:   varnishVCL,
			problemCompression: "set beresp.do_gzip = false for text/event-stream: Varnish's gzip holds a stream to its end",
			problemIdle:        "a backend .between_bytes_timeout longer than the stream's silences (default 60s)",
			problemCache:       varnishVCL,
			problemCap:         "send_timeout (a varnishd parameter, default 600s) longer than your streams last; Varnish checks it when it writes, so traffic brings the cut on",
		},
	},
	{
		name: "Squid",
		shows: func(h http.Header) bool {
			return strings.Contains(strings.ToLower(h.Get("Via")), "squid") || strings.Contains(h.Get("X-Cache"), " from ")
		},
		fixes: map[string]string{
			problemIdle: "read_timeout longer than the stream's silences (default 15 minutes)",
		},
	},
}

// serverIs reports whether h's Server header names product (as "nginx" or
// "nginx/1.22.1").
func serverIs(h http.Header, product string) bool {
	s := strings.ToLower(h.Get("Server"))
	return s == product || strings.HasPrefix(s, product+"/") || strings.HasPrefix(s, product+" ")
}

// identify returns the names of the products the probes' responses show.
func identify(results []probeResult) []string {
	headers := make([]http.Header, 0, len(results))
	for _, r := range results {
		if r.header != nil {
			headers = append(headers, r.header)
		}
	}
	return identifyHeaders(headers...)
}

// identifyHeaders returns the names of the products responses with these
// headers show.
func identifyHeaders(headers ...http.Header) []string {
	var names []string
	for _, p := range products {
		for _, h := range headers {
			if p.shows(h) {
				names = append(names, p.name)
				break
			}
		}
	}
	return names
}

// fixFor returns the fix for problem behind software: the settings of the
// identified products, or generic when none has one.
func fixFor(problem string, software []string, generic string) string {
	var fixes []string
	for _, p := range products {
		if !slices.Contains(software, p.name) {
			continue
		}
		fix, ok := p.fixes[problem]
		if !ok && problem == problemAccel {
			fix, ok = p.fixes[problemBuffering]
		}
		if ok {
			fixes = append(fixes, p.name+": "+fix)
		}
	}
	switch {
	case len(fixes) == 0:
		return generic
	case problem == problemIdle: // heartbeats fix it whatever the software
		return generic + ", or raise the timeout: " + strings.Join(fixes, "; ")
	}
	return strings.Join(fixes, "; ")
}
