package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"sort"
	"time"

	"github.com/tickstream/tickstream/sse"
)

// A format is how a stream's body divides into the records a client acts
// on: what "an event" is for it.
type format string

const (
	formatSSE    format = "sse"    // text/event-stream: events framed by blank lines
	formatNDJSON format = "ndjson" // NDJSON / JSON Lines: one record a line
	formatText   format = "text"   // anything else: raw chunks, as they become readable
)

// formatOf returns the format of a response with Content-Type ct.
func formatOf(ct string) format {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return formatText
	}
	switch mt {
	case sse.ContentType:
		return formatSSE
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines", "application/json-seq":
		return formatNDJSON
	}
	return formatText
}

// An event is one record of a stream (an SSE event, an NDJSON line, a text
// chunk) and when a client had it whole.
type event struct {
	id, typ, data string
	end           int           // the offset just past it, in the decoded stream
	at            time.Duration // when a client had it whole
}

// isDone reports whether e marks its stream's end as the stream's own
// protocol does: OpenAI's "data: [DONE]", or an NDJSON record with
// "done": true (Ollama's last).
func (e event) isDone(f format) bool {
	switch f {
	case formatSSE:
		return e.data == "[DONE]"
	case formatNDJSON:
		var rec struct {
			Done bool `json:"done"`
		}
		return json.Unmarshal([]byte(e.data), &rec) == nil && rec.Done
	}
	return false
}

// parseEvents reads the dispatched events of an event stream as the WHATWG
// rules do (sse.Parser), up to the limits, and says how many bytes follow
// the last whole block: an unfinished one, which a client drops.
func parseEvents(text []byte) (events []event, unfinished int, err error) {
	p := sse.NewParser(text)
	p.MaxLine = maxLineBytes
	whole := 0
	for {
		b, ok := p.Next()
		if !ok {
			break
		}
		whole = b.End
		if !b.Dispatched {
			continue
		}
		if len(events) == maxEvents {
			return events, 0, errTooManyEvents
		}
		events = append(events, event{id: b.Event.ID, typ: b.Event.Type, data: b.Event.Data, end: b.End})
	}
	if errors.Is(p.Err(), sse.ErrLineTooLong) {
		return events, 0, errLongLine
	}
	return events, len(bytes.TrimRight(text[whole:], "\r\n")), p.Err()
}

var (
	errTooManyEvents = &limitError{fmt.Sprintf("sent more than %d events", maxEvents)}
	errLongLine      = &limitError{fmt.Sprintf("sent a line of more than %d KiB", maxLineBytes>>10)}
)

// parseLines reads the records of an NDJSON stream: each line that is not
// blank, ended by LF or CRLF. An unfinished last line is not a record: it
// says how many bytes it has.
func parseLines(text []byte) (events []event, unfinished int, err error) {
	pos := 0
	for pos < len(text) {
		i := bytes.IndexByte(text[pos:], '\n')
		if i < 0 {
			if len(text)-pos > maxLineBytes {
				return events, 0, errLongLine
			}
			return events, len(bytes.TrimSpace(text[pos:])), nil
		}
		if i > maxLineBytes {
			return events, 0, errLongLine
		}
		line := bytes.TrimSpace(text[pos : pos+i])
		pos += i + 1
		if len(line) == 0 {
			continue
		}
		if len(events) == maxEvents {
			return events, 0, errTooManyEvents
		}
		events = append(events, event{data: string(line), end: pos})
	}
	return events, 0, nil
}

// parseRecords returns the records of a body of format f (text, decoded
// from c with d), each timed by when a client had it whole, and how many
// bytes of an unfinished record follow the last. A text stream's records
// are its chunks: what each read made readable.
func parseRecords(f format, text []byte, c capture, d decoder) (events []event, unfinished int, err error) {
	switch f {
	case formatSSE:
		events, unfinished, err = parseEvents(text)
	case formatNDJSON:
		events, unfinished, err = parseLines(text)
	default:
		events, err = textChunks(text, c, d)
		return events, 0, err
	}
	if err != nil {
		return nil, 0, err
	}
	return events, unfinished, timeEvents(events, c, d)
}

// textChunks returns a text stream's chunks: for each read after which a
// client could read more of the text, the text it could read since the
// read before.
func textChunks(text []byte, c capture, d decoder) ([]event, error) {
	var events []event
	prev, work := 0, 0
	for _, m := range c.marks {
		n := min(m.end, len(text))
		if d != nil {
			var err error
			if n, err = decodePrefix(d, c.raw[:m.end], len(text)); err != nil {
				return nil, err
			}
			if work += n; work > maxTimingWork {
				return nil, &limitError{"sent a compressed stream too costly to time"}
			}
		}
		if n <= prev {
			continue
		}
		if len(events) == maxEvents {
			return nil, errTooManyEvents
		}
		events = append(events, event{data: string(text[prev:n]), end: n, at: m.at})
		prev = n
	}
	return events, nil
}

// timeEvents sets each event's arrival: the first mark after which the
// stream held it whole, decoded by d (nil: not compressed).
func timeEvents(events []event, c capture, d decoder) error {
	if d == nil {
		for i := range events {
			k := sort.Search(len(c.marks), func(k int) bool { return c.marks[k].end >= events[i].end })
			events[i].at = c.marks[min(k, len(c.marks)-1)].at
		}
		return nil
	}
	// For a compressed stream, which mark yields an event is found by
	// decoding prefixes: a forward gallop from the previous event's mark,
	// then a binary search.
	work := 0
	yields := func(k, want int) (bool, error) {
		n, err := decodePrefix(d, c.raw[:c.marks[k].end], want)
		work += n
		if work > maxTimingWork {
			return false, &limitError{"sent a compressed stream too costly to time"}
		}
		return n >= want, err
	}
	lo := 0
	for i := range events {
		want := events[i].end
		hi, step := lo, 1
		for {
			ok, err := yields(hi, want)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			lo = hi + 1
			if hi == len(c.marks)-1 {
				hi = len(c.marks) // only the whole body yields it
				break
			}
			hi = min(hi+step, len(c.marks)-1)
			step *= 2
		}
		for lo < hi {
			mid := (lo + hi) / 2
			ok, err := yields(mid, want)
			if err != nil {
				return err
			}
			if ok {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		events[i].at = c.marks[min(hi, len(c.marks)-1)].at
		lo = min(hi, len(c.marks)-1)
	}
	return nil
}
