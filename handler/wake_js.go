//go:build js

package handler

import (
	"time"

	"github.com/tickstream/tickstream/internal/clock"
)

// wakeGrain is the grid a stream's wake-ups are put on under js/wasm: Go's
// runtime there sleeps on one host timer for the earliest of all its
// timers, and every wake-up costs the host a call into Go, so streams due
// within the same grain are woken by one.
const wakeGrain = time.Millisecond

// alignWake moves t up to the next multiple of wakeGrain.
func alignWake(t time.Time) time.Time { return clock.Ceil(t, wakeGrain) }
