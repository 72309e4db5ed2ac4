//go:build !linux

package detach

import (
	"errors"
	"log/slog"
	"syscall"
)

// departureWatcher has no implementation outside Linux: newDepartureWatcher
// returns nil, and each goroutine-served stream watches its connection with a
// reading goroutine (see goroutineStreams.watch).
type departureWatcher struct{}

func newDepartureWatcher(func(token uint64), *slog.Logger) *departureWatcher { return nil }

func (*departureWatcher) watch(syscall.Conn, uint64) error { return errUnsupported }

func (*departureWatcher) close() {}

var errUnsupported = errors.New("no departure watcher on this platform")
