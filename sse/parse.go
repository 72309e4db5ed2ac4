package sse

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrLineTooLong is the error of a Parser that met a line longer than its
// MaxLine.
var ErrLineTooLong = errors.New("sse: line too long")

// A Block is one blank-line-ended block of an event stream as a client that
// follows the WHATWG parsing rules reads it.
type Block struct {
	// Event holds what the client saw in the block: Comment is its comment
	// lines joined by "\n", Retry the last valid reconnection time it set,
	// ID the client's last event ID after the block (which persists from
	// earlier blocks), and Type and Data the dispatched event's type ("" for
	// "message") and data. Values that are not valid UTF-8 have each invalid
	// sequence replaced by U+FFFD, as a browser decodes them.
	Event Event

	// Dispatched reports whether the client dispatched an event: only blocks
	// with at least one data line are dispatched.
	Dispatched bool

	// End is the offset in the stream just past the block's blank line: a
	// client has the block once it has End bytes of the stream.
	End int
}

// A Parser reads the blocks of an event stream as a browser does: it drops
// one leading byte order mark, splits lines on CRLF, LF or CR, and ends a
// block at each blank line. Lines after the last blank line are an
// unfinished block, which it does not return (a client discards it if the
// stream ends there).
//
// The zero Parser is not usable; make one with NewParser.
type Parser struct {
	// MaxLine, if positive, is the longest line the parser reads: a longer
	// one, finished or not, stops it with ErrLineTooLong.
	MaxLine int

	stream []byte
	pos    int
	lastID string
	err    error
}

// NewParser returns a parser of stream.
func NewParser(stream []byte) *Parser {
	p := &Parser{stream: stream}
	if bytes.HasPrefix(stream, []byte("\uFEFF")) {
		p.pos = 3
	}
	return p
}

// Next returns the next whole block, or false when there is none: the
// stream's complete blocks are all read, or Err says why it stopped.
func (p *Parser) Next() (Block, bool) {
	var (
		ev       Event
		data     []byte
		hasData  bool
		comments []string
	)
	for p.err == nil {
		rest := p.stream[p.pos:]
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			if p.MaxLine > 0 && len(rest) > p.MaxLine {
				p.err = ErrLineTooLong
			}
			return Block{}, false
		}
		if p.MaxLine > 0 && i > p.MaxLine {
			p.err = ErrLineTooLong
			return Block{}, false
		}
		line := rest[:i]
		next := i + 1
		if rest[i] == '\r' && next < len(rest) && rest[next] == '\n' {
			next++
		}
		p.pos += next
		if len(line) == 0 {
			ev.ID = p.lastID
			ev.Comment = strings.Join(comments, "\n")
			if hasData {
				ev.Data = validUTF8(bytes.TrimSuffix(data, []byte("\n")))
			} else {
				ev.Type = ""
			}
			return Block{Event: ev, Dispatched: hasData, End: p.pos}, true
		}
		if line[0] == ':' {
			comments = append(comments, validUTF8(bytes.TrimPrefix(line[1:], []byte(" "))))
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found {
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			ev.Type = validUTF8(value)
		case "data":
			data = append(append(data, value...), '\n')
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				p.lastID = validUTF8(value)
			}
		case "retry":
			if ms, ok := asciiDigits(value); ok {
				ev.Retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return Block{}, false
}

// Err returns why the parser stopped before the stream's end, or nil.
func (p *Parser) Err() error { return p.err }

func validUTF8(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }

// asciiDigits parses a retry field's value: ASCII digits only.
func asciiDigits(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}
