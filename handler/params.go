package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bounds of the query parameters. A value outside them is answered with 400.
const (
	minInterval    = time.Millisecond // /events?interval=
	maxInterval    = time.Hour
	maxEventsCount = 1_000_000 // /events?count=
	maxSize        = 1 << 20   // /events?size=, in bytes
	maxFastCount   = 10_000    // /stream/fast?count=
	maxFastDelay   = time.Minute
	minHeartbeat   = time.Second // ?heartbeat= on both stream routes; 0 turns heartbeats off
	maxHeartbeat   = time.Hour
)

// defaultFastCount is how many events /stream/fast sends before "done".
const defaultFastCount = 100

// eventsParams are the settings of one /events stream.
type eventsParams struct {
	interval  time.Duration // between two ticks
	count     int64         // ticks before the response ends; 0 means endless
	size      int           // minimum length of each tick's data, in bytes
	heartbeat time.Duration // the longest silence before a comment; 0: none
	format    streamFormat
}

// fastParams are the settings of one /stream/fast burst.
type fastParams struct {
	count     int64         // events before "done"
	delay     time.Duration // between two events
	size      int           // minimum length of each event's data, in bytes
	heartbeat time.Duration // the longest silence before a comment; 0: none
	format    streamFormat
}

// The parameters each stream route takes, in its query or, for a POST, as
// the members of a JSON object in its body.
var (
	eventsParamNames = []string{"interval", "count", "size", "heartbeat", "format"}
	fastParamNames   = []string{"count", "delay", "size", "heartbeat", "format"}
)

func (h *Handler) parseEventsParams(values url.Values) (eventsParams, error) {
	q := &query{values: values}
	p := eventsParams{
		interval:  q.duration("interval", h.interval, minInterval, maxInterval),
		count:     q.int("count", 0, 1, maxEventsCount),
		size:      int(q.int("size", 0, 0, maxSize)),
		heartbeat: q.heartbeat(h.heartbeat),
		format:    q.format(),
	}
	return p, q.err
}

func (h *Handler) parseFastParams(values url.Values) (fastParams, error) {
	q := &query{values: values}
	p := fastParams{
		count:     q.int("count", defaultFastCount, 1, maxFastCount),
		delay:     q.duration("delay", h.fastDelay, 0, maxFastDelay),
		size:      int(q.int("size", 0, 0, maxSize)),
		heartbeat: q.heartbeat(h.heartbeat),
		format:    q.format(),
	}
	return p, q.err
}

// A query reads a request's parameters, keeping the first error: after
// one, every read returns its default. Parameters it is not asked for are
// ignored.
type query struct {
	values url.Values
	err    error
}

// value returns the one value of the parameter name, if it is given.
func (q *query) value(name string) (string, bool) {
	if q.err != nil {
		return "", false
	}
	vs := q.values[name]
	switch len(vs) {
	case 0:
		return "", false
	case 1:
		return vs[0], true
	}
	q.err = fmt.Errorf("%s: given %d times; give it once", name, len(vs))
	return "", false
}

