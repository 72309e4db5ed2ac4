//go:build !linux

package handler

import (
	"errors"
	"log/slog"
	"syscall"
)

// departureWatcher has no implementation outside Linux: newDepartureWatcher
// returns nil, and each detached stream watches its connection with a
// reading goroutine (see detachedStreams.watch).
type departureWatcher struct{}

func newDepartureWatcher(func(token uint64), *slog.Logger) *departureWatcher { return nil }

func (*departureWatcher) watch(syscall.Conn, uint64) error { return errUnsupported }

func (*departureWatcher) close() {}

var errUnsupported = errors.New("no departure watcher on this platform")
