// Package detach serves event streams on HTTP/1.1 connections taken over
// from net/http (http.Hijacker), so that a stream that lasts hours holds
// neither net/http's two goroutines and buffers per connection nor, on
// Linux, a goroutine of its own.
//
// What a stream sends, and when, is its stream.Source's business (the
// handler's schedule); this package writes it. A stream's lifecycle:
//
//   - Take over. Serve hijacks the connection, writes the response head
//     from the headers set so far ("Transfer-Encoding: chunked",
//     "Connection: close": the response is the connection's last, and
//     whatever the client sent after its request stays unread), bounds the
//     socket's send buffer to a few frames (sendBufferSize) instead of the
//     kernel's autotuned megabytes, and hands the stream to a driver;
//     ServeHTTP returns at once. Once Shutdown has begun, a stream gets an
//     empty, properly ended response instead.
//   - Schedule. On Linux, a connection that is a socket of its own (not
//     TLS, not a pipe) goes to one of a few event loops, one per P, each a
//     goroutine over one epoll instance (loop_linux.go), started with the
//     first stream it gets and ended by Shutdown; between streams it
//     sleeps, holding its goroutine and three descriptors. A loop keeps its
//     streams in a table and their due times in a heap; it sleeps in Go's
//     netpoller until the earliest is due or its epoll has news, so an idle
//     stream costs a table slot, a heap entry and its Source, and no
//     goroutine, timer or buffer. Every other connection (TLS, no file
//     descriptor, other systems) is served by a goroutine of its own
//     (goroutine.go), as every stream once was.
//   - Write. A due stream's frame is built by its Source into the loop's
//     one scratch buffer, framed as one HTTP/1.1 chunk (the response head
//     with the first), and written with one non-blocking write(2).
//   - Park. A write the socket takes only in part leaves the unwritten rest
//     in a buffer the stream holds only until it drains. The stream waits
//     for EPOLLOUT, on the same epoll, and its next frame is not built
//     meanwhile; when the rest drains, the schedule resumes (a stream more
//     than a period behind restarts it from now rather than bursting).
//     A rest not drained within the write timeout drops the stream.
//   - Drop. A stream that cannot go on (a failed write, a write timeout) is
//     aborted: SO_LINGER 0 and close, which sends a TCP reset and frees the
//     socket and what it had queued at once, instead of leaving the kernel
//     to send it to a client that is not reading (as nginx's
//     reset_timedout_connection does).
//   - Depart. A client that closes or resets its connection is noticed
//     without writing: the epoll reports EPOLLRDHUP, EPOLLHUP or EPOLLERR
//     for its socket, and the stream is aborted at once, however long its
//     next frame is due. (A goroutine-served stream is watched by one epoll
//     instance for all of them on Linux, and by a reading goroutine each
//     elsewhere.)
//   - End. A stream whose Source says its frame was the last writes the
//     last chunk with it and closes the connection normally. Either way its
//     Source's End is called once, with why it ended.
//   - Shut down. Shutdown ends every stream after the frame it is writing:
//     a waiting stream gets the last chunk at once, a parked one after its
//     rest drains, and Shutdown waits for them all. Streams still open when
//     its context is done (their clients are not taking their last bytes)
//     are aborted, and Shutdown says how many. Then the loops end and
//     release their descriptors.
package detach

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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickstream/tickstream/internal/stream"
)

// ErrClientLeft is what ends a stream whose client closed or reset its
// connection: its Source's End gets it.
var ErrClientLeft = errors.New("client closed the connection")

// errAborted ends the streams still open when Shutdown's context is done.
var errAborted = errors.New("aborted at the end of shutdown")

// Config configures a Server.
type Config struct {
	// WriteTimeout is how long a write may wait for its client to take it
	// before the stream is dropped. Zero waits as long as the client
	// stays.
	WriteTimeout time.Duration
	// Logger receives what an operator should know (a loop or a watcher
	// that could not start). It must not be nil.
	Logger *slog.Logger
}

// A Server serves streams on connections taken over from net/http. The
// zero value is not usable: call New.
type Server struct {
	cfg Config
	wg  sync.WaitGroup // one per stream being served

	mu      sync.Mutex
	closed  bool    // Shutdown has begun
	loops   []*loop // one place per P, each nil until a stream needs it; see loop_*.go
	noLoops bool    // no loop can run on this system: goroutines instead
	warned  bool    // a loop failed to start, and the log says so
	next    int     // the loop that gets the next stream
	goro    goroutineStreams

	// Writes the loops parked (the socket took only part of them), and
	// those of them they finished on EPOLLOUT.
	parked, resumed atomic.Int64
}

// New returns a Server configured by cfg. It starts nothing until it
// serves its first stream.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg}
	s.goro.ctx, s.goro.cancel = context.WithCancel(context.Background())
	return s
}

// Serve takes over w's connection and serves src on it, whose frames are
// at most frameSize bytes, as the package's doc says; it returns at once,
// and src.End reports the stream's end. It reports false, having changed
// nothing, if w's connection cannot be taken over (HTTP/2, a writer that
// is not an http.Hijacker).
func (s *Server) Serve(w http.ResponseWriter, src stream.Source, frameSize int) bool {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	// Nothing of net/http's stays reachable: not w, not its buffers.
	head := appendResponseHead(make([]byte, 0, 256), w.Header(), time.Now())
	if c, ok := findConn[interface{ SetWriteBuffer(int) error }](conn); ok {
		c.SetWriteBuffer(sendBufferSize(frameSize)) //nolint:errcheck // an unbounded buffer still works
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.refuse(conn, head)
		src.End(nil)
		return true
	}
	s.wg.Add(1) // before Shutdown can wait
	looped := s.serveLoop(conn, head, src)
	s.mu.Unlock()
	if !looped {
		s.serveGoroutine(conn, head, src, frameSize)
	}
	return true
}

