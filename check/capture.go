package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// Limits on what the check takes from a server, whatever it sends: they
// bound the memory and the work of a run. tickstream's probes need a small
// part of each (the largest, the padded burst, is about 45 KB and 41 events).
const (
	maxRawBytes     = 1 << 20   // of one response body, as it arrives
	maxDecodedBytes = 1 << 20   // that one compressed body may decode to
	maxLineBytes    = 64 << 10  // of one line of an event stream
	maxEvents       = 10000     // records of one stream (an LLM answer is a few thousand)
	maxTimingWork   = 256 << 20 // bytes decoded, in all, to time one compressed stream's events
	markResolution  = time.Millisecond
)

// A limitError is an answer that went past one of the limits.
type limitError struct{ what string }

func (e *limitError) Error() string { return e.what }

// A mark is one read of a body: how many bytes had arrived by when. Reads
// closer together than markResolution share one mark.
type mark struct {
	end int
	at  time.Duration
}

// A capture is a response body as it arrived.
type capture struct {
	raw   []byte
	marks []mark
	endAt time.Duration // when the body ended or the read stopped
	ended bool          // the body ended properly (io.EOF)
	err   error         // why the read stopped otherwise
}

// readBody reads body until it ends, fails, or goes past a limit, noting
// when each byte arrived (from start). plain says the body is not
// compressed, so its lines can be bounded as they arrive; a compressed
// body's are bounded when it is decoded.
func readBody(body io.Reader, start time.Time, plain bool) capture {
	var c capture
	buf := make([]byte, 32<<10)
	line := 0 // bytes of the unfinished last line
	for {
		n, err := body.Read(buf)
		now := time.Since(start)
		if n > 0 {
			if len(c.raw)+n > maxRawBytes {
				c.endAt, c.err = now, &limitError{fmt.Sprintf("sent more than %d KiB", maxRawBytes>>10)}
				return c
			}
			if plain {
				if i := bytes.LastIndexAny(buf[:n], "\r\n"); i >= 0 {
					line = n - i - 1
				} else {
					line += n
				}
				if line > maxLineBytes {
					c.endAt, c.err = now, &limitError{fmt.Sprintf("sent a line of more than %d KiB", maxLineBytes>>10)}
					return c
				}
			}
			c.raw = append(c.raw, buf[:n]...)
			if k := len(c.marks) - 1; k >= 0 && now-c.marks[k].at < markResolution {
				c.marks[k].end = len(c.raw)
			} else {
				c.marks = append(c.marks, mark{end: len(c.raw), at: now})
			}
		}
		if err != nil {
			c.endAt = now
			if errors.Is(err, io.EOF) {
				c.ended = true
			} else {
				c.err = err
			}
			return c
		}
	}
}
