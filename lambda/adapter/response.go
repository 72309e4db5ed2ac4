package adapter

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// maxPreludeBytes bounds a streamed response's prelude: its status and
// headers as JSON. A handler that sets more headers than this gets its
// response replaced by a 502.
const maxPreludeBytes = 64 << 10

// Lambda's limits on a buffered response: the JSON document the function
// returns, body included (base64 when it is binary).
const (
	maxLambdaResponseBytes = 6 << 20 // any synchronous invocation, so an HTTP API's
	maxALBResponseBytes    = 1 << 20 // an ALB takes 1 MB
)

// bufferLimit is the largest response a buffered source takes.
func bufferLimit(s Source) int {
	if s == ALB {
		return maxALBResponseBytes
	}
	return maxLambdaResponseBytes
}

// streamedResponse is a response streamed to the Runtime API as Lambda's
// HTTP integrations expect: a JSON prelude, eight NUL bytes, and the body
// as it is written.
type streamedResponse struct {
	prelude io.Reader
	body    *io.PipeReader
}

// Read reads the prelude, then the body.
func (r *streamedResponse) Read(p []byte) (int, error) {
	if r.prelude != nil {
		n, err := r.prelude.Read(p)
		if err != io.EOF {
			return n, err
		}
		r.prelude = nil
		if n > 0 {
			return n, nil
		}
	}
	return r.body.Read(p)
}

// Close stops the body: the handler's later writes fail. The runtime calls
// it when it is done with the response.
func (r *streamedResponse) Close() error { return r.body.Close() }

// ContentType tells the runtime that this is a streamed HTTP response.
func (r *streamedResponse) ContentType() string {
	return "application/vnd.awslambda.http-integration-response"
}

// streamedPrelude encodes p as the prelude of source's streamed response:
// a function URL's has single-valued headers (repeated ones joined with
// ", ") and its Set-Cookie headers as cookies; a REST API's keeps
// multi-value headers.
func streamedPrelude(source Source, p prelude) ([]byte, error) {
	var v any
	if source == FunctionURL {
		headers, cookies := joinHeaders(p.header)
		v = struct {
			StatusCode int               `json:"statusCode"`
			Headers    map[string]string `json:"headers,omitempty"`
			Cookies    []string          `json:"cookies,omitempty"`
		}{p.status, headers, cookies}
	} else {
		v = struct {
			StatusCode        int                 `json:"statusCode"`
			MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
		}{p.status, nonEmpty(p.header)}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("adapter: encoding the response prelude: %w", err)
	}
	if len(b) > maxPreludeBytes {
		return nil, fmt.Errorf("response headers too large: %d bytes as JSON, over the %d the adapter sends", len(b), maxPreludeBytes)
	}
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0), nil
}

// bufferedResponse encodes a whole response as the JSON document that
// source takes: an HTTP API's payload format 2.0 or 1.0 response, or an
// ALB's, single- or multi-value as the request was. It fails if the
// document exceeds the source's limit.
func bufferedResponse(e *Event, p prelude, body []byte) ([]byte, error) {
	var text string
	binary := !utf8.Valid(body)
	if binary {
		text = base64.StdEncoding.EncodeToString(body)
	} else {
		text = string(body)
	}
	var v any
	switch {
	case e.HTTPAPI != nil:
		headers, cookies := joinHeaders(p.header)
		v = struct {
			StatusCode      int               `json:"statusCode"`
			Headers         map[string]string `json:"headers,omitempty"`
			Cookies         []string          `json:"cookies,omitempty"`
			Body            string            `json:"body"`
			IsBase64Encoded bool              `json:"isBase64Encoded"`
		}{p.status, headers, cookies, text, binary}
	case e.Proxy != nil:
		v = struct {
			StatusCode        int                 `json:"statusCode"`
			MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
			Body              string              `json:"body"`
			IsBase64Encoded   bool                `json:"isBase64Encoded"`
		}{p.status, nonEmpty(p.header), text, binary}
	case e.ALB != nil && len(e.ALB.MultiValueHeaders) > 0:
		v = struct {
			StatusCode        int                 `json:"statusCode"`
			StatusDescription string              `json:"statusDescription"`
			MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
			Body              string              `json:"body"`
			IsBase64Encoded   bool                `json:"isBase64Encoded"`
		}{p.status, statusLine(p.status), nonEmpty(p.header), text, binary}
	case e.ALB != nil:
		headers := make(map[string]string, len(p.header))
		for k, vs := range p.header {
			if k == "Set-Cookie" {
				headers[k] = vs[len(vs)-1] // an ALB without multi-value headers takes one cookie
				continue
			}
			headers[k] = strings.Join(vs, ", ")
		}
		v = struct {
			StatusCode        int               `json:"statusCode"`
			StatusDescription string            `json:"statusDescription"`
			Headers           map[string]string `json:"headers,omitempty"`
			Body              string            `json:"body"`
			IsBase64Encoded   bool              `json:"isBase64Encoded"`
		}{p.status, statusLine(p.status), headers, text, binary}
	default:
		return nil, errors.New("adapter: no buffered response for " + e.Source.article())
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("adapter: encoding the response: %w", err)
	}
	if limit := bufferLimit(e.Source); len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes as JSON, over the %d %s takes from Lambda", errTooLarge, len(b), limit, e.Source.article())
	}
	return b, nil
}

// joinHeaders turns h into payload format 2.0 headers: one value per name,
// repeated values joined with ", ", and Set-Cookie headers as a list of
// cookies (which cannot be joined).
func joinHeaders(h http.Header) (map[string]string, []string) {
	var headers map[string]string
	var cookies []string
	for k, vs := range h {
		if k == "Set-Cookie" {
			cookies = vs
			continue
		}
		if headers == nil {
			headers = make(map[string]string, len(h))
		}
		headers[k] = strings.Join(vs, ", ")
	}
	return headers, cookies
}

func nonEmpty(h http.Header) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	return h
}

// statusLine is an ALB's status description: "200 OK".
func statusLine(code int) string {
	return strings.TrimSpace(fmt.Sprintf("%d %s", code, http.StatusText(code)))
}
