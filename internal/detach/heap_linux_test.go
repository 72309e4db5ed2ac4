package detach

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTimerHeap: under any sequence of schedules and removals, the heap
// yields the earliest due stream first, and every stream knows its place.
func TestTimerHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h timerHeap
	streams := make([]*loopStream, 200)
	due := make(map[*loopStream]int64) // what should be in the heap
	for i := range streams {
		streams[i] = &loopStream{heapIndex: -1}
	}
	for step := range 20000 {
		st := streams[rng.IntN(len(streams))]
		if rng.IntN(3) == 0 {
			h.remove(st)
			delete(due, st)
		} else {
			d := rng.Int64N(1000)
			h.set(st, d)
			due[st] = d
		}
		if len(h) != len(due) {
			t.Fatalf("step %d: %d in the heap, want %d", step, len(h), len(due))
		}
		for i, e := range h {
			if e.st.heapIndex != int32(i) || due[e.st] != e.due {
				t.Fatalf("step %d: entry %d is %+v (index %d), want due %d", step, i, e, e.st.heapIndex, due[e.st])
			}
			if i > 0 && h[(i-1)/2].due > e.due {
				t.Fatalf("step %d: entry %d is due before its parent", step, i)
			}
		}
		if first, d := h.first(); len(due) > 0 {
			all := make([]int64, 0, len(due))
			for _, v := range due {
				all = append(all, v)
			}
			if d != slices.Min(all) || due[first] != d {
				t.Fatalf("step %d: first is due %d, want %d", step, d, slices.Min(all))
			}
		}
	}
	for _, st := range streams {
		h.remove(st)
		if st.heapIndex != -1 {
			t.Fatalf("a removed stream keeps index %d", st.heapIndex)
		}
	}
	if len(h) != 0 {
		t.Fatalf("%d entries left after removing every stream", len(h))
	}
}
