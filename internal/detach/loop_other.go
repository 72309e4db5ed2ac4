//go:build !linux

package detach

import (
	"net"

	"github.com/tickstream/tickstream/internal/stream"
)

// loop has no implementation outside Linux: newLoop makes none, and
// every stream is served by a goroutine of its own (goroutine.go).
type loop struct{}

func loopCount() int { return 1 }

func newLoop(*Server) (*loop, error) { return nil, nil }

func (*loop) add(net.Conn, []byte, stream.Source) bool { return false }
func (*loop) shutdown()                                {}
func (*loop) abortAll() int                            { return 0 }
func (*loop) wait()                                    {}
func (*loop) run()                                     {}
func (*loop) closeFDs()                                {}
