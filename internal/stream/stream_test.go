package stream

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ticks is a Source of count frames, period apart.
type ticks struct {
	count  int
	period time.Duration
	sent   int
	due    time.Time
}

func (t *ticks) Next(dst []byte, now time.Time) ([]byte, time.Time, bool) {
	if t.due.IsZero() {
		t.due = now
	}
	t.sent++
	t.due = t.due.Add(t.period)
	return strconv.AppendInt(dst, int64(t.sent), 10), t.due, t.sent == t.count
}

func (*ticks) End(error) {}

// A sent frame, as a test sees it: when, what, and whether it was the last.
type sent struct {
	At    time.Duration
	Frame string
	Last  bool
}

// TestWrite: frames go out as they are due, the last marked, and Write
// returns nil after it.
func TestWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var got []sent
		err := Write(context.Background(), &ticks{count: 3, period: time.Second}, 8, func(frame []byte, last bool) error {
			got = append(got, sent{time.Since(start), string(frame), last})
			return nil
		})
		want := []sent{{0, "1", false}, {time.Second, "2", false}, {2 * time.Second, "3", true}}
		if err != nil || !cmp.Equal(got, want) {
			t.Errorf("Write = %v, sent %v; want nil, %v", err, got, want)
		}
	})
}

// TestWriteStopsWithContext: a done context ends Write at once, between
// frames, with the context's error.
func TestWriteStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(1500*time.Millisecond, cancel)
		start := time.Now()
		n := 0
		err := Write(ctx, &ticks{count: 100, period: time.Second}, 8, func([]byte, bool) error { n++; return nil })
		if !errors.Is(err, context.Canceled) || n != 2 || time.Since(start) != 1500*time.Millisecond {
			t.Errorf("Write = %v after %d frames and %v; want context.Canceled after 2 frames and 1.5s", err, n, time.Since(start))
		}
	})
}

// TestWriteStopsAtFailedSend: a send that fails ends Write with its error.
func TestWriteStopsAtFailedSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		broken := errors.New("broken pipe")
		n := 0
		err := Write(context.Background(), &ticks{count: 100, period: time.Second}, 8, func([]byte, bool) error {
			if n++; n == 3 {
				return broken
			}
			return nil
		})
		if err != broken || n != 3 {
			t.Errorf("Write = %v after %d sends; want %v at the third", err, n, broken)
		}
	})
}

// TestWriteAllocatesNothingPerFrame: a stream of a thousand frames
// allocates what one of ten does (the buffer, the timer).
func TestWriteAllocatesNothingPerFrame(t *testing.T) {
	allocs := func(count int) float64 {
		return testing.AllocsPerRun(5, func() {
			Write(context.Background(), &ticks{count: count}, 8, func([]byte, bool) error { return nil })
		})
	}
	if few, many := allocs(10), allocs(1000); many != few {
		t.Errorf("%v allocations for 1,000 frames, %v for 10: want no more", many, few)
	}
}
