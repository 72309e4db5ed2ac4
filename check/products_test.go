package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// productFix is the fix a finding of problem gets behind the one product
// name, as fixFor writes it.
func productFix(t *testing.T, name, problem string) string {
	t.Helper()
	for _, p := range products {
		if p.name == name {
			return name + ": " + p.fixes[problem]
		}
	}
	t.Fatalf("no product %s", name)
	return ""
}

// A sighting is a response's headers as a path shows them, taken from the
// product's documentation or public captures (docs/proxies.md cites each),
// and the products the check must name from them.
type sighting struct {
	name   string
	header http.Header
	want   []string
}

// sightings hold one for each product, and the paths of several or whose
// signs look alike.
var sightings = []sighting{
	{"Cloudflare", http.Header{"Server": {"cloudflare"}, "Cf-Ray": {"8f1b2c3d4e5f6a7b-AMS"}, "Cf-Cache-Status": {"DYNAMIC"}}, []string{"Cloudflare"}},
	{"CloudFront", http.Header{"Via": {"1.1 5a1b2c3d4e5f.cloudfront.net (CloudFront)"}, "X-Amz-Cf-Id": {"k1Q2w3E4r5T6y7U8i9O0p"}, "X-Amz-Cf-Pop": {"FRA56-P1"}, "X-Cache": {"Miss from cloudfront"}}, []string{"CloudFront"}},
	{"Fastly", http.Header{"Via": {"1.1 varnish"}, "X-Served-By": {"cache-fra-eddf8230071-FRA"}, "X-Cache": {"MISS"}, "X-Timer": {"S1733472000.123456,VS0,VE42"}, "X-Varnish": {"123456789"}}, []string{"Fastly"}},
	{"Akamai", http.Header{"Server": {"AkamaiGHost"}, "Akamai-Grn": {"0.1a2b3c4d.1733472000.5e6f7a8b"}}, []string{"Akamai"}},
	{"Google Cloud load balancer", http.Header{"Via": {"1.1 google"}, "Alt-Svc": {`h3=":443"; ma=2592000`}}, []string{"Google Cloud load balancer"}},
	{"Cloud Run", http.Header{"Server": {"Google Frontend"}, "X-Cloud-Trace-Context": {"105445aa7843bc8bf206b120001000/1"}}, []string{"Google Cloud load balancer"}},
	{"Azure Front Door", http.Header{"X-Azure-Ref": {"20261206T063500Z-r1a2b3c4d5e6f7g8"}, "X-Cache": {"CONFIG_NOCACHE"}}, []string{"Azure Front Door"}},
	{"Azure Application Gateway", http.Header{"Server": {"Microsoft-Azure-Application-Gateway/v2"}}, []string{"Azure Application Gateway"}},
	{"Azure API Management", http.Header{"Ocp-Apim-Trace-Location": {"https://apimst.blob.core.windows.net/apiinspectorcontainer/x"}}, []string{"Azure API Management"}},
	{"AWS API Gateway, REST", http.Header{"X-Amzn-Requestid": {"c6af9ac6-7b61-11e6-9a41-93e8deadbeef"}, "X-Amz-Apigw-Id": {"D1a2b3c4oAMFaXw="}}, []string{"AWS API Gateway (REST API)"}},
	{"AWS API Gateway, HTTP API", http.Header{"Apigw-Requestid": {"D1a2b3c4oAMEaXw="}}, []string{"AWS API Gateway (HTTP API)"}},
	{"AWS Application Load Balancer", http.Header{"Server": {"awselb/2.0"}}, []string{"AWS Application Load Balancer"}},
	{"Lambda function URL", http.Header{"X-Amzn-Requestid": {"c6af9ac6-7b61-11e6-9a41-93e8deadbeef"}, "X-Amzn-Trace-Id": {"Root=1-5e1b4151-5ac6c58f"}}, nil},
	{"Vercel", http.Header{"Server": {"Vercel"}, "X-Vercel-Id": {"fra1::iad1::abcde-1733472000000-0123456789ab"}, "X-Vercel-Cache": {"MISS"}}, []string{"Vercel"}},
	{"Netlify", http.Header{"Server": {"Netlify"}, "X-Nf-Request-Id": {"01JEXAMPLE0000000000000000"}}, []string{"Netlify"}},
	{"Heroku", http.Header{"Via": {"1.1 vegur"}}, []string{"Heroku"}},
	{"Heroku, Router 2.0", http.Header{"Via": {"1.1 heroku-router"}}, []string{"Heroku"}},
	{"Fly.io", http.Header{"Server": {"Fly/8e1e8ee2 (2026-11-30)"}, "Via": {"1.1 fly.io"}, "Fly-Request-Id": {"01JEXAMPLE-ams"}}, []string{"Fly.io"}},
	{"Kong", http.Header{"Via": {"kong/3.9.0"}, "X-Kong-Upstream-Latency": {"3"}, "X-Kong-Proxy-Latency": {"1"}}, []string{"Kong"}},
	{"Envoy", http.Header{"Server": {"envoy"}, "X-Envoy-Upstream-Service-Time": {"4"}}, []string{"Envoy"}},
	{"Istio", http.Header{"Server": {"istio-envoy"}, "X-Envoy-Upstream-Service-Time": {"4"}}, []string{"Envoy"}},
	{"Apache Traffic Server", http.Header{"Server": {"ATS/9.2.0"}, "Via": {"http/1.1 cache1 (ApacheTrafficServer/9.2.0 [cMsSf ])"}}, []string{"Apache Traffic Server"}},
	{"ingress-nginx", http.Header{"Server": {"nginx"}}, []string{"nginx"}},
	{"nginx", http.Header{"Server": {"nginx/1.22.1"}}, []string{"nginx"}},
	{"Apache httpd", http.Header{"Server": {"Apache/2.4.62 (Debian)"}}, []string{"Apache httpd"}},
	{"Caddy", http.Header{"Server": {"Caddy"}}, []string{"Caddy"}},
	{"Varnish", http.Header{"Via": {"1.1 localhost (Varnish/7.1)"}, "X-Varnish": {"32770"}}, []string{"Varnish"}},
	{"Squid", http.Header{"Via": {"1.1 proxy (squid/5.7)"}, "X-Cache": {"MISS from proxy"}}, []string{"Squid"}},
	{"Express", http.Header{"X-Powered-By": {"Express"}}, []string{"Express"}},
	{"Next.js", http.Header{"X-Powered-By": {"Next.js"}}, []string{"Next.js"}},
	{"CloudFront in front of nginx", http.Header{"Server": {"nginx/1.22.1"}, "Via": {"1.1 5a1b2c3d4e5f.cloudfront.net (CloudFront)"}, "X-Amz-Cf-Id": {"k1Q2w3E4r5T6y7U8i9O0p"}}, []string{"CloudFront", "nginx"}},
	{"Cloudflare in front of Express", http.Header{"Server": {"cloudflare"}, "Cf-Ray": {"8f1b2c3d4e5f6a7b-AMS"}, "X-Powered-By": {"Express"}}, []string{"Cloudflare", "Express"}},
	{"CloudFront in front of Varnish", http.Header{"Via": {"1.1 varnish (Varnish/7.1), 1.1 5a1b2c3d4e5f.cloudfront.net (CloudFront)"}, "X-Varnish": {"32770"}, "X-Amz-Cf-Id": {"k1Q2w3E4r5T6y7U8i9O0p"}}, []string{"CloudFront", "Varnish"}},
	{"Akamai's X-Cache is not Squid's", http.Header{"X-Cache": {"TCP_MISS from a23-45-67-89.deploy.akamaitechnologies.com (AkamaiGHost/22.3.1-0) (-)"}}, []string{"Akamai"}},
	{"Azure Front Door's X-Cache is not Squid's", http.Header{"X-Cache": {"TCP_MISS"}, "X-Azure-Ref": {"0abc"}}, []string{"Azure Front Door"}},
}

