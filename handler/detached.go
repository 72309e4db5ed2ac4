package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Detached streams (WithDetachedStreams).
//
// net/http keeps, for every HTTP/1.1 connection whose handler is running, two
// goroutines and about 8 KiB of buffers. A stream that lasts hours does not
// need them, so a detached stream takes its connection over and serves it
// alone. The lifecycle of a detached connection:
//
//   - Hijack. The stream handler has set its headers and taken a slot. detach
//     hijacks the connection (http.ResponseController.Hijack) and prepares the
//     response head; nothing of net/http's stays reachable, and ServeHTTP
//     returns at once. Whatever the client sent after its request stays
//     unread: the response is the connection's last ("Connection: close").
//   - Setup. serveDetached bounds the socket's send buffer to a few frames
//     (sendBufferSize) instead of the kernel's autotuned megabytes, registers
//     the stream with the handler's detachedStreams (refusing it once Shutdown
//     has begun), starts watching for the client's departure, and runs the
//     stream's body in a goroutine of its own.
//   - Write. Each frame goes out as one HTTP/1.1 chunk (the head with the
//     first), written straight to the connection by stream.send.
//   - Deadline. Every write has between half and all of the write timeout to
//     complete (stream.armDeadline); a client that stops reading makes a write
//     fail, and the stream ends with that error.
//   - Departure. A client that closes or resets its connection is noticed
//     without writing: on Linux one epoll instance per handler watches every
//     detached socket for EPOLLRDHUP and EPOLLHUP (departure_linux.go);
//     elsewhere, or for a connection without a file descriptor, a goroutine
//     per stream reads the connection until it fails. Either way the stream's
//     context is cancelled with errClientLeft and the stream ends at once,
//     however long its next event is due.
//   - Close. A stream that ended on an event boundary (its count reached, or
//     Shutdown) writes the last chunk and closes the connection normally. A
//     stream that ended for any other reason (a failed or timed-out write, a
//     client that left) is aborted: SO_LINGER 0 and close, which sends a TCP
//     reset and frees the socket and whatever it still had queued at once,
//     instead of leaving the kernel to send it to a client that is not reading
//     (as nginx's reset_timedout_connection does).
//   - Shutdown. Handler.Shutdown cancels every stream's context, so each ends
//     after the event it is writing, properly terminated, and waits for them.
//     Streams still open when its context is done (their clients are not
//     reading the last bytes) are aborted, and Shutdown reports how many.

// errClientLeft is the cause of a detached stream's end when its client
// closed or reset the connection.
var errClientLeft = errors.New("client closed the connection")

// detachedStreams tracks the streams a handler serves on hijacked
// connections, which the server no longer sees.
type detachedStreams struct {
	ctx    context.Context // done when Shutdown begins
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool                       // Shutdown has begun
	live    map[uint64]*detachedStream // by token
	next    uint64                     // the last token handed out
	watcher *departureWatcher          // nil until the first stream; see departure_*.go
	noWatch bool                       // no watcher could be started: readers instead
}

// A detachedStream is one stream in detachedStreams, and the function that
// ends its context.
type detachedStream struct {
	s      *stream
	cancel context.CancelCauseFunc
}

// serveDetached serves s, already detached, in a goroutine of its own.
func (h *Handler) serveDetached(s *stream, route string, frameSize int, body func(context.Context, *stream) error) {
	d := h.detached
	ctx, token, ok := d.add(s)
	if !ok {
		h.endStream(context.Background(), route, s, context.Canceled) // shutting down: end it at once
		return
	}
	if c, ok := findConn[interface{ SetWriteBuffer(int) error }](s.conn); ok {
		c.SetWriteBuffer(sendBufferSize(frameSize)) //nolint:errcheck // an unbounded buffer still works
	}
	d.watch(ctx, s, token, h.logger)
	go func() {
		defer d.wg.Done()
		err := body(ctx, s)
		if errors.Is(context.Cause(ctx), errClientLeft) {
			err = errClientLeft
		}
		h.endStream(context.Background(), route, s, err)
		d.remove(token) // only now: Shutdown may abort a stream stuck in its last write
	}()
}

