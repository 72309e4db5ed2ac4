package main

import (
	"sync"
	"testing"
)

// runAtOnce runs f as a subtest of t for each case, up to n at a time.
// These subtests mostly wait for streams, so they are run more at once than
// t.Parallel would run them (GOMAXPROCS: two, on CI); t.Run may be called
// from several goroutines at once.
func runAtOnce[T any](t *testing.T, n int, cases []T, name func(T) string, f func(t *testing.T, c T)) {
	t.Helper()
	running := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() {
			running <- struct{}{}
			defer func() { <-running }()
			t.Run(name(c), func(t *testing.T) { f(t, c) })
		})
	}
	wg.Wait()
}
