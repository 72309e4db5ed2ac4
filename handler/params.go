package handler

import (
	"fmt"
	"net/url"
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

// eventsParams are the settings of one /events stream.
type eventsParams struct {
	interval  time.Duration // between two ticks
	count     int64         // ticks before the response ends; 0 means endless
	size      int           // minimum length of each tick's data, in bytes
	heartbeat time.Duration // the longest silence before a comment; 0: none
}

// fastParams are the settings of one /stream/fast burst.
type fastParams struct {
	count     int64         // events before "done"
	delay     time.Duration // between two events
	size      int           // minimum length of each event's data, in bytes
	heartbeat time.Duration // the longest silence before a comment; 0: none
}

func (h *Handler) parseEventsParams(rawQuery string) (eventsParams, error) {
	q := newQuery(rawQuery)
	p := eventsParams{
		interval:  q.duration("interval", h.interval, minInterval, maxInterval),
		count:     q.int("count", 0, 1, maxEventsCount),
		size:      int(q.int("size", 0, 0, maxSize)),
		heartbeat: q.heartbeat(h.heartbeat),
	}
	return p, q.err
}

func (h *Handler) parseFastParams(rawQuery string) (fastParams, error) {
	q := newQuery(rawQuery)
	p := fastParams{
		count:     q.int("count", defaultFastCount, 1, maxFastCount),
		delay:     q.duration("delay", h.fastDelay, 0, maxFastDelay),
		size:      int(q.int("size", 0, 0, maxSize)),
		heartbeat: q.heartbeat(h.heartbeat),
	}
	return p, q.err
}

// A query reads a request's query parameters, keeping the first error: after
// one, every read returns its default. Parameters it is not asked for are
// ignored.
type query struct {
	values url.Values
	err    error
}

func newQuery(raw string) *query {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return &query{err: fmt.Errorf("malformed query string: %w", err)}
	}
	return &query{values: values}
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
