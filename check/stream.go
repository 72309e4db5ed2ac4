package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"time"
)

// A reading is what the client got of one stream.
type reading struct {
	arrivals []arrival
	ids      []string      // the ids of the timed events, in order
	doneAt   time.Duration // when the "done" event arrived; -1 if it did not
	endAt    time.Duration // when the response ended (or the read stopped)
	ended    bool          // the response ended properly (io.EOF)
	err      error         // why the read stopped, if not a proper end
}

// readStream reads an event stream from body until it ends, fails, or
// stop is closed, timing each event by the read that completed it. Times
// count from start.
func readStream(body io.Reader, start time.Time) reading {
	rd := reading{doneAt: -1}
	var pending []byte
	buf := make([]byte, 32<<10)
	total := 0
	for {
		n, err := body.Read(buf)
		now := time.Since(start)
		total += n
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.Index(pending, []byte("\n\n"))
			if i < 0 {
				break
			}
			block := pending[:i]
			pending = pending[i+2:]
			rd.note(block, now, total-len(pending))
		}
		if err != nil {
			rd.endAt = now
			if errors.Is(err, io.EOF) {
				rd.ended = true
			} else {
				rd.err = err
			}
			return rd
		}
	}
}

// note records one event block (without its blank line) that arrived at
// now, with received bytes of the body read up to its end.
func (rd *reading) note(block []byte, now time.Duration, received int) {
	var id, typ string
	var data []byte
	for line := range bytes.SplitSeq(block, []byte("\n")) {
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			id = string(value)
		case "event":
			typ = string(value)
		case "data":
			data = value
		}
	}
	if typ == "done" {
		rd.doneAt = now
		return
	}
	// /stream/fast stamps "ts", /events "timestamp".
	var stamp struct {
		TS        time.Time `json:"ts"`
		Timestamp time.Time `json:"timestamp"`
	}
	if data == nil || json.Unmarshal(data, &stamp) != nil {
		return
	}
	sent := stamp.TS
	if sent.IsZero() {
		sent = stamp.Timestamp
	}
	if sent.IsZero() {
		return
	}
	rd.arrivals = append(rd.arrivals, arrival{sent: sent, at: now, bytes: received})
	rd.ids = append(rd.ids, id)
}
