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
	fixThreshold = "a compressor on the path holds a response until it reaches a minimum size: leave your stream's type out of compression, " +
		"or have the compressor flush after every event (Traefik compress: excludedContentTypes, minResponseBodyBytes default 1024; " +
		"Express compression: a filter, or res.flush() after each event, threshold default 1kb)"
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
	problemThreshold   = "threshold"   // a compressor holds a response's first bytes to a minimum size
	problemIdle        = "idle"        // an idle timeout cuts silent streams
	problemCache       = "cache"       // a cache replays streams
	problemCap         = "cap"         // a limit on a response's whole time cuts busy streams
	problemH3          = "h3"          // HTTP/3 holds streams that TCP passes
)

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
// headers show, in the order of products. A product another one hides
// (Varnish under Fastly) is left out.
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
	return slices.DeleteFunc(names, func(name string) bool {
		for _, p := range products {
			if slices.Contains(p.hides, name) && slices.Contains(names, p.name) {
				return true
			}
		}
		return false
	})
}

// serverIs reports whether h's Server header names product (as "nginx" or
// "nginx/1.22.1"), in any case.
func serverIs(h http.Header, product string) bool {
	s, product := strings.ToLower(h.Get("Server")), strings.ToLower(product)
	return s == product || strings.HasPrefix(s, product+"/") || strings.HasPrefix(s, product+" ")
}

// viaHas reports whether h's Via header contains word, in any case.
func viaHas(h http.Header, word string) bool {
	return strings.Contains(strings.ToLower(strings.Join(h.Values("Via"), ", ")), strings.ToLower(word))
}

// hasAny reports whether h has any of the headers names.
func hasAny(h http.Header, names ...string) bool {
	for _, name := range names {
		if h.Get(name) != "" {
			return true
		}
	}
	return false
}

// hasPrefixed reports whether h has a header whose canonical name starts
// with prefix (such as "X-Kong-").
func hasPrefixed(h http.Header, prefix string) bool {
	for name := range h {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
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
		switch {
		case !ok && problem == problemAccel:
			fix, ok = p.fixes[problemBuffering]
		case !ok && problem == problemThreshold:
			fix, ok = p.fixes[problemCompression]
		}
		if ok {
			fixes = append(fixes, p.name+": "+fix)
		}
	}
	switch {
	case len(fixes) == 0:
		return generic
	case problem == problemIdle: // heartbeats fix it whatever the software
		return generic + "; " + strings.Join(fixes, "; ")
	}
	return strings.Join(fixes, "; ")
}
