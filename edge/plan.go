//go:build js && wasm

package main

import (
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"time"

	"github.com/tickstream/tickstream/internal/clock"
	"github.com/tickstream/tickstream/internal/stream"
)

// How far ahead a stream's frames are built (exchange.WriteStream): every
// frame due within planAhead, at most maxPlanned of them and planBytes of
// records (or two of the largest frames, if more), built at once and
// handed to the glue, whose timers send each when it is due. The next are
// built planLead before those run out.
const (
	planAhead  = 10 * time.Second
	planLead   = time.Second
	planBytes  = 16 << 10
	maxPlanned = 256
)

// sendGrain is the grid the frames not due at once are sent on: streams'
// frames due within the same grain are sent by timers that fire together,
// in one turn of the runtime's event loop, instead of a turn each.
const sendGrain = 10 * time.Millisecond

// recordHeader is the size of a planned frame's header in a plan: the
// time it is due, in milliseconds since the Unix epoch (a float64), and
// its length (a uint32), both little-endian.
const recordHeader = 12

// WriteStream is the edge's stream writer (stream.Writer). A frame written
// by a goroutine that Go's scheduler wakes when it is due costs a call
// into Go per frame, which costs the runtime several times what sending
// the frame does. So src's frames are built ahead, many at once: each is
// built for the moment it will be sent, its due time on sendGrain's grid,
// or the current millisecond if it is due now (the request's clock, which
// stamps its events, reads that moment meanwhile), and the glue's timers,
// set in the request's own context, send each when it is due; a frame
// sent more than a millisecond late has its timestamp moved to when it is
// sent, so that every event's is when it was sent, within a millisecond.
// The goroutine sleeps in between, and builds the next frames
// planLead before those run out.
//
// It returns nil once the last frame is due; when ctx is done, the frames
// not sent yet are dropped, so that the stream ends on an event boundary,
// and it returns ctx's error, or errNotReading if the glue found the
// client not reading.
func (x *exchange) WriteStream(ctx context.Context, src stream.Source, frameSize int) error {
	if x.gone {
		return errClientGone
	}
	if x.status == 0 {
		x.WriteHeader(http.StatusOK)
	}
	limit := max(planBytes, 2*(recordHeader+frameSize))
	buf := make([]byte, 0, max(256, frameSize))
	timer := time.NewTimer(0)
	defer timer.Stop()
	due := time.Now()
	for {
		plan := x.b.plan[:0]
		// The clock is read once a plan, not once a frame: under js/wasm
		// each read is two calls out to JavaScript. A frame that falls due
		// while the plan is built is planned on the grid as later ones
		// are, and if the glue sends it late it restamps it.
		now := time.Now()
		until := now.Add(planAhead)
		var last bool
		for n := 0; ; n++ {
			at := due
			if at.After(now) {
				x.sendAt = clock.Ceil(at, sendGrain)
			} else {
				at = now
				x.sendAt = clock.Ceil(now, time.Millisecond)
			}
			var frame []byte
			frame, due, last = src.Next(buf[:0], at)
			buf = frame[:0]
			plan = appendRecord(plan, x.sendAt, frame)
			if last || !due.Before(until) || n+1 == maxPlanned || len(plan)+recordHeader+frameSize > limit {
				break
			}
		}
		x.b.plan = plan
		x.sendPlan(plan)
		wake := due.Add(-planLead)
		if last {
			wake = x.sendAt
		}
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			x.b.host.unplan.Invoke(x.id)
			if x.stalled {
				return errNotReading
			}
			return ctx.Err()
		case <-timer.C:
		}
		if last {
			return nil
		}
	}
}

// appendRecord appends frame, due at at, to a plan.
func appendRecord(plan []byte, at time.Time, frame []byte) []byte {
	plan = binary.LittleEndian.AppendUint64(plan, math.Float64bits(float64(at.UnixMilli())))
	plan = binary.LittleEndian.AppendUint32(plan, uint32(len(frame)))
	return append(plan, frame...)
}

// sendPlan hands a plan to the glue (its plan callback), through the
// staging array if it fits.
func (x *exchange) sendPlan(plan []byte) {
	x.b.host.plan.Invoke(x.id, x.b.stage(plan), len(plan))
}