// duration reads a Go duration (250ms, 2s, 1m30s) from min to max.
func (q *query) duration(name string, def, min, max time.Duration) time.Duration {
	s, ok := q.value(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < min || d > max {
		q.err = fmt.Errorf("%s: %q is not a duration from %s to %s (such as 250ms or 2s)",
			name, clip(s), formatDuration(min), formatDuration(max))
		return def
	}
	return d
}

// heartbeat reads the heartbeat period: 0 (none; to find a path's idle
// timeout) or a duration from minHeartbeat to maxHeartbeat.
func (q *query) heartbeat(def time.Duration) time.Duration {
	s, ok := q.value("heartbeat")
	if !ok {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d != 0 && (d < minHeartbeat || d > maxHeartbeat) {
		q.err = fmt.Errorf("heartbeat: %q is not 0 (none) or a duration from %s to %s (such as 30s)",
			clip(s), formatDuration(minHeartbeat), formatDuration(maxHeartbeat))
		return def
	}
	return d
}

// format reads the stream's format: sse (the default), ndjson or text.
func (q *query) format() streamFormat {
	s, ok := q.value("format")
	if !ok {
		return formatSSE
	}
	for f, name := range formatNames {
		if s == name {
			return streamFormat(f)
		}
	}
	q.err = fmt.Errorf("format: %q is not sse, ndjson or text", clip(s))
	return formatSSE
}

// int reads a decimal integer from min to max.
func (q *query) int(name string, def, min, max int64) int64 {
	s, ok := q.value(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		q.err = fmt.Errorf("%s: %q is not a whole number from %d to %d", name, clip(s), min, max)
		return def
	}
	return n
}

// formatDuration writes d as people do: 1h rather than 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// clip shortens a client's value for an error message.
func clip(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// maxBodyBytes bounds a stream request's body: a JSON object of a few
// parameters needs a few dozen bytes.
const maxBodyBytes = 64 << 10

// A requestError is a request the handler refuses, with its status.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// streamParams reads the parameters of a stream route (names, read by
// parse) from r's query and, for a POST, from the members of the JSON
// object in its body. A parameter may be given in both only with the same
// value. On a bad request it answers r and reports false.
func streamParams[P comparable](h *Handler, w http.ResponseWriter, r *http.Request, names []string, parse func(url.Values) (P, error)) (P, bool) {
	p, err := mergedParams(h, w, r, names, parse)
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) {
			re = badRequest("%s", err)
		}
		writeError(w, r, re.status, re.msg)
		return p, false
	}
	return p, true
}

// mergedParams is streamParams without the answer: the parameters, or why
// the request is refused. A POST refused for its query leaves its body
// unread, as any refused body is.
func mergedParams[P comparable](h *Handler, w http.ResponseWriter, r *http.Request, names []string, parse func(url.Values) (P, error)) (P, error) {
	var zero P
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err == nil && r.Method != http.MethodPost {
		return parse(values)
	}
	if err == nil {
		_, err = parse(values)
	} else {
		err = fmt.Errorf("malformed query string: %w", err)
	}
	if err != nil {
		if r.Method == http.MethodPost && r.ContentLength != 0 {
			leaveBodyUnread(w, r)
		}
		return zero, err
	}
	body, err := h.readBody(w, r)
	if err != nil {
		return zero, err
	}
	members, err := bodyValues(body, names)
	if err != nil {
		return zero, err
	}
	if _, err := parse(members); err != nil {
		return zero, badRequest("request body: %s", err)
	}
	for _, name := range names {
		inBody, ok := members[name]
		if !ok {
			continue
		}
		if inQuery, ok := values[name]; ok {
			// Both parse alone; they must mean the same (50ms and 0.05s do).
			q, _ := parse(url.Values{name: inQuery})
			b, _ := parse(url.Values{name: inBody})
			if q != b {
				return zero, badRequest("%s: the query says %q and the body %q; give it once", name, clip(inQuery[0]), clip(inBody[0]))
			}
		}
		values[name] = inBody
	}
	return parse(values)
}

// readBody reads r's body, at most maxBodyBytes of it, within the handler's
// body timeout. A body announced larger is refused at once, unread; one that
// grows larger, or does not arrive in time, is refused when it does. Every
// refusal closes the connection, so nothing left of the body is read as a
// next request.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength == 0 {
		return nil, nil
	}
	tooLarge := &requestError{http.StatusRequestEntityTooLarge, "request body over 64 KiB; send a JSON object such as {\"count\":20}"}
	if r.ContentLength > maxBodyBytes {
		leaveBodyUnread(w, r)
		return nil, tooLarge
	}
	rc := http.NewResponseController(w)
	// A writer without deadlines (http.ErrNotSupported) has its body at
	// hand: a Lambda event's, or a test's.
	timed := h.bodyTimeout > 0 && rc.SetReadDeadline(time.Now().Add(h.bodyTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if timed {
		rc.SetReadDeadline(time.Time{}) //nolint:errcheck // set a moment ago
	}
	if err == nil {
		return body, nil
	}
	leaveBodyUnread(w, r)
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return nil, tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &requestError{http.StatusRequestTimeout, "request body not complete within " + formatDuration(h.bodyTimeout)}
	}
	return nil, badRequest("reading the request body: %s", err)
}

// bodyValues reads a stream request's body: empty, or a JSON object whose
// members are among names, each a string or a number, which it returns as
// query values.
func bodyValues(body []byte, names []string) (url.Values, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var members map[string]any
	if err := dec.Decode(&members); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, badRequest(`request body: want a JSON object such as {"count":20}, not %s`, typeErr.Value)
		}
		return nil, badRequest("request body: invalid JSON: %s", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("request body: invalid JSON: more than one value")
	}
	values := make(url.Values, len(members))
	for _, name := range slices.Sorted(maps.Keys(members)) {
		if !slices.Contains(names, name) {
			return nil, badRequest("request body: unknown member %q; the members are %s", clip(name), strings.Join(names, ", "))
		}
		switch v := members[name].(type) {
		case string:
			values[name] = []string{v}
		case json.Number:
			values[name] = []string{v.String()}
		default:
			return nil, badRequest("request body: %s: want a number or a string", name)
		}
	}
	return values, nil
}
