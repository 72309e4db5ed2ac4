// Package stream is the contract between what a stream sends and what
// writes it. A Source (the handler's schedule) says which frame is due
// when; a driver writes the frames. There are two drivers: Write, a
// goroutine per stream over any writer (the handler runs it over an
// http.ResponseWriter, and internal/detach over a hijacked connection that
// no event loop can write), and internal/detach's event loops, which serve
// thousands of streams from a goroutine each. A response writer may also
// write streams itself (a Writer: the edge's, whose host's timers send
// frames built ahead of time).
package stream

import (
	"context"
	"time"
)

// A Source is one stream's frames and when each is due.
type Source interface {
	// Next appends to dst the frame due at now and returns the result, the
	// time the frame after it is due, and whether this frame is the
	// stream's last (Next is not called again). now is the time of the
	// call, or, for a Writer that builds frames ahead, the time the frame
	// is due.
	Next(dst []byte, now time.Time) (frame []byte, next time.Time, last bool)
	// End is called once, when the stream has ended and its writer is
	// done with it: with nil if it ended on a frame boundary (after its
	// last frame, or because the server shuts down), or what ended it.
	End(err error)
}

// A Writer is a response writer that writes a stream's frames itself,
// instead of being written to by Write. The handler gives it every stream
// it serves on it.
type Writer interface {
	// WriteStream sends src's frames, each when it is due, and returns as
	// Write does: nil once the last frame is sent, ctx's error as soon as
	// ctx is done (a frame is sent whole or not at all), or why a frame
	// could not be sent. A frame's events are stamped with the clock of the
	// request's context (internal/clock): a Writer that builds frames ahead
	// of time puts a clock there that reads the time the frame being built
	// will be sent.
	WriteStream(ctx context.Context, src Source, frameSize int) error
}

// Write is the goroutine driver: it writes src's frames with send, each as
// soon as it is due, and sleeps in between. It returns nil once send has
// written the last frame (last is true for it), ctx's error as soon as ctx
// is done (never in the middle of a frame), or the error of a failed send.
// Frames are built in one buffer, made at once for frames of up to
// frameSize bytes; nothing is allocated per frame.
func Write(ctx context.Context, src Source, frameSize int, send func(frame []byte, last bool) error) error {
	// The whole frame at once: a padded frame grown by appends would leave
	// its smaller copies behind as garbage.
	buf := make([]byte, 0, max(256, frameSize))
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	now := time.Now()
	for {
		frame, next, last := src.Next(buf[:0], now)
		buf = frame[:0]
		if err := send(frame, last); err != nil {
			return err
		}
		if last {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(next))
		} else {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			if err := ctx.Err(); err != nil {
				return err // done at the same instant: stopping wins
			}
		}
		now = time.Now()
	}
}
