//go:build race

package main

// raceEnabled reports that the tests run under the race detector, which
// allows at most 8128 goroutines alive at once.
const raceEnabled = true
