// Package clock lets the code that serves the handler choose the time it
// stamps on events, through a request's context: tickstream's own tests,
// so that a stream served over real sockets (where testing/synctest's fake
// time cannot reach) has the bytes of the golden files, and the edge's
// stream writer, which builds frames ahead of time (stream.Writer) and
// stamps each with the time it will be sent. It is internal: the handler's
// users always get the real time.
package clock

import (
	"context"
	"time"
)

type key struct{}

// NewContext returns a copy of ctx that carries now: the handler stamps the
// events of requests whose context derives from it with now's times.
func NewContext(ctx context.Context, now func() time.Time) context.Context {
	return context.WithValue(ctx, key{}, now)
}

// From returns the clock that ctx carries, or time.Now.
func From(ctx context.Context) func() time.Time {
	if now, ok := ctx.Value(key{}).(func() time.Time); ok {
		return now
	}
	return time.Now
}
