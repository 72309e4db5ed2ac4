// Package sse encodes server-sent events as the WHATWG HTML standard defines
// them ("Server-sent events", the text/event-stream format).
//
// The encoder never lets a field's value break the frame it is written in:
// data is split into one "data:" line per line, comments into one ":" line
// per line, and an id or event type that a line break (or, for ids, a NUL)
// would corrupt is rejected with an error instead of being written.
//
// Encoding appends to a caller's byte slice, so a stream that reuses its
// buffer encodes events without allocating.
package sse

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ContentType is the media type of an event stream. A client fails the
// connection for any other Content-Type.
const ContentType = "text/event-stream"

// ErrInvalidEvent is returned, wrapped with the reason, for an Event that
// cannot be encoded without changing its meaning.
var ErrInvalidEvent = errors.New("sse: invalid event")

// An Event is one server-sent event: the fields a client reads back, plus an
// optional comment and reconnection delay written before them.
type Event struct {
	// Comment is written first as one ":" line per line of text. Clients
	// ignore comments; proxies see traffic. Empty writes no comment.
	Comment string

	// Retry, when positive, asks the client to wait this long before
	// reconnecting. It is written in whole milliseconds.
	Retry time.Duration

	// ID sets the client's last event ID, which a browser sends back in the
	// Last-Event-ID header when it reconnects. Empty writes no "id:" line.
	// It must not contain CR, LF or NUL.
	ID string

	// Type is the event type a client dispatches on ("event:" line). Empty
	// writes no line and the client dispatches a "message" event. It must
	// not contain CR or LF.
	Type string

	// Data is the payload. It is written as one "data:" line per line, so a
	// client reads it back with every line break (CR, LF or CRLF) as LF.
	// Empty data still writes one "data:" line: every encoded Event is
	// dispatched by the client.
	Data string
}

// AppendEvent appends the encoding of ev, ended by a blank line, to dst and
// returns the extended slice. If ev cannot be encoded faithfully it returns
// dst unchanged and an error wrapping ErrInvalidEvent.
func AppendEvent(dst []byte, ev Event) ([]byte, error) {
	if err := ev.validate(); err != nil {
		return dst, err
	}
	dst = appendLines(dst, ":", ev.Comment)
	if ev.Retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, ev.Retry.Milliseconds(), 10)
		dst = append(dst, '\n')
	}
	if ev.ID != "" {
		dst = appendLine(dst, "id:", ev.ID)
	}
	if ev.Type != "" {
		dst = appendLine(dst, "event:", ev.Type)
	}
	if ev.Data == "" {
		dst = appendLine(dst, "data:", "")
	} else {
		dst = appendLines(dst, "data:", ev.Data)
	}
	return append(dst, '\n'), nil
}

// AppendComment appends a comment frame (one ":" line per line of text,
// then a blank line) to dst. Clients ignore it; it keeps idle connections
// through proxies alive. Text that is not valid UTF-8 is an error.
func AppendComment(dst []byte, text string) ([]byte, error) {
	if !utf8.ValidString(text) {
		return dst, fmt.Errorf("%w: comment is not valid UTF-8", ErrInvalidEvent)
	}
	if text == "" {
		dst = appendLine(dst, ":", "")
	} else {
		dst = appendLines(dst, ":", text)
	}
	return append(dst, '\n'), nil
}

func (ev Event) validate() error {
	switch {
	case ev.Retry < 0:
		return fmt.Errorf("%w: negative retry %v", ErrInvalidEvent, ev.Retry)
	case strings.ContainsAny(ev.ID, "\r\n\x00"):
		return fmt.Errorf("%w: id %q contains CR, LF or NUL", ErrInvalidEvent, ev.ID)
	case strings.ContainsAny(ev.Type, "\r\n"):
		return fmt.Errorf("%w: event type %q contains CR or LF", ErrInvalidEvent, ev.Type)
	case !utf8.ValidString(ev.ID), !utf8.ValidString(ev.Type),
		!utf8.ValidString(ev.Data), !utf8.ValidString(ev.Comment):
		return fmt.Errorf("%w: a field is not valid UTF-8", ErrInvalidEvent)
	}
	return nil
}

// appendLine appends one line: prefix (a field name and its colon), then a
// space and value unless value is empty. The space is always written before
// a value, so a value that starts with a space keeps it: a client strips
// exactly one.
func appendLine(dst []byte, prefix, value string) []byte {
	dst = append(dst, prefix...)
	if value != "" {
		dst = append(dst, ' ')
		dst = append(dst, value...)
	}
	return append(dst, '\n')
}

// appendLines appends one line per line of text, splitting on CRLF, LF and
// CR alike, each led by prefix. Empty text appends nothing.
func appendLines(dst []byte, prefix, text string) []byte {
	if text == "" {
		return dst
	}
	for {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			return appendLine(dst, prefix, text)
		}
		dst = appendLine(dst, prefix, text[:i])
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
}
