package main

import (
	"net/http"
	"strings"
)

// A product is proxy, CDN, gateway, platform or server software that
// responses show, and the settings that fix what the check finds behind it.
// The Debian packages' settings (nginx 1.22, Apache httpd 2.4, Caddy 2.6,
// Varnish 7.1, Squid 5.7, Express's compression from npm) were measured by
// the tests; every other product's headers and settings are taken from its
// public documentation, cited in docs/proxies.md, and its fix texts are
// pinned in testdata/products.golden.
type product struct {
	name  string
	shows func(h http.Header) bool
	hides []string          // products whose signs this one's responses carry (Fastly's Varnish)
	fixes map[string]string // by problem; accel takes buffering's and threshold compression's unless it has its own
}

// varnishVCL is the VCL that makes Varnish relay event streams live, one
// fresh fetch per client.
const varnishVCL = "in vcl_backend_response, for text/event-stream: set beresp.do_stream = true; set beresp.do_gzip = false; " +
	"set beresp.uncacheable = true; set beresp.ttl = 0s; return (deliver);"

// products are the software the check tells apart: first what sits in
// front (CDNs, load balancers, gateways, platforms), then proxies, then the
// frameworks behind them, as a path is read from the client.
var products = []product{
	{
		name:  "Cloudflare",
		shows: func(h http.Header) bool { return serverIs(h, "cloudflare") || hasAny(h, "CF-Ray") },
		fixes: map[string]string{
			problemBuffering: "a Configuration Rule that sets Response body buffering to None for the stream's path " +
				"(on Enterprise plans, Response Buffering off too); Cloudflare buffers what it caches, so keep the stream uncacheable",
			problemCompression: "a Compression Rule that disables compression when the response's media type is your stream's " +
				"(http.response.content_type.media_type), or Cache-Control: no-transform from the server",
			problemIdle:  "Cloudflare ends a response with 524 after its Proxy Read Timeout (100s) passes without a byte; only Enterprise plans can raise it",
			problemCache: "a Cache Rule that bypasses the cache for the stream's path",
		},
	},
	{
		name: "CloudFront",
		shows: func(h http.Header) bool {
			return hasAny(h, "X-Amz-Cf-Id", "X-Amz-Cf-Pop") || viaHas(h, "(CloudFront)") ||
				strings.HasSuffix(strings.ToLower(h.Get("X-Cache")), " from cloudfront")
		},
		fixes: map[string]string{
			problemCompression: "turn Compress objects automatically off in the cache behavior that serves the stream",
			problemIdle:        "the origin's response timeout (OriginReadTimeout, default 30s, at most 120s without a quota increase) longer than the stream's silences",
			problemCap:         "the origin's response completion timeout (ResponseCompletionTimeout; unset, there is none) longer than your streams last",
			problemCache:       "a cache policy that disables caching (the managed CachingDisabled policy) on the stream's path",
		},
	},
	{
		name: "Fastly",
		shows: func(h http.Header) bool {
			return strings.HasPrefix(h.Get("X-Served-By"), "cache-") || strings.HasPrefix(h.Get("X-Timer"), "S")
		},
		hides: []string{"Varnish"},
		fixes: map[string]string{
			problemBuffering:   "set beresp.do_stream = true in vcl_fetch (streaming miss), and pass the stream's requests in vcl_recv",
			problemCompression: "do not set beresp.gzip or beresp.brotli for the stream's type in vcl_fetch, and leave it out of the service's compression policy",
			problemIdle:        "the backend's between_bytes_timeout longer than the stream's silences (at most 60s when clustering or shielding)",
			problemCache:       "return(pass) in vcl_recv for the stream's requests",
		},
	},
	{
		name: "Akamai",
		shows: func(h http.Header) bool {
			return serverIs(h, "AkamaiGHost") || serverIs(h, "AkamaiNetStorage") || hasAny(h, "Akamai-GRN") ||
				hasPrefixed(h, "X-Akamai-") || strings.Contains(h.Get("X-Cache"), "AkamaiGHost")
		},
		fixes: map[string]string{
			problemBuffering:   "the Optimize Text Streaming behavior (optimizeTextStreaming, a beta your account team enables) on the stream's path: it turns buffering and added compression off",
			problemCompression: "the Optimize Text Streaming behavior (optimizeTextStreaming) on the stream's path, or leave the stream's type out of Last Mile Acceleration's compressed types",
			problemIdle:        "the Read Timeout behavior (readTimeout, default 120s) longer than the stream's silences",
		},
	},
	{
		name: "Google Cloud load balancer",
		shows: func(h http.Header) bool {
			return viaHas(h, "1.1 google") || serverIs(h, "Google Frontend")
		},
		fixes: map[string]string{
			problemIdle: "the backend service timeout (timeoutSec, default 30s) counts the whole response: raise it above your streams' length; " +
				"Cloud Run's request timeout (default 300s, at most 3600s) likewise",
			problemCap: "the backend service timeout (timeoutSec, default 30s) above your streams' length; on Cloud Run, the request timeout (--timeout, default 300s, at most 3600s)",
		},
	},
	{
		name:  "Azure Front Door",
		shows: func(h http.Header) bool { return hasAny(h, "X-Azure-Ref") },
		fixes: map[string]string{
			problemCompression: "turn compression off on the route that serves the stream, or leave the stream's type out of its compressed types",
			problemIdle:        "the origin response timeout (the profile's setting, 16 to 240s) longer than the stream's silences",
			problemCache:       "turn caching off on the route that serves the stream",
		},
	},
	{
		name:  "Azure Application Gateway",
		shows: func(h http.Header) bool { return serverIs(h, "Microsoft-Azure-Application-Gateway") },
		fixes: map[string]string{
			problemBuffering: "turn response buffering off in the gateway's global configuration (enableResponseBuffering: false)",
			problemIdle:      "the backend settings' request timeout (in seconds, up to 86400) longer than the stream's silences",
			problemCap:       "the backend settings' request timeout (in seconds, up to 86400) longer than your streams last",
		},
	},
	{
		name:  "Azure API Management",
		shows: func(h http.Header) bool { return hasPrefixed(h, "Ocp-Apim-") },
		fixes: map[string]string{
			problemBuffering: "buffer-response=\"false\" on the forward-request policy, and no validate-content policy, response body logging or response caching on the stream's API",
			problemIdle:      "Azure's load balancer drops a connection idle for 4 minutes, which cannot be raised",
		},
	},
	{
		name:  "AWS API Gateway (REST API)",
		shows: func(h http.Header) bool { return hasAny(h, "X-Amz-Apigw-Id") },
		fixes: map[string]string{
			problemBuffering: "set the integration's response transfer mode to STREAM (responseTransferMode: STREAM, for HTTP_PROXY and AWS_PROXY integrations); BUFFERED, the default, holds the whole response",
			problemIdle:      "a streamed response is cut after 5 minutes idle on Regional and private endpoints, 30s on edge-optimized ones",
			problemCap:       "in STREAM mode, the integration timeout (up to 15 minutes; 29s buffered)",
		},
	},
	{
		name:  "AWS API Gateway (HTTP API)",
		shows: func(h http.Header) bool { return hasAny(h, "Apigw-Requestid") },
		fixes: map[string]string{
			problemBuffering: "HTTP APIs do not stream responses: serve the stream through a REST API with responseTransferMode: STREAM, or a Lambda function URL",
			problemCap:       "HTTP APIs end every response after the integration timeout (at most 30s): serve the stream through a REST API in STREAM mode, or a Lambda function URL",
		},
	},
	{
		name:  "AWS Application Load Balancer",
		shows: func(h http.Header) bool { return serverIs(h, "awselb") },
		fixes: map[string]string{
			problemIdle: "the load balancer's idle_timeout.timeout_seconds (default 60, up to 4000) longer than the stream's silences",
		},
	},
	{
		name:  "Vercel",
		shows: func(h http.Header) bool { return serverIs(h, "Vercel") || hasAny(h, "X-Vercel-Id", "X-Vercel-Cache") },
		fixes: map[string]string{
			problemCap: "the function's maxDuration (vercel.json's functions, or export const maxDuration in a Next.js route) longer than your streams last",
		},
	},
	{
		name:  "Netlify",
		shows: func(h http.Header) bool { return serverIs(h, "Netlify") || hasAny(h, "X-Nf-Request-Id") },
		fixes: map[string]string{
			problemCap: "a Netlify Function stops at its execution limit, which streams must end before (clients resume with Last-Event-ID)",
		},
	},
	{
		name:  "Heroku",
		shows: func(h http.Header) bool { return viaHas(h, "vegur") || viaHas(h, "heroku-router") },
		fixes: map[string]string{
			problemIdle: "Heroku's router ends a response that sends nothing for 55s, which cannot be raised",
		},
	},
	{
		name: "Fly.io",
		shows: func(h http.Header) bool {
			return serverIs(h, "Fly") || hasAny(h, "Fly-Request-Id") || viaHas(h, "fly.io")
		},
		fixes: map[string]string{
			problemIdle: "Fly's proxy closes connections idle for 60s, which cannot be raised",
		},
	},
	{
		name:  "Kong",
		shows: func(h http.Header) bool { return viaHas(h, "kong/") || hasPrefixed(h, "X-Kong-") },
		fixes: map[string]string{
			problemBuffering: "response_buffering=false on the route, and no plugin with a response phase (those buffer the whole response)",
			problemIdle:      "the service's read_timeout (default 60000 ms) longer than the stream's silences",
		},
	},
	{
		name: "Envoy",
		shows: func(h http.Header) bool {
			return serverIs(h, "envoy") || serverIs(h, "istio-envoy") || hasAny(h, "X-Envoy-Upstream-Service-Time")
		},
		fixes: map[string]string{
			problemBuffering:   "no buffer filter (envoy.filters.http.buffer) on the stream's route",
			problemCompression: "leave the stream's type out of the compressor filter's content_type list (its default list holds text/plain and application/json)",
			problemIdle:        "stream_idle_timeout (default 5m) in the HTTP connection manager, or idle_timeout on the route, longer than the stream's silences",
			problemCap:         "the route's timeout: 0s (default 15s, counted to the response's end; Envoy says to disable it for streaming responses); in Istio, the VirtualService's http timeout",
		},
	},
	{
		name: "Apache Traffic Server",
		shows: func(h http.Header) bool {
			return serverIs(h, "ATS") || viaHas(h, "ApacheTrafficServer")
		},
		fixes: map[string]string{
			problemIdle: "proxy.config.http.transaction_no_activity_timeout_in and _out longer than the stream's silences",
			problemCap:  "proxy.config.http.transaction_active_timeout_in and _out (0, none, by default) longer than your streams last",
		},
	},
	{
		name:  "nginx",
		shows: func(h http.Header) bool { return serverIs(h, "nginx") },
		fixes: map[string]string{
			problemBuffering: "proxy_buffering off in the location that proxies the stream (docs/nginx-sse.conf), or have the server send X-Accel-Buffering: no; " +
				"under ingress-nginx, the annotation nginx.ingress.kubernetes.io/proxy-buffering: \"off\"",
			problemAccel:       "proxy_buffering off in the location: this nginx does not honour X-Accel-Buffering (look for proxy_ignore_headers X-Accel-Buffering)",
			problemCompression: "proxy_buffering off, or X-Accel-Buffering: no from the server: nginx's gzip then flushes every event (gzip off alone leaves the 4 KiB buffer)",
			problemIdle:        "proxy_read_timeout longer than the stream's silences (default 60s; under ingress-nginx, the annotation nginx.ingress.kubernetes.io/proxy-read-timeout)",
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
			problemH3:          "servers { protocols h1 h2 } in the global options, which stops offering HTTP/3",
			problemCompression: "keep event streams out of encode with a match of the types to compress (encode gzip zstd { match { header Content-Type text/html* } }), or skip it for clients that ask for events (@notsse not header Accept *text/event-stream*, then encode @notsse gzip zstd); flush_interval -1 and Cache-Control: no-transform do not help",
		},
	},
	{
		name: "Varnish",
		shows: func(h http.Header) bool {
			return h.Get("X-Varnish") != "" || viaHas(h, "varnish")
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
			xc := h.Get("X-Cache")
			return viaHas(h, "squid") || strings.HasPrefix(xc, "MISS from ") || strings.HasPrefix(xc, "HIT from ")
		},
		fixes: map[string]string{
			problemIdle: "read_timeout longer than the stream's silences (default 15 minutes)",
		},
	},
	{
		name:  "Express",
		shows: func(h http.Header) bool { return strings.EqualFold(h.Get("X-Powered-By"), "Express") },
		fixes: map[string]string{
			problemCompression: "the compression middleware holds events: call res.flush() after each event, or leave the stream out with its filter option " +
				"(or send Cache-Control: no-transform, which it honours)",
			problemThreshold: "the compression middleware waits for its threshold (default 1kb) before it sends anything: call res.flush() after each event, " +
				"or leave the stream out with its filter option (or send Cache-Control: no-transform, which it honours)",
		},
	},
	{
		name:  "Next.js",
		shows: func(h http.Header) bool { return strings.EqualFold(h.Get("X-Powered-By"), "Next.js") },
		fixes: map[string]string{
			problemCompression: "compress: false in next.config.js (and compress at a proxy in front, leaving the stream's type out)",
		},
	},
}