// sendBufferSize is the socket send buffer of a detached stream whose frames
// are at most frameSize bytes: room for a few frames, so a healthy client is
// never slowed, but not the megabytes Linux grows a loopback or fast
// connection's buffer to, which a client that stops reading would pin.
func sendBufferSize(frameSize int) int {
	const minSendBuffer = 64 << 10
	return max(minSendBuffer, 2*(frameSize+chunkOverhead))
}

// chunkOverhead is the most an HTTP/1.1 chunk adds to its data: a size of up
// to 16 hex digits and two CRLFs.
const chunkOverhead = 16 + 4

// add registers s and returns its context and token, or reports false once
// Shutdown has begun.
func (d *detachedStreams) add(s *stream) (context.Context, uint64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, 0, false
	}
	ctx, cancel := context.WithCancelCause(d.ctx)
	d.next++
	if d.live == nil {
		d.live = make(map[uint64]*detachedStream)
	}
	d.live[d.next] = &detachedStream{s: s, cancel: cancel}
	d.wg.Add(1)
	return ctx, d.next, true
}

// remove forgets the stream of token and releases its context.
func (d *detachedStreams) remove(token uint64) {
	d.mu.Lock()
	ds := d.live[token]
	delete(d.live, token)
	d.mu.Unlock()
	if ds != nil {
		ds.cancel(context.Canceled)
	}
}

// depart ends the stream of token, whose client has left. A token that is
// no longer live (the stream ended meanwhile) is ignored.
func (d *detachedStreams) depart(token uint64) {
	d.mu.Lock()
	ds := d.live[token]
	d.mu.Unlock()
	if ds != nil {
		ds.cancel(errClientLeft)
	}
}

// watch arranges for the stream of token to be ended (depart) when its
// client closes or resets the connection: through the handler's departure
// watcher where the platform and the connection allow it, otherwise with a
// goroutine that reads the connection until it fails.
func (d *detachedStreams) watch(ctx context.Context, s *stream, token uint64, logger *slog.Logger) {
	if raw, ok := findConn[syscall.Conn](s.conn); ok {
		d.mu.Lock()
		if d.watcher == nil && !d.noWatch && !d.closed {
			d.watcher = newDepartureWatcher(d.depart, logger) // nil where unsupported
			d.noWatch = d.watcher == nil
		}
		w := d.watcher
		d.mu.Unlock()
		if w != nil && w.watch(raw, token) == nil {
			return
		}
	}
	go func() {
		var b [1]byte
		for {
			if _, err := s.conn.Read(b[:]); err != nil {
				if ctx.Err() == nil {
					d.depart(token)
				}
				return
			}
		}
	}()
}

// abortAll aborts the connection of every stream still open and reports how
// many there were.
func (d *detachedStreams) abortAll() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ds := range d.live {
		ds.s.abort()
	}
	return len(d.live)
}

// Shutdown shuts down the server that ConfigureServer prepared, if any
// (http.Server.Shutdown: open streams end on an event boundary), and at the
// same time the handler's detached streams (see WithDetachedStreams), which
// the server does not see: each ends after the event it is writing, with a
// properly ended response, and Shutdown waits until they are closed.
// Detached streams still open when ctx is done, whose clients are not taking
// their last bytes, are aborted (their connections reset). It returns the
// server's error and one saying how many streams were reset, joined.
// Streams detached after Shutdown began end at once.
func (h *Handler) Shutdown(ctx context.Context) error {
	served := make(chan error, 1)
	if srv := h.server.Load(); srv != nil {
		go func() { served <- srv.Shutdown(ctx) }()
	} else {
		served <- nil
	}
	err := h.shutdownDetached(ctx)
	return errors.Join(<-served, err)
}

