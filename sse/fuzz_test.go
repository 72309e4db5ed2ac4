package sse_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/internal/wiretest"
	"github.com/tickstream/tickstream/sse"
)

// FuzzAppendEvent proves that no event can be encoded into a frame that a
// spec-following client reads back differently: either the encoder refuses
// the event, exactly when a field would break the frame, or the frame reads
// back as the same single event, with line breaks as LF.
func FuzzAppendEvent(f *testing.F) {
	f.Add("", "1", "tick", `{"id":1}`, int64(0))
	f.Add("c", "1\nevent: x", "t", "d", int64(1000))
	f.Add("a\r\nb", "", "t\r", "a\rb\r\nc\n", int64(-1))
	f.Add("", "\x00", "", "", int64(5))
	f.Add(":", " ", " ", " data: x\n\n", int64(0))
	f.Add("\xff", "", "\uFEFF", "\uFEFFx\r", int64(1))
	f.Fuzz(func(t *testing.T, comment, id, typ, data string, retryMs int64) {
		retryMs %= 1 << 40 // keep the duration from overflowing
		ev := sse.Event{Comment: comment, Retry: time.Duration(retryMs) * time.Millisecond, ID: id, Type: typ, Data: data}
		frame, err := sse.AppendEvent(nil, ev)

		invalid := strings.ContainsAny(id, "\r\n\x00") || strings.ContainsAny(typ, "\r\n") || retryMs < 0 ||
			!utf8.ValidString(comment) || !utf8.ValidString(id) || !utf8.ValidString(typ) || !utf8.ValidString(data)
		if invalid {
			if !errors.Is(err, sse.ErrInvalidEvent) || frame != nil {
				t.Fatalf("AppendEvent(%+v) = %q, %v; want no frame and ErrInvalidEvent", ev, frame, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendEvent(%+v): %v", ev, err)
		}
		want := ev
		want.Comment = normalizeNewlines(comment)
		want.Data = normalizeNewlines(data)
		got := wiretest.Parse(frame)
		if diff := cmp.Diff([]wiretest.Block{{Event: want, Dispatched: true}}, got); diff != "" {
			t.Fatalf("frame %q reads back differently (-want +got):\n%s", frame, diff)
		}
	})
}

func normalizeNewlines(s string) string {
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
}
