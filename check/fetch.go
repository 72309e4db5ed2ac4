package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A request is one request the check sends, as a browser's EventSource
// (GET) or fetch (any method, with a body) would.
type request struct {
	method string
	url    string
	header http.Header
	body   []byte
	lines  bool // read a text body's records as lines, not chunks
}

// A response is one response as the client got it: its head, and its body's
// records timed as a browser would have them.
type response struct {
	reading
	status      int
	header      http.Header
	proto       string
	tls         bool
	encoding    string        // Content-Encoding
	undecodable error         // the encoding the check cannot read, if any
	format      format        // how its body divides into records
	headAt      time.Duration // when its head arrived, from the request
	bodyBytes   int           // how many body bytes arrived, as sent (before decoding)
	firstByteAt time.Duration // when the first body byte arrived; -1 if none did
	unfinished  int           // bytes of an unfinished record after the last whole one
}

// A statusError is a response with a status other than 200: its body is
// not read as a stream.
type statusError struct {
	status int
	body   []byte // its first bytes
}

func (e *statusError) Error() string {
	return fmt.Sprintf("answered %d %s %q", e.status, http.StatusText(e.status), e.body)
}

// atOnce runs reads at the same moment and waits for them all. The first
// to fail ends the others (it cancels their context), and its error is the
// one returned.
func atOnce(ctx context.Context, reads ...func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for _, read := range reads {
		wg.Go(func() {
			if err := read(ctx); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}

// fetch sends req with client and reads the response's body until it ends,
// or for limit if endless (then stopping is no error), and at most for
// limit otherwise. A response with another status than 200 is returned with
// a *statusError and its body unread. A body whose encoding the check
// cannot decode is returned with undecodable set. Past any of the check's
// limits, a *limitError; a stall or a body that breaks off, an error saying
// so.
func fetch(ctx context.Context, client *http.Client, req request, limit time.Duration, endless bool) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return response{}, err
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	start := time.Now()
	r := response{reading: reading{start: start, doneAt: -1}, firstByteAt: -1}
	resp, err := client.Do(hr)
	if err != nil && endless && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		// Not even the head within the time it is read for: a path that
		// holds whole responses. The caller judges that.
		r.endAt, r.headAt, r.err = time.Since(start), -1, context.DeadlineExceeded
		return r, nil
	}
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	r.headAt = time.Since(start)
	r.status, r.header, r.proto, r.tls = resp.StatusCode, resp.Header, protoName(resp.Proto), resp.TLS != nil
	r.encoding = resp.Header.Get("Content-Encoding")
	r.format = formatOf(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return r, &statusError{status: resp.StatusCode, body: b}
	}
	dec, err := newDecoder(r.encoding)
	if err != nil {
		r.undecodable = err
		return r, nil
	}
	records := r.format
	if records == formatText && req.lines {
		records = formatNDJSON // one record a line, as NDJSON's
	}
	capt := readBody(resp.Body, start, dec == nil && records != formatText)
	r.bodyBytes = len(capt.raw)
	if len(capt.marks) > 0 {
		r.firstByteAt = capt.marks[0].at
	}
	switch {
	case capt.err == nil:
	case errors.Is(capt.err, context.DeadlineExceeded):
		if !endless {
			return r, fmt.Errorf("stalled: the response did not end within %v (%d bytes arrived)", limit, len(capt.raw))
		}
	case errors.Is(capt.err, context.Canceled):
		return r, capt.err
	default:
		var lim *limitError
		if errors.As(capt.err, &lim) {
			return r, lim
		}
		if !endless || !isCut(capt.err) {
			return r, fmt.Errorf("the response broke off after %d bytes: %w", len(capt.raw), capt.err)
		}
		// A stream read as endless that the path cut: the reading says
		// when. A body that breaks its own framing is an error still.
	}
	text := capt.raw
	if dec != nil {
		if text, err = decodeAll(dec, capt); err != nil {
			return r, err
		}
	}
	events, unfinished, err := parseRecords(records, text, capt, dec)
	if err != nil {
		return r, err
	}
	r.reading = newReading(events, capt, start)
	r.unfinished = unfinished
	return r, nil
}

// isCut reports whether err is how a connection or stream that something
// closed early ends a read: an end before the body's framing said, a reset,
// or an HTTP/2 or HTTP/3 stream reset; not a body whose framing is garbage.
func isCut(err error) bool {
	var netErr net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &netErr) && !netErr.Timeout() ||
		strings.HasPrefix(err.Error(), "stream error:") // net/http's HTTP/2 RST_STREAM, whose type it does not export
}
