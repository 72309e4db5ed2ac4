package main

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// A send is one record a test server sent, and the request headers by
// which the tests tell their reads apart.
type send struct {
	Record    int     // its index in the stream
	Sent      float64 // when, in ms since the epoch
	Host      string
	Forwarded string // X-Forwarded-Host
	Encoding  string // Accept-Encoding
	Truth     string // X-Ground-Truth: set on the ground-truth client's reads
}

// A sendLog is what a test server sent, to whom and when: a server's own
// timing, which the tests take out of what the reads measure, so that only
// the path's remains.
type sendLog struct {
	mu    sync.Mutex
	sends []send
}

// add notes that record was sent now in answer to r.
func (l *sendLog) add(r *http.Request, record int) {
	l.addSend(send{Record: record, Sent: float64(time.Now().UnixMicro()) / 1000, Host: r.Host,
		Forwarded: r.Header.Get("X-Forwarded-Host"), Encoding: r.Header.Get("Accept-Encoding"), Truth: r.Header.Get("X-Ground-Truth")})
}

func (l *sendLog) addSend(s send) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sends = append(l.sends, s)
}

func (l *sendLog) all() []send {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sends)
}

// A readPair is the send times, by record, of two reads of one stream at
// the same moment: through the path, and direct.
type readPair struct {
	path, direct map[int]time.Time
}

// pairOf finds in l the two reads sent since since with Accept-Encoding
// encoding and X-Ground-Truth truth, the direct one by its Host (direct)
// and no X-Forwarded-Host, each with records sends; it waits up to 10s for
// the server to log them.
func (l *sendLog) pairOf(since time.Time, direct, encoding, truth string, records int) (readPair, error) {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p, err := l.tryPair(since, direct, encoding, truth, records)
		if err == nil || time.Now().After(deadline) {
			return p, err
		}
	}
}

func (l *sendLog) tryPair(since time.Time, direct, encoding, truth string, records int) (readPair, error) {
	p := readPair{path: map[int]time.Time{}, direct: map[int]time.Time{}}
	from := float64(since.UnixMicro()) / 1000
	for _, s := range l.all() {
		if s.Sent < from || s.Encoding != encoding || s.Truth != truth {
			continue
		}
		reads := p.direct
		if s.Host != direct || s.Forwarded != "" {
			reads = p.path
		}
		if _, twice := reads[s.Record]; twice {
			return p, fmt.Errorf("record %d sent twice to reads that look the same (Host %s, X-Forwarded-Host %q)", s.Record, s.Host, s.Forwarded)
		}
		reads[s.Record] = time.UnixMicro(int64(s.Sent * 1000))
	}
	if len(p.path) != records || len(p.direct) != records {
		return p, fmt.Errorf("reads with Accept-Encoding %q and X-Ground-Truth %q since %v: %d records sent through the path and %d direct, want %d each",
			encoding, truth, since.Format(time.RFC3339Nano), len(p.path), len(p.direct), records)
	}
	return p, nil
}

// skew returns how much later, at the median over the records, the server
// sent the path's read its records than the direct one: what -compare
// counts beside the path's own delay.
func (p readPair) skew() time.Duration {
	var diffs []time.Duration
	for r, at := range p.path {
		diffs = append(diffs, at.Sub(p.direct[r]))
	}
	return median(diffs)
}