// refuse gives a connection taken over after Shutdown began an empty,
// properly ended response, and closes it.
func (s *Server) refuse(conn net.Conn, head []byte) {
	if s.cfg.WriteTimeout > 0 {
		conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) //nolint:errcheck // the write fails instead
	}
	if _, err := conn.Write(append(head, lastChunk...)); err != nil {
		abort(conn)
		return
	}
	conn.Close()
}

// serveLoop hands the stream on conn to a loop, one of a place per P in
// turn, starting one there if none is running (the first stream of that
// place, or the first after its loop failed). It reports false if conn is
// not a socket a loop can write (TLS, a pipe) or no loop can run on this
// system. s.mu is held: a loop starts at most once per place, so its
// system calls rarely hold it.
func (s *Server) serveLoop(conn net.Conn, head []byte, src stream.Source) bool {
	if _, ok := conn.(syscall.Conn); !ok || s.noLoops {
		return false // a wrapper (TLS) that writes something else to the socket
	}
	if s.loops == nil {
		s.loops = make([]*loop, loopCount())
	}
	i := s.next % len(s.loops)
	s.next++
	if l := s.loops[i]; l != nil && l.add(conn, head, src) {
		return true
	}
	l, err := newLoop(s)
	if err != nil {
		// Out of descriptors, most likely: this stream gets a goroutine,
		// and the next tries again.
		if !s.warned {
			s.warned = true
			s.cfg.Logger.Warn("handler: an event loop could not start; detached streams get a goroutine each meanwhile", "err", err)
		}
		return false
	}
	if l == nil {
		s.noLoops = true
		return false
	}
	if !l.add(conn, head, src) {
		l.closeFDs()
		return false
	}
	s.loops[i] = l
	go l.run()
	return true
}

// Shutdown ends every stream after the frame it is writing, with a
// properly ended response, and waits until they are closed. Streams still
// open when ctx is done, whose clients are not taking their last bytes, are
// aborted (their connections reset), and the error says how many. Streams
// served after Shutdown began end at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	loops := s.loops
	s.mu.Unlock()
	loops = slices.DeleteFunc(slices.Clone(loops), func(l *loop) bool { return l == nil })
	for _, l := range loops {
		l.shutdown()
	}
	s.goro.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n := s.goro.abortAll()
		for _, l := range loops {
			n += l.abortAll()
		}
		<-done // an aborted stream's next write fails at once
		err = fmt.Errorf("handler: reset %d streams whose clients did not take their last event: %w", n, ctx.Err())
	}
	for _, l := range loops {
		l.wait()
	}
	s.goro.stopWatching()
	return err
}

// sendBufferSize is the socket send buffer of a stream whose frames are at
// most frameSize bytes: room for a few frames, so a healthy client is never
// slowed, but not the megabytes Linux grows a loopback or fast
// connection's buffer to, which a client that stops reading would pin.
func sendBufferSize(frameSize int) int {
	const minSendBuffer = 64 << 10
	return max(minSendBuffer, 2*(frameSize+ChunkOverhead))
}

// ChunkOverhead is the most an HTTP/1.1 chunk adds to its data: a size of
// up to 16 hex digits and two CRLFs.
const ChunkOverhead = 16 + 4

// lastChunk ends a chunked body.
const lastChunk = "0\r\n\r\n"

// abort closes conn with a TCP reset (SO_LINGER 0), which drops what the
// socket still has queued and frees it at once. It is safe to call while a
// write on conn is blocked, which then fails, and more than once.
func abort(conn net.Conn) {
	if c, ok := findConn[interface{ SetLinger(int) error }](conn); ok {
		c.SetLinger(0) //nolint:errcheck // a failed setting leaves a normal close
	}
	conn.Close()
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
// response that ends its connection, as net/http writes one: the headers of
// hdr (sorted, CR and LF in values replaced by spaces, invalid names left
// out), but for those that frame the response or keep its connection,
// which are its own (Transfer-Encoding: chunked, Connection: close), and a
// Date unless hdr has one.
func appendResponseHead(dst []byte, hdr http.Header, now time.Time) []byte {
	dst = append(dst, "HTTP/1.1 200 OK\r\n"...)
	for _, name := range slices.Sorted(maps.Keys(hdr)) {
		if name == "" || strings.ContainsAny(name, " :\r\n") || framing[http.CanonicalHeaderKey(name)] {
			continue
		}
		for _, v := range hdr[name] {
			dst = append(dst, name...)
			dst = append(dst, ": "...)
			dst = append(dst, headerValue.Replace(strings.TrimSpace(v))...)
			dst = append(dst, "\r\n"...)
		}
	}
	if _, ok := hdr["Date"]; !ok {
		dst = append(dst, "Date: "...)
		dst = now.UTC().AppendFormat(dst, http.TimeFormat)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"...)
}

// framing are the headers a detached head sets itself, or must not carry.
var framing = map[string]bool{"Connection": true, "Content-Length": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true}

var headerValue = strings.NewReplacer("\r", " ", "\n", " ")

// appendChunk appends p as one chunk of a chunked HTTP/1.1 body.
func appendChunk(dst, p []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(p)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, p...)
	return append(dst, "\r\n"...)
}
