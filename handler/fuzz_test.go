package handler_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// FuzzEventsRequest serves /events with any query and Last-Event-ID for a
// few seconds of fake time: the answer is a 400 with a JSON error, a 204
// with no body for a Last-Event-ID at or past count, or a stream of ticks
// with consecutive ids whose data is valid JSON.
func FuzzEventsRequest(f *testing.F) {
	f.Add("interval=250ms&count=3&size=100", "41")
	f.Add("interval=250ms&count=50&size=100", "41")
	f.Add("count=2", "9007199254740989")
	f.Add("interval=0", "")
	f.Add("size=abc", "x")
	f.Fuzz(func(t *testing.T, rawQuery, lastEventID string) {
		synctest.Test(t, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/events", nil)
			req.URL.RawQuery = rawQuery
			req.Header.Set("Last-Event-ID", lastEventID)
			rec := serveFor(handler.New(), req, 2500*time.Millisecond)
			switch rec.Code {
			case 400:
				var body struct{ Error string }
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
					t.Fatalf("400 body %q is not a JSON error", rec.Body)
				}
				return
			case 204:
				count, _ := strconv.ParseInt(query(rawQuery).Get("count"), 10, 64)
				last, err := strconv.ParseInt(lastEventID, 10, 64)
				if err != nil || count == 0 || last < count || rec.Body.Len() != 0 {
					t.Fatalf("204 (body %q) for count %d and Last-Event-ID %q", rec.Body, count, lastEventID)
				}
				return
			case 200:
			default:
				t.Fatalf("status %d", rec.Code)
			}
			events := wiretest.Events(rec.Body.Bytes())
			if len(events) == 0 {
				t.Fatal("a 200 stream with no event")
			}
			prev := int64(-1)
			for _, ev := range events {
				id, err := strconv.ParseInt(ev.ID, 10, 64)
				if err != nil || (prev >= 0 && id != prev+1) || id < 1 || id > 1<<53-1 /* the largest id: the largest integer a JavaScript number holds */ {
					t.Fatalf("id %q after %d", ev.ID, prev)
				}
				prev = id
				var tick struct{ ID int64 }
				if ev.Type != "tick" || json.Unmarshal([]byte(ev.Data), &tick) != nil || tick.ID != id {
					t.Fatalf("event %+v is not tick %d", ev, id)
				}
			}
		})
	})
}

// query parses a raw query as the handler does, ignoring errors.
func query(raw string) url.Values {
	v, _ := url.ParseQuery(raw)
	return v
}