// TestIdentify names the products of every sighting, and no others: a
// Fastly response's Varnish signs are Fastly's, a CloudFront X-Cache is not
// a Squid's, a Lambda function URL's request id is not API Gateway's.
func TestIdentify(t *testing.T) {
	for _, s := range sightings {
		if diff := cmp.Diff(s.want, identifyHeaders(s.header)); diff != "" {
			t.Errorf("%s: software (-want +got):\n%s", s.name, diff)
		}
	}
	for _, p := range products {
		if !slices.ContainsFunc(sightings, func(s sighting) bool { return slices.Equal(s.want, []string{p.name}) }) {
			t.Errorf("no sighting shows %s alone", p.name)
		}
	}
}

// problemGenerics are the findings' problems and the fixes they carry
// before settle names the path's settings.
var problemGenerics = []struct{ problem, generic string }{
	{problemBuffering, fixBuffering},
	{problemAccel, fixBuffering},
	{problemCompression, fixCompression},
	{problemThreshold, fixThreshold},
	{problemIdle, "send heartbeats more often than every 1m0s (tickstream: -heartbeat, default 15s)"},
	{problemCache, "have caches on the path pass text/event-stream through uncached, one fetch per client"},
	{problemCap, fixCap},
}

// TestProductFixes pins, in testdata/products.golden, the fix every
// finding gets behind each product: the product's own setting where its
// documentation names one, the generic fix otherwise.
func TestProductFixes(t *testing.T) {
	var b bytes.Buffer
	for _, p := range products {
		fmt.Fprintf(&b, "## %s\n", p.name)
		for _, pg := range problemGenerics {
			fmt.Fprintf(&b, "%s: %s\n", pg.problem, fixFor(pg.problem, []string{p.name}, pg.generic))
		}
		b.WriteString("\n")
	}
	wiretest.Golden(t, "testdata/products.golden", b.Bytes())
}

