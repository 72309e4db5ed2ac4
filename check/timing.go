package main

import (
	"fmt"
	"slices"
	"time"
)

// An arrival is one event as the client received it.
type arrival struct {
	sent  time.Time     // the send time the server stamped on the event
	at    time.Duration // when its last byte arrived, from the request
	bytes int           // body bytes received up to and including it
}

// A release is a run of events that reached the client together: what a
// buffer on the path let go of at once.
type release struct {
	at     time.Duration // when its first event arrived
	events int
	bytes  int
}

// releaseGap is the longest gap between two arrivals of one release.
// Events sent 50 ms apart that arrive closer than this were held and let go
// together.
const releaseGap = 10 * time.Millisecond

// Thresholds of the verdicts: a hold under liveHold is scheduling noise; a
// hold of a second or more is what users see as "nothing, then everything".
const (
	liveHold     = 100 * time.Millisecond
	bufferedHold = time.Second
)

// timing is what a stream's arrivals say about the path.
type timing struct {
	events   int
	maxHold  time.Duration // the largest delay of an event beyond the smallest
	releases []release
}

// analyze measures arrivals. An event's delay is its arrival time minus its
// send time, both counted from the first event's, so the two clocks need not
// agree; the smallest delay counts as zero.
func analyze(arrivals []arrival) timing {
	t := timing{events: len(arrivals)}
	if len(arrivals) == 0 {
		return t
	}
	delays := make([]time.Duration, len(arrivals))
	for i, a := range arrivals {
		delays[i] = a.at - a.sent.Sub(arrivals[0].sent)
	}
	t.maxHold = slices.Max(delays) - slices.Min(delays)
	prevBytes := 0
	for i, a := range arrivals {
		if i == 0 || a.at-arrivals[i-1].at > releaseGap {
			t.releases = append(t.releases, release{at: a.at})
		}
		r := &t.releases[len(t.releases)-1]
		r.events++
		r.bytes += a.bytes - prevBytes
		prevBytes = a.bytes
	}
	return t
}

// verdict names what the path does: live, batched (held for a fraction of
// a second) or buffered (a second or more).
func (t timing) verdict() string {
	switch {
	case t.maxHold < liveHold:
		return "live"
	case t.maxHold < bufferedHold:
		return "batched"
	}
	return "buffered"
}

// summary describes t in a few words: the largest hold, and how the events
// came.
func (t timing) summary() string {
	s := fmt.Sprintf("%d events, largest hold %s", t.events, roundMs(t.maxHold))
	switch {
	case len(t.releases) == 1 && t.events > 1:
		s += ", all arriving together"
	case len(t.releases) < t.events:
		s += fmt.Sprintf(", in %d releases", len(t.releases))
	}
	return s
}

// A bufferKind is what lets a buffer go: its size, or a clock.
type bufferKind struct {
	bySize     bool
	blockBytes int           // bySize: the bytes of a typical release
	every      time.Duration // !bySize: the time between releases
}

// classifyBuffer compares a stream of small events with one of padded
// events through the same buffer. A buffer let go by size releases blocks
// of the same bytes whatever the events' size, so the padded stream's
// releases come more often; one let go by a clock releases at the same
// pace, so its blocks grow with the events. It reports false if the padded
// stream gave too few releases to tell.
func classifyBuffer(small, padded timing) (bufferKind, bool) {
	full := fullReleases(padded)
	if len(full) < 2 {
		return bufferKind{}, false
	}
	bytes := make([]int, len(full))
	gaps := make([]time.Duration, 0, len(full))
	for i, r := range full {
		bytes[i] = r.bytes
		if i > 0 {
			gaps = append(gaps, r.at-full[i-1].at)
		}
	}
	blockBytes := median(bytes)
	every := median(gaps)
	// A size-based buffer releases the small events in blocks of about the
	// same bytes, so far fewer often; a clock releases both at one pace.
	if smallFull := fullReleases(small); len(smallFull) > 0 {
		smallBytes := make([]int, len(smallFull))
		for i, r := range smallFull {
			smallBytes[i] = r.bytes
		}
		if within(median(smallBytes), blockBytes, 0.5) {
			return bufferKind{bySize: true, blockBytes: blockBytes}, true
		}
		return bufferKind{every: every}, true
	}
	// The small events never filled a release before the end: a buffer
	// larger than they were, which only a size-based buffer leaves so.
	return bufferKind{bySize: true, blockBytes: blockBytes}, true
}

// fullReleases returns t's releases but the last, which the end of the
// stream may have let go early.
func fullReleases(t timing) []release {
	if len(t.releases) < 2 {
		return nil
	}
	return t.releases[:len(t.releases)-1]
}

// describe says what the buffer is in words.
func (k bufferKind) describe() string {
	if k.bySize {
		return fmt.Sprintf("releases in blocks of about %s: a size-based buffer", sizeWords(k.blockBytes))
	}
	return fmt.Sprintf("releases every %s: a time-based buffer", roundMs(k.every))
}

// sizeWords writes n bytes as "4 KiB" when it is near a whole number of KiB.
func sizeWords(n int) string {
	kib := (n + 512) / 1024
	if kib > 0 && within(n, kib*1024, 0.1) {
		return fmt.Sprintf("%d KiB (%d bytes)", kib, n)
	}
	return fmt.Sprintf("%d bytes", n)
}

// within reports whether a is within frac of b.
func within(a, b int, frac float64) bool {
	d := float64(a - b)
	return d <= frac*float64(b) && -d <= frac*float64(b)
}

func median[T int | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// roundMs rounds d to the millisecond for printing.
func roundMs(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// tailHeld reports whether each event of a stream arrived only when the
// next was sent, as a compressor that keeps the tail of its output until
// more comes makes it: every event but the last as late as the gap to the
// next, beyond what the same route read without compression (plain) is
// late. Both delays are measured with the client's clock against the
// server's stamps, so the clocks' offset cancels out. It returns the median
// lag and gap.
func tailHeld(arrivals []arrival, start time.Time, plain reading) (lag, gap time.Duration, ok bool) {
	if len(arrivals) < 3 || len(plain.arrivals) == 0 {
		return 0, 0, false
	}
	delay := func(start time.Time, a arrival) time.Duration { return start.Add(a.at).Round(0).Sub(a.sent) }
	base := delay(plain.start, plain.arrivals[0])
	for _, a := range plain.arrivals {
		base = min(base, delay(plain.start, a))
	}
	lags := make([]time.Duration, 0, len(arrivals)-1)
	gaps := make([]time.Duration, 0, len(arrivals)-1)
	for i, a := range arrivals[:len(arrivals)-1] {
		lags = append(lags, delay(start, a)-base)
		gaps = append(gaps, arrivals[i+1].sent.Sub(a.sent))
	}
	lag, gap = median(lags), median(gaps)
	ok = gap >= liveHold && lag >= gap*6/10 && lag <= gap*3/2
	return lag, gap, ok
}

// short writes a small duration with the precision it deserves: tenths of
// a millisecond below 10ms, whole milliseconds above.
func short(d time.Duration) time.Duration {
	if d < 10*time.Millisecond && d > -10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return roundMs(d)
}
