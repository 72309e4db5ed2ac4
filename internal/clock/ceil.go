package clock

import "time"

// Ceil returns t rounded up to a multiple of d, which must be positive and
// divide a second; t.Truncate(d) rounds down to the same grid. It is found
// from t's nanoseconds within its second, which under WebAssembly costs a
// fraction of what Truncate does (the edge puts every frame it plans on a
// grid), and unlike Truncate it keeps t's monotonic clock reading.
func Ceil(t time.Time, d time.Duration) time.Time {
	if r := time.Duration(t.Nanosecond()) % d; r != 0 {
		return t.Add(d - r)
	}
	return t
}
