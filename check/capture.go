package main

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Limits on what the check takes from a server, whatever it sends: they
// bound the memory and the work of a run. tickstream's probes need a small
// part of each (the largest, the padded burst, is about 45 KB and 41 events).
const (
	maxRawBytes     = 1 << 20   // of one response body, as it arrives
	maxDecodedBytes = 1 << 20   // that one compressed body may decode to
	maxLineBytes    = 64 << 10  // of one line of an event stream
	maxEvents       = 1000      // of one stream
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

// An event is one dispatched event of a stream, and when a client got it.
type event struct {
	id, typ, data string
	end           int           // the offset just past its blank line, in the decoded stream
	at            time.Duration // when a browser had it whole
}

// A decoder undoes one Content-Encoding as a browser does, incrementally:
// fed a prefix of the body, it yields every byte that prefix determines
// (zlib and brotli decode symbol by symbol; zstd block by block, as its
// format requires). The check times each event by the first read after
// which the decoder yields it whole, so a compressor that keeps an event's
// tail shows as late as it is, and a decoder that waits for block ends
// (Go's own) cannot make a live stream look held.
type decoder interface {
	// reset starts decoding r.
	reset(r io.Reader) (io.Reader, error)
}

// newDecoder returns the decoder of encoding, or nil for a body that is not
// compressed, or an error for an encoding the check cannot read.
func newDecoder(encoding string) (decoder, error) {
	switch encoding {
	case "", "identity":
		return nil, nil
	case "gzip", "x-gzip":
		return &gzipDecoder{}, nil
	case "deflate":
		return deflateDecoder{}, nil
	case "br":
		return &brotliDecoder{}, nil
	case "zstd":
		return &zstdDecoder{}, nil
	}
	return nil, fmt.Errorf("Content-Encoding %q is not one this check decodes (gzip, deflate, br, zstd)", encoding)
}

type gzipDecoder struct{ zr *gzip.Reader }

func (d *gzipDecoder) reset(r io.Reader) (io.Reader, error) {
	if d.zr == nil {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		d.zr = zr
		return zr, nil
	}
	return d.zr, d.zr.Reset(r)
}

// deflateDecoder reads HTTP's "deflate": a zlib stream, or the raw deflate
// some servers send instead, which browsers accept too.
type deflateDecoder struct{}

func (deflateDecoder) reset(r io.Reader) (io.Reader, error) {
	var head [2]byte
	n, _ := io.ReadFull(r, head[:])
	r = io.MultiReader(bytes.NewReader(head[:n]), r)
	if n == 2 && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
		return zlib.NewReader(r)
	}
	return flate.NewReader(r), nil
}

type brotliDecoder struct{ br *brotli.Reader }

func (d *brotliDecoder) reset(r io.Reader) (io.Reader, error) {
	if d.br == nil {
		d.br = brotli.NewReader(r)
		return d.br, nil
	}
	return d.br, d.br.Reset(r)
}

type zstdDecoder struct{ zd *zstd.Decoder }

func (d *zstdDecoder) reset(r io.Reader) (io.Reader, error) {
	if d.zd == nil {
		// Browsers take windows of up to 8 MiB (RFC 9659's limit for HTTP).
		zd, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderMaxMemory(16<<20))
		if err != nil {
			return nil, err
		}
		d.zd = zd
		return zd, nil
	}
	return d.zd, d.zd.Reset(r)
}

// decodePrefix returns how many bytes, up to limit, d yields from in: the
// bytes a browser has once in has arrived. A truncated stream is no error
// here; a corrupt one is.
func decodePrefix(d decoder, in []byte, limit int) (int, error) {
	r, err := d.reset(bytes.NewReader(in))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil // not even a whole header yet
		}
		return 0, err
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, int64(limit)))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return int(n), err
	}
	return int(n), nil
}

// decodeAll decodes c's body with d: all of it, or, if the read was cut
// short, as much as had arrived.
func decodeAll(d decoder, c capture) ([]byte, error) {
	r, err := d.reset(bytes.NewReader(c.raw))
	if err != nil {
		if !c.ended && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil, nil
		}
		return nil, fmt.Errorf("undecodable body: %w", err)
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, io.LimitReader(r, maxDecodedBytes+1))
	if out.Len() > maxDecodedBytes {
		return nil, &limitError{fmt.Sprintf("sent a body that decodes to more than %d KiB", maxDecodedBytes>>10)}
	}
	if err != nil && !(errors.Is(err, io.ErrUnexpectedEOF) && !c.ended) {
		return out.Bytes(), fmt.Errorf("undecodable body: %w", err)
	}
	return out.Bytes(), nil
}

// parseEvents reads the dispatched events of an event stream as the WHATWG
// rules do (lines end with CRLF, LF or CR; a blank line dispatches a block
// with data; comments and unknown fields are ignored), up to the limits.
func parseEvents(text []byte) ([]event, error) {
	var (
		events  []event
		cur     event
		data    []byte
		hasData bool
	)
	pos := 0
	if bytes.HasPrefix(text, []byte("\uFEFF")) {
		pos = 3
	}
	for pos < len(text) {
		i := bytes.IndexAny(text[pos:], "\r\n")
		if i < 0 {
			if len(text)-pos > maxLineBytes {
				return events, &limitError{fmt.Sprintf("sent a line of more than %d KiB", maxLineBytes>>10)}
			}
			break // the unfinished last line
		}
		if i > maxLineBytes {
			return events, &limitError{fmt.Sprintf("sent a line of more than %d KiB", maxLineBytes>>10)}
		}
		line := text[pos : pos+i]
		next := pos + i + 1
		if text[pos+i] == '\r' && next < len(text) && text[next] == '\n' {
			next++
		}
		pos = next
		if len(line) == 0 {
			if hasData {
				if len(events) == maxEvents {
					return events, &limitError{fmt.Sprintf("sent more than %d events", maxEvents)}
				}
				cur.data = string(bytes.TrimSuffix(data, []byte("\n")))
				cur.end = pos
				events = append(events, cur)
			}
			cur.typ, data, hasData = "", data[:0], false
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				cur.id = string(value)
			}
		case "event":
			cur.typ = string(value)
		case "data":
			data = append(append(data, value...), '\n')
			hasData = true
		}
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
