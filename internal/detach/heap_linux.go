package detach

// A timerHeap is a loop's streams ordered by when each is next due: a
// binary min-heap of due times, each stream knowing its place in it
// (heapIndex, -1 when not in it), so that a stream that leaves is taken
// out at once rather than when it would have been due.
type timerHeap []timerEntry

// A timerEntry is one stream's due time, in nanoseconds of the loop's
// clock, kept beside it so that comparisons need not look at the stream.
type timerEntry struct {
	due int64
	st  *loopStream
}

// set schedules st at due, whether or not it is in the heap.
func (h *timerHeap) set(st *loopStream, due int64) {
	if i := st.heapIndex; i >= 0 {
		old := (*h)[i].due
		(*h)[i].due = due
		if due < old {
			h.up(int(i))
		} else {
			h.down(int(i))
		}
		return
	}
	st.heapIndex = int32(len(*h))
	*h = append(*h, timerEntry{due, st})
	h.up(len(*h) - 1)
}

// remove takes st out of the heap, if it is in it.
func (h *timerHeap) remove(st *loopStream) {
	i := int(st.heapIndex)
	if i < 0 {
		return
	}
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = timerEntry{}
	*h = (*h)[:last]
	st.heapIndex = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}

// first returns the stream due first and when, or nil if the heap is
// empty.
func (h timerHeap) first() (*loopStream, int64) {
	if len(h) == 0 {
		return nil, 0
	}
	return h[0].st, h[0].due
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].st.heapIndex = int32(i)
	h[j].st.heapIndex = int32(j)
}

func (h timerHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].due <= h[i].due {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h timerHeap) down(i int) {
	for {
		least := i
		if l := 2*i + 1; l < len(h) && h[l].due < h[least].due {
			least = l
		}
		if r := 2*i + 2; r < len(h) && h[r].due < h[least].due {
			least = r
		}
		if least == i {
			return
		}
		h.swap(i, least)
		i = least
	}
}
