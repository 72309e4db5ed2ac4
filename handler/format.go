package handler

import (
	"strconv"
	"time"

	"github.com/tickstream/tickstream/sse"
)

// A streamFormat is how a stream route writes its events (?format=): as
// Server-Sent Events, the default, or in one of the other shapes people
// stream, which paths may treat differently from text/event-stream.
type streamFormat uint8

const (
	formatSSE    streamFormat = iota // text/event-stream: one event a frame
	formatNDJSON                     // application/x-ndjson: the event's data, one JSON object a line
	formatText                       // text/plain: one line of words an event
)

// formatNames are the values of ?format=, by format.
var formatNames = [...]string{formatSSE: "sse", formatNDJSON: "ndjson", formatText: "text"}

// contentType is the Content-Type of a stream in format f.
func (f streamFormat) contentType() string {
	switch f {
	case formatNDJSON:
		return "application/x-ndjson"
	case formatText:
		return "text/plain; charset=utf-8"
	}
	return sse.ContentType
}

// heartbeat is what a stream in format f sends after a silence: an SSE
// comment, which clients ignore, or an empty line, which NDJSON readers
// skip (the NDJSON spec lets parsers ignore empty lines) and a text reader
// shows as one.
func (f streamFormat) heartbeat() []byte {
	if f == formatSSE {
		return heartbeatFrame
	}
	return newline
}

var newline = []byte("\n")

// appendTick appends one /events frame in format f whose data is at least
// size bytes: in SSE, a "tick" event (after a retry field if retry is not
// 0) whose data is the JSON object {"id":N,"timestamp":T,"message":"Event
// #N"}; in NDJSON, that object on a line; in text, "Event #N at T" on a
// line. Every byte of it is a digit, a fixed ASCII string or a timestamp,
// so nothing in it can break the frame; it is written here rather than
// through sse.AppendEvent so that the tick path allocates nothing.
func appendTick(dst []byte, f streamFormat, retry time.Duration, id int64, ts time.Time, size int) []byte {
	switch f {
	case formatNDJSON:
		return append(appendTickData(dst, id, ts, size), '\n')
	case formatText:
		return appendTextLine(dst, "Event #", id, ts, size)
	}
	if retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, retry.Milliseconds(), 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, "id: "...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, "\nevent: tick\ndata: "...)
	return append(appendTickData(dst, id, ts, size), "\n\n"...)
}

// appendTickData appends the JSON object of tick id, at least size bytes.
func appendTickData(dst []byte, id int64, ts time.Time, size int) []byte {
	data := len(dst)
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"timestamp":"`...)
	dst = appendTimestamp(dst, ts)
	dst = append(dst, `","message":"Event #`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, '"')
	if short := size - (len(dst) - data) - len("}"); short > 0 {
		dst = appendPad(dst, short)
	}
	return append(dst, '}')
}

// appendFast appends one /stream/fast frame in format f whose data is at
// least size bytes: in SSE, an event with id seq whose data is the JSON
// object {"seq":N,"ts":T}; in NDJSON, that object on a line; in text,
// "seq N at T" on a line. Like appendTick, it cannot break its frame.
func appendFast(dst []byte, f streamFormat, seq int64, ts time.Time, size int) []byte {
	switch f {
	case formatNDJSON:
		return append(appendFastData(dst, seq, ts, size), '\n')
	case formatText:
		return appendTextLine(dst, "seq ", seq, ts, size)
	}
	dst = append(dst, "id: "...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, "\ndata: "...)
	return append(appendFastData(dst, seq, ts, size), "\n\n"...)
}

// appendFastData appends the JSON object of /stream/fast event seq, at
// least size bytes.
func appendFastData(dst []byte, seq int64, ts time.Time, size int) []byte {
	data := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = appendTimestamp(dst, ts)
	dst = append(dst, '"')
	if short := size - (len(dst) - data) - len("}"); short > 0 {
		dst = appendPad(dst, short)
	}
	return append(dst, '}')
}

// appendDone appends the frame that ends a /stream/fast burst of count
// events in format f: in SSE a "done" event with id count and the data
// "complete"; in NDJSON the line {"done":true,"count":N}, as Ollama ends
// its streams with "done":true; in text the line "done".
func appendDone(dst []byte, f streamFormat, count int64) []byte {
	switch f {
	case formatNDJSON:
		dst = append(dst, `{"done":true,"count":`...)
		dst = strconv.AppendInt(dst, count, 10)
		return append(dst, "}\n"...)
	case formatText:
		return append(dst, "done\n"...)
	}
	dst = append(dst, "id: "...)
	dst = strconv.AppendInt(dst, count, 10)
	return append(dst, "\nevent: done\ndata: complete\n\n"...)
}

// appendPad appends a "pad" member (`,"pad":"...."`) of n bytes, or of the
// smallest size a member can have if n is smaller.
func appendPad(dst []byte, n int) []byte {
	n = max(n-len(`,"pad":""`), 0)
	dst = append(dst, `,"pad":"`...)
	return append(appendDots(dst, n), '"')
}

// appendTextLine appends the text line of an event: prefix and n, " at "
// and ts, then a space and dots to make it size bytes if it is shorter,
// and a line end.
func appendTextLine(dst []byte, prefix string, n int64, ts time.Time, size int) []byte {
	line := len(dst)
	dst = append(dst, prefix...)
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, " at "...)
	dst = appendTimestamp(dst, ts)
	if short := size - (len(dst) - line); short > 0 {
		dst = appendDots(append(dst, ' '), short-1)
	}
	return append(dst, '\n')
}

// appendDots appends n dots.
func appendDots(dst []byte, n int) []byte {
	const fill = "................................................................"
	for ; n > len(fill); n -= len(fill) {
		dst = append(dst, fill...)
	}
	return append(dst, fill[:n]...)
}

// maxTickSize bounds the length of the /events frames for retry and size in
// any format: that of the largest SSE tick without padding, plus the
// padding (the other formats' ticks are shorter).
func maxTickSize(retry time.Duration, size int) int {
	var buf [256]byte
	return len(appendTick(buf[:0], formatSSE, retry, maxEventID, time.Time{}, 0)) + size
}

// maxFastSize bounds the length of the /stream/fast frames for size in any
// format (the done frame, and the other formats' events, are shorter).
func maxFastSize(size int) int {
	var buf [128]byte
	return len(appendFast(buf[:0], formatSSE, maxFastCount, time.Time{}, 0)) + size
}
