package detach

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/tickstream/tickstream/internal/stream"
)

// goroutineStreams are the streams a Server serves with a goroutine each:
// those on connections no loop can write (TLS, no file descriptor), and
// all of them where there are no loops.
type goroutineStreams struct {
	ctx    context.Context // done when Shutdown begins
	cancel context.CancelFunc

	mu      sync.Mutex
	live    map[uint64]*goroutineStream // by token
	next    uint64                      // the last token handed out
	watcher *departureWatcher           // nil until the first stream; see watch_*.go
	noWatch bool                        // no watcher could be started: readers instead
}

// A goroutineStream is one stream in goroutineStreams, and the function
// that ends its context.
type goroutineStream struct {
	conn   net.Conn
	cancel context.CancelCauseFunc
}

// serveGoroutine serves src on conn in a goroutine of its own: it writes
// each frame as a chunk (the head with the first) with a blocking write
// within the write timeout, sleeps until the next is due, and ends after
// the frame it is writing when Shutdown begins.
func (s *Server) serveGoroutine(conn net.Conn, head []byte, src stream.Source, frameSize int) {
	g := &s.goro
	ctx, token := g.add(conn)
	g.watch(ctx, conn, token, s)
	go func() {
		defer s.wg.Done()
		err := writeFrames(ctx, conn, head, src, frameSize, s.cfg.WriteTimeout)
		if errors.Is(context.Cause(ctx), ErrClientLeft) {
			err = ErrClientLeft
		}
		switch {
		case err == nil: // the last chunk went with the last frame
			conn.Close()
		case errors.Is(err, context.Canceled): // Shutdown
			err = closeConn(conn, s.cfg.WriteTimeout)
		default:
			abort(conn)
		}
		g.remove(token) // only now: Shutdown may abort a stream stuck in its last write
		src.End(err)
	}()
}

// writeFrames writes src's frames to conn, each as a chunk (the head with
// the first) within the write timeout, with stream.Write.
func writeFrames(ctx context.Context, conn net.Conn, head []byte, src stream.Source, frameSize int, timeout time.Duration) error {
	out := make([]byte, 0, len(head)+frameSize+ChunkOverhead+len(lastChunk)) // the largest write: the head with the first frame
	var deadline time.Time
	return stream.Write(ctx, src, frameSize, func(frame []byte, last bool) error {
		out = appendChunk(append(out[:0], head...), frame)
		head = nil
		if last {
			out = append(out, lastChunk...)
		}
		if err := armDeadline(conn, &deadline, timeout); err != nil {
			return err
		}
		_, err := conn.Write(out)
		return err
	})
}

// closeConn ends the response on conn with the last chunk and closes it,
// or aborts it if that write fails.
func closeConn(conn net.Conn, timeout time.Duration) error {
	var deadline time.Time
	err := armDeadline(conn, &deadline, timeout)
	if err == nil {
		_, err = conn.Write([]byte(lastChunk))
	}
	if err != nil {
		abort(conn)
		return err
	}
	conn.Close()
	return nil
}

// armDeadline makes sure the next write on conn has between half and all
// of timeout to complete. Moving a deadline costs a runtime timer update,
// so it is moved only once less than half the timeout remains: a client
// that stops reading is dropped between half and all of the timeout later.
func armDeadline(conn net.Conn, deadline *time.Time, timeout time.Duration) error {
	if timeout <= 0 {
		return nil
	}
	now := time.Now()
	if deadline.Sub(now) >= timeout/2 {
		return nil
	}
	*deadline = now.Add(timeout)
	return conn.SetWriteDeadline(*deadline)
}

// add registers conn and returns its stream's context and token.
func (g *goroutineStreams) add(conn net.Conn) (context.Context, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx, cancel := context.WithCancelCause(g.ctx)
	g.next++
	if g.live == nil {
		g.live = make(map[uint64]*goroutineStream)
	}
	g.live[g.next] = &goroutineStream{conn: conn, cancel: cancel}
	return ctx, g.next
}

// remove forgets the stream of token and releases its context.
func (g *goroutineStreams) remove(token uint64) {
	g.mu.Lock()
	gs := g.live[token]
	delete(g.live, token)
	g.mu.Unlock()
	if gs != nil {
		gs.cancel(context.Canceled)
	}
}

// depart ends the stream of token, whose client has left. A token that is
// no longer live (the stream ended meanwhile) is ignored.
func (g *goroutineStreams) depart(token uint64) {
	g.mu.Lock()
	gs := g.live[token]
	g.mu.Unlock()
	if gs != nil {
		gs.cancel(ErrClientLeft)
	}
}

// watch arranges for the stream of token to be ended (depart) when its
// client closes or resets the connection: through the departure watcher
// where the platform and the connection allow it, otherwise with a
// goroutine that reads the connection until it fails.
func (g *goroutineStreams) watch(ctx context.Context, conn net.Conn, token uint64, s *Server) {
	if raw, ok := findConn[syscall.Conn](conn); ok {
		g.mu.Lock()
		if g.watcher == nil && !g.noWatch {
			g.watcher = newDepartureWatcher(g.depart, s.cfg.Logger) // nil where unsupported
			g.noWatch = g.watcher == nil
		}
		w := g.watcher
		g.mu.Unlock()
		if w != nil && w.watch(raw, token) == nil {
			return
		}
	}
	go func() {
		var b [1]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				if ctx.Err() == nil {
					g.depart(token)
				}
				return
			}
		}
	}()
}

// abortAll aborts the connection of every stream still open and reports
// how many there were.
func (g *goroutineStreams) abortAll() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, gs := range g.live {
		abort(gs.conn)
	}
	return len(g.live)
}

// stopWatching ends the departure watcher, once no stream is left to
// watch.
func (g *goroutineStreams) stopWatching() {
	g.mu.Lock()
	w := g.watcher
	g.watcher = nil
	g.noWatch = true // none can be added: Shutdown has begun
	g.mu.Unlock()
	if w != nil {
		w.close()
	}
}
