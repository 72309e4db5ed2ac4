package main

import (
	"fmt"
	"slices"
	"strings"
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
	t.releases = releases(len(arrivals), releaseGap, func(i int) (time.Duration, int) { return arrivals[i].at, arrivals[i].bytes })
	return t
}

// releases groups n arrivals, the i-th at at(i) with the body's first
// bytes(i) bytes, into runs that reached the client together: no gap
// between two of a run longer than gap.
func releases(n int, gap time.Duration, arrival func(i int) (at time.Duration, bytes int)) []release {
	var out []release
	prevAt, prevBytes := time.Duration(0), 0
	for i := range n {
		at, bytes := arrival(i)
		if i == 0 || at-prevAt > gap {
			out = append(out, release{at: at})
		}
		r := &out[len(out)-1]
		r.events++
		r.bytes += bytes - prevBytes
		prevAt, prevBytes = at, bytes
	}
	return out
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

// A pattern is what the arrivals of a stream with no send times say about
// the path: when events became readable, and how many together.
type pattern struct {
	events   int
	releases []release     // runs of events readable together (in one read)
	hold     time.Duration // the longest wait before a release of minRun events or more
	atEnd    bool          // every event came in one release, with the response's end
	held     bool          // and they were minRun or more, after a silence
}

// minRun is the fewest events readable together that count as a release
// of a buffer: a server that writes two events at once (MCP's last
// progress notification and its result) is common; three after a silence
// are what buffers and batching let go.
const minRun = 3

// together is the longest gap between two arrivals that count as one read:
// a mark's resolution, and one more for a read that a busy client split.
const together = 2 * markResolution

// arrivalPattern reads the arrivals of a stream's events (their times and
// byte ends, from the request) as a path would shape them: a run of minRun
// or more events readable in one read after a silence is what a buffer
// lets go, and the silence before it how long the buffer held the run's
// first event. The first release waits from the response's head (headAt),
// or from the request if the head came with it (a path that held the head
// too); endAt and ended say when and how the response ended. A server that
// writes several events at once after a pause looks the same: only a
// comparison with the direct path can tell.
func arrivalPattern(events []event, headAt, endAt time.Duration, ended bool) pattern {
	p := pattern{events: len(events)}
	p.releases = releases(len(events), together, func(i int) (time.Duration, int) { return events[i].at, events[i].end })
	prev := max(headAt, 0)
	if len(p.releases) > 0 && p.releases[0].at-prev <= together {
		prev = 0
	}
	for _, r := range p.releases {
		if r.events >= minRun {
			p.hold = max(p.hold, r.at-prev)
		}
		prev = r.at
	}
	p.atEnd = len(p.releases) == 1 && ended && endAt-p.releases[0].at <= 50*time.Millisecond
	p.held = p.atEnd && p.events >= minRun && p.hold >= liveHold
	return p
}

// verdict names what the path seems to do: held (everything at the end),
// buffered (a run of events held a second or more), batched (a fraction of
// a second), or live.
func (p pattern) verdict() string {
	switch {
	case p.held:
		return "held"
	case p.hold >= bufferedHold:
		return "buffered"
	case p.hold >= liveHold:
		return "batched"
	}
	return "live"
}

// summary describes p in a few words, naming its records with records (a
// plural, such as "events" or "lines").
func (p pattern) summary(records string) string {
	s := fmt.Sprintf("%d %s", p.events, records)
	switch {
	case p.events == 1:
		s = "1 " + strings.TrimSuffix(records, "s")
	case len(p.releases) == 1 && p.events > 1:
		s += " readable all together"
	case len(p.releases) < p.events:
		s += fmt.Sprintf(" in %d releases", len(p.releases))
	case p.events > 1:
		s += ", each readable on its own"
	}
	if p.hold >= liveHold {
		s += fmt.Sprintf(", %v of silence before the longest-held release", roundMs(p.hold))
	}
	return s
}

// A match pairs events of two readings of the same stream.
type match struct {
	by    string   // "id", "content", "position" or "bytes"
	pairs [][2]int // indices into the first reading's events and the second's
}

// matchEvents pairs the events of a (through the path) with those of b
// (the comparison): by id where every event of both has one, each once;
// else by content, in order; else by position. Text chunks, which two
// paths cut differently, are paired by bytes: each chunk of b with the
// first chunk of a that reaches as far into the stream, so that a path
// that joins chunks shows each held.
func matchEvents(f format, a, b []event) match {
	if f == formatText {
		// Each of b's chunks, with the first of a's that reaches as far.
		m := match{by: "bytes"}
		i := 0
		for j, e := range b {
			for i < len(a) && a[i].end < e.end {
				i++
			}
			if i == len(a) {
				break
			}
			m.pairs = append(m.pairs, [2]int{i, j})
		}
		return m
	}
	if m, ok := matchByID(a, b); ok {
		return m
	}
	m := match{by: "content"}
	j := 0
	for i, e := range a {
		for k := j; k < len(b); k++ {
			if b[k].typ == e.typ && b[k].data == e.data {
				m.pairs = append(m.pairs, [2]int{i, k})
				j = k + 1
				break
			}
		}
	}
	// Content pairs hold when nearly all events pair: events that carry
	// their own timestamps (MCP's progress messages) pair only by chance.
	if len(m.pairs) > 0 && 10*len(m.pairs) >= 9*min(len(a), len(b)) {
		return m
	}
	m = match{by: "position"}
	for i := range min(len(a), len(b)) {
		m.pairs = append(m.pairs, [2]int{i, i})
	}
	return m
}

// matchByID pairs events by id, if every event of a and b has a distinct
// one.
func matchByID(a, b []event) (match, bool) {
	index := make(map[string]int, len(b))
	for k, e := range b {
		if e.id == "" {
			return match{}, false
		}
		if _, dup := index[e.id]; dup {
			return match{}, false
		}
		index[e.id] = k
	}
	m := match{by: "id"}
	seen := make(map[string]bool, len(a))
	for i, e := range a {
		if e.id == "" || seen[e.id] {
			return match{}, false
		}
		seen[e.id] = true
		if k, ok := index[e.id]; ok {
			m.pairs = append(m.pairs, [2]int{i, k})
		}
	}
	return m, len(m.pairs) > 0
}

// addedDelays returns, for each matched pair, how much later the event
// became readable through a than through b, both on the client's clock.
func addedDelays(m match, a, b reading) []time.Duration {
	added := make([]time.Duration, len(m.pairs))
	for i, p := range m.pairs {
		added[i] = a.start.Add(a.events[p[0]].at).Sub(b.start.Add(b.events[p[1]].at))
	}
	return added
}

// percentile returns the p-th percentile (0 to 100) of xs, by the nearest
// rank.
func percentile(xs []time.Duration, p int) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := (p*len(s) + 99) / 100
	return s[max(k-1, 0)]
}

// addedVerdict names what the path adds to a stream beside the comparison:
// live when 99% of events come within liveHold of their direct arrival
// (beyond the least any event was delayed, which a longer route adds to
// every event alike), batched within a second, buffered beyond; held when
// every event came through the path at once with its end (a text stream's
// chunks joined into one, too).
func addedVerdict(added []time.Duration, path pattern) string {
	spread := percentile(added, 99) - max(slices.Min(added), 0)
	switch {
	case spread < liveHold:
		return "live"
	case path.atEnd:
		return "held"
	case spread >= bufferedHold:
		return "buffered"
	}
	return "batched"
}
