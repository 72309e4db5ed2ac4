package adapter

import (
	"bytes"
	"context"
	"encoding/base64"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// A badRequest is an event the adapter cannot turn into a request; it is
// answered 400, as net/http answers a malformed request.
type badRequest struct{ reason string }

func (e *badRequest) Error() string { return e.reason }

// request converts e to the request net/http would make of the same HTTP
// request: the path as sent (with the adapter's base path removed), Host in
// r.Host and not in r.Header, the body and its length, the client's address
// where the event says it.
func (a *Adapter) request(ctx context.Context, e *Event) (*http.Request, error) {
	var (
		method, path, query, domain, sourceIP, proto, body string
		base64Body                                         bool
		header                                             = http.Header{}
		decodedPath                                        bool // HTTP APIs send the path decoded
		stage                                              string
	)
	switch e.Source {
	case FunctionURL:
		ev := e.FunctionURL
		method, path, query = ev.RequestContext.HTTP.Method, ev.RawPath, ev.RawQueryString
		domain, sourceIP, proto = ev.RequestContext.DomainName, ev.RequestContext.HTTP.SourceIP, ev.RequestContext.HTTP.Protocol
		body, base64Body = ev.Body, ev.IsBase64Encoded
		singleValued(header, ev.Headers, ev.Cookies)
	case HTTPAPI:
		if ev := e.HTTPAPI; ev != nil {
			method, path, query = ev.RequestContext.HTTP.Method, ev.RawPath, ev.RawQueryString
			domain, sourceIP, proto = ev.RequestContext.DomainName, ev.RequestContext.HTTP.SourceIP, ev.RequestContext.HTTP.Protocol
			body, base64Body = ev.Body, ev.IsBase64Encoded
			singleValued(header, ev.Headers, ev.Cookies)
			decodedPath, stage = true, ev.RequestContext.Stage
			break
		}
		fallthrough // payload format 1.0
	case RESTAPI:
		ev := e.Proxy
		method, path = ev.HTTPMethod, ev.Path
		domain, sourceIP, proto = ev.RequestContext.DomainName, ev.RequestContext.Identity.SourceIP, ev.RequestContext.Protocol
		body, base64Body = ev.Body, ev.IsBase64Encoded
		multiValued(header, ev.MultiValueHeaders, ev.Headers)
		// API Gateway sends query parameters decoded.
		query = encodeQuery(ev.MultiValueQueryStringParameters, ev.QueryStringParameters, url.QueryEscape)
		if e.Source == HTTPAPI {
			decodedPath, stage = true, ev.RequestContext.Stage
		}
	case ALB:
		ev := e.ALB
		method, path = ev.HTTPMethod, ev.Path
		body, base64Body = ev.Body, ev.IsBase64Encoded
		multiValued(header, ev.MultiValueHeaders, ev.Headers)
		// An ALB sends query parameters as it received them, still encoded.
		query = encodeQuery(ev.MultiValueQueryStringParameters, ev.QueryStringParameters, func(s string) string { return s })
	}

	if !validMethod(method) {
		return nil, &badRequest{"invalid method " + quoteShort(method)}
	}
	if decodedPath {
		// An HTTP API's path arrives decoded: encode it again, so that a
		// decoded "?" or "%" stays part of the path. A named stage comes
		// first in it.
		path = (&url.URL{Path: path}).EscapedPath()
		if stage != "" && stage != "$default" {
			path = stripSegments(path, "/"+url.PathEscape(stage))
		}
	}
	path = stripSegments(path, a.basePath)
	target := path
	if query != "" {
		target += "?" + query
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || !strings.HasPrefix(path, "/") {
		return nil, &badRequest{"malformed request target " + quoteShort(target)}
	}
	var content []byte
	if base64Body {
		if content, err = base64.StdEncoding.DecodeString(body); err != nil {
			return nil, &badRequest{"body marked base64 is not valid base64"}
		}
	} else {
		content = []byte(body)
	}

	host := header.Get("Host")
	header.Del("Host")
	if host == "" {
		host = domain
	}
	u.Scheme, u.Host = "https", host
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		proto, major, minor = "HTTP/1.1", 1, 1
	}
	r := &http.Request{
		Method:        method,
		URL:           u,
		Proto:         proto,
		ProtoMajor:    major,
		ProtoMinor:    minor,
		Header:        header,
		Body:          http.NoBody,
		ContentLength: int64(len(content)),
		Host:          host,
		RequestURI:    target,
	}
	if len(content) > 0 {
		r.Body = bodyReader{bytes.NewReader(content)}
	}
	if sourceIP != "" {
		r.RemoteAddr = net.JoinHostPort(sourceIP, "0") // Lambda does not say the port
	}
	return r.WithContext(ctx), nil
}

// bodyReader is a request body: it reads from memory and closes as a no-op.
type bodyReader struct{ *bytes.Reader }

func (bodyReader) Close() error { return nil }

// singleValued fills header from a payload format 2.0 event, whose headers
// hold one comma-joined value each. Its cookies list holds the cookies of
// its cookie header (function URLs send both): the request gets them once.
func singleValued(header http.Header, values map[string]string, cookies []string) {
	for k, v := range values {
		if strings.EqualFold(k, "Cookie") && len(cookies) > 0 {
			continue
		}
		header.Add(k, v)
	}
	if len(cookies) > 0 {
		header.Set("Cookie", strings.Join(cookies, "; "))
	}
}

// multiValued fills header from a payload format 1.0 or ALB event: from its
// multi-value headers if it has them, else from its single-value ones.
func multiValued(header http.Header, multi map[string][]string, single map[string]string) {
	if len(multi) > 0 {
		for k, vs := range multi {
			for _, v := range vs {
				header.Add(k, v)
			}
		}
		return
	}
	for k, v := range single {
		header.Add(k, v)
	}
}

// encodeQuery writes query parameters as a query string, keys sorted (the
// events carry them in maps, whose order is lost) and values in their
// order, each escaped by escape.
func encodeQuery(multi map[string][]string, single map[string]string, escape func(string) string) string {
	if len(multi) == 0 && len(single) > 0 {
		multi = make(map[string][]string, len(single))
		for k, v := range single {
			multi[k] = []string{v}
		}
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(multi)) {
		for _, v := range multi[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(escape(k))
			b.WriteByte('=')
			b.WriteString(escape(v))
		}
	}
	return b.String()
}

// stripSegments removes prefix from the start of path when it is made of
// whole segments of it: "/api" comes off "/api" and "/api/x", not off
// "/apiary". An empty prefix or "/" leaves path as it is.
func stripSegments(path, prefix string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	switch {
	case prefix == "":
		return path
	case path == prefix:
		return "/"
	case strings.HasPrefix(path, prefix+"/"):
		return path[len(prefix):]
	}
	return path
}

// validMethod reports whether method is an HTTP token, as net/http requires.
func validMethod(method string) bool {
	if method == "" {
		return false
	}
	for i := range len(method) {
		c := method[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// quoteShort quotes s for an error message, cut to 100 bytes.
func quoteShort(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return strconv.Quote(s)
}
