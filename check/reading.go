package main

import (
	"encoding/json"
	"strings"
	"time"
)

// A reading is what the client got of one stream.
type reading struct {
	events   []event
	arrivals []arrival     // the events that carry a send time, in order
	ids      []string      // the ids of the timed events, in order
	start    time.Time     // when the request was sent, by the client's clock
	doneAt   time.Duration // when the "done" event arrived; -1 if it did not
	endAt    time.Duration // when the response ended (or the read stopped)
	ended    bool          // the response ended properly (io.EOF)
	err      error         // why the read stopped, if not a proper end
}

// newReading makes the reading of a stream's events, timed, from its capture.
func newReading(events []event, c capture, start time.Time) reading {
	rd := reading{events: events, start: start, doneAt: -1, endAt: c.endAt, ended: c.ended, err: c.err}
	received := 0
	for _, e := range events {
		if e.typ == "done" {
			rd.doneAt = e.at
			continue
		}
		sent := sentAt(e.data)
		if sent.IsZero() {
			continue
		}
		received = e.end
		rd.arrivals = append(rd.arrivals, arrival{sent: sent, at: e.at, bytes: received})
		rd.ids = append(rd.ids, e.id)
	}
	return rd
}

// firstAt returns when the first timed event arrived, and false if none did.
func (rd reading) firstAt() (time.Duration, bool) {
	if len(rd.arrivals) == 0 {
		return 0, false
	}
	return rd.arrivals[0].at, true
}

// sentAt returns when tickstream sent a record with data, or the zero time
// if data does not say: /stream/fast stamps "ts", /events "timestamp", and
// their text lines end with " at " and the time.
func sentAt(data string) time.Time {
	var stamp struct {
		TS        time.Time `json:"ts"`
		Timestamp time.Time `json:"timestamp"`
	}
	if json.Unmarshal([]byte(data), &stamp) == nil {
		if stamp.TS.IsZero() {
			return stamp.Timestamp
		}
		return stamp.TS
	}
	_, rest, ok := strings.Cut(data, " at ")
	if !ok {
		return time.Time{}
	}
	ts, _, _ := strings.Cut(rest, " ") // a padded line goes on after it
	stamp.TS, _ = time.Parse(time.RFC3339Nano, ts)
	return stamp.TS
}