// shutdownDetached ends the detached streams, as Shutdown says.
func (h *Handler) shutdownDetached(ctx context.Context) error {
	d := h.detached
	if d == nil {
		return nil
	}
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n := d.abortAll()
		<-done // an aborted stream's next write fails at once
		err = fmt.Errorf("handler: reset %d streams whose clients did not take their last event: %w", n, ctx.Err())
	}
	// No stream is left to watch, and none can be added.
	d.mu.Lock()
	w := d.watcher
	d.watcher = nil
	d.mu.Unlock()
	if w != nil {
		w.close()
	}
	return err
}

// detach takes the connection from net/http (http.ResponseController.Hijack)
// and prepares the response head, with the headers set so far. It fails,
// changing nothing, where the connection cannot be hijacked (HTTP/2, a
// writer that does not support it).
func (s *stream) detach() error {
	conn, _, err := s.rc.Hijack()
	if err != nil {
		return err
	}
	s.conn = conn
	s.head = appendResponseHead(make([]byte, 0, 256), s.w.Header(), time.Now())
	s.out = make([]byte, 0, len(s.head)+s.frame+chunkOverhead) // the largest write: the head with the first frame
	s.w, s.rc = nil, nil                                       // nothing of net/http's stays reachable
	return nil
}

// closeConn ends a detached stream whose body returned err. One that ended
// on an event boundary (err is nil or its context's) gets the last chunk and
// a normal close; any other is aborted.
func (s *stream) closeConn(err error) {
	if endedCleanly(err) {
		if s.writeConn(append(append(s.out[:0], s.head...), "0\r\n\r\n"...)) == nil {
			s.conn.Close()
			return
		}
	}
	s.abort()
}

// abort closes the connection with a TCP reset (SO_LINGER 0), which drops
// what the socket still has queued and frees it at once. It is safe to call
// while the stream writes, whose write then fails, and more than once.
func (s *stream) abort() {
	if c, ok := findConn[interface{ SetLinger(int) error }](s.conn); ok {
		c.SetLinger(0) //nolint:errcheck // a failed setting leaves a normal close
	}
	s.conn.Close()
}

// writeConn writes p to the detached connection, within the write timeout.
func (s *stream) writeConn(p []byte) error {
	if err := s.armDeadline(); err != nil {
		return err
	}
	_, err := s.conn.Write(p)
	return err
}

// findConn returns the first connection in the chain from c through
// connections that wrap another (NetConn, as *tls.Conn has) that
// implements T.
func findConn[T any](c net.Conn) (T, bool) {
	for c != nil {
		if t, ok := c.(T); ok {
			return t, true
		}
		inner, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = inner.NetConn()
	}
	var zero T
	return zero, false
}

// appendResponseHead appends an HTTP/1.1 200 response head for a chunked
// response that ends its connection, with the headers of hdr (sorted, CR
// and LF in values replaced by spaces, invalid names left out, as net/http
// writes them) and a Date.
func appendResponseHead(dst []byte, hdr http.Header, now time.Time) []byte {
	dst = append(dst, "HTTP/1.1 200 OK\r\n"...)
	for _, name := range slices.Sorted(maps.Keys(hdr)) {
		if name == "" || strings.ContainsAny(name, " :\r\n") {
			continue
		}
		for _, v := range hdr[name] {
			dst = append(dst, name...)
			dst = append(dst, ": "...)
			dst = append(dst, headerValue.Replace(strings.TrimSpace(v))...)
			dst = append(dst, "\r\n"...)
		}
	}
	dst = append(dst, "Date: "...)
	dst = now.UTC().AppendFormat(dst, http.TimeFormat)
	return append(dst, "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"...)
}

var headerValue = strings.NewReplacer("\r", " ", "\n", " ")

// appendChunk appends p as one chunk of a chunked HTTP/1.1 body.
func appendChunk(dst, p []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(p)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, p...)
	return append(dst, "\r\n"...)
}
