package main

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

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