// holdingRelay serves h as a gateway that holds whole bodies does (API
// Gateway's BUFFERED mode, a CDN's response buffering): the head at once,
// with header's headers added, and the body when it is complete. It relays
// event streams only.
func holdingRelay(t *testing.T, h http.Handler, header http.Header) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name, vs := range header {
			w.Header()[name] = vs
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush() //nolint:errcheck // the client's to see
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		w.Write(rec.Body.Bytes()) //nolint:errcheck // the client's to see
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestProductRelays reads a stream through a relay that holds it whole
// while it wears each sighting's headers, as that product would if it
// buffered, and pins in testdata/product-relays.golden what the check
// names and the fix it gives. The products themselves are out of reach
// here; their headers are those their documentation shows.
func TestProductRelays(t *testing.T) {
	t.Parallel()
	h := handler.New()
	type result struct{ software, verdict, fix string }
	results := make([]result, len(sightings))
	runAtOnce(t, len(sightings), sightings, func(s sighting) string { return s.name }, func(t *testing.T, s sighting) {
		relay := holdingRelay(t, h, s.header)
		rep, code := streamJSON(t, "-X", "GET", relay+"/stream/fast?count=10&delay=100ms")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		if diff := cmp.Diff(s.want, rep.Software); diff != "" {
			t.Errorf("software (-want +got):\n%s", diff)
		}
		d := finding(rep, "delivery")
		i := slices.IndexFunc(sightings, func(o sighting) bool { return o.name == s.name })
		results[i] = result{strings.Join(rep.Software, ", "), d.Verdict, d.Fix}
	})
	var b bytes.Buffer
	for i, s := range sightings {
		fmt.Fprintf(&b, "## %s\nsoftware: %s\ndelivery: %s\nfix: %s\n\n", s.name, results[i].software, results[i].verdict, results[i].fix)
	}
	wiretest.Golden(t, "testdata/product-relays.golden", b.Bytes())
}
