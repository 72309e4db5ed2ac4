package detach

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tickstream/tickstream/internal/stream"
)

// A loop serves its streams from one goroutine over one epoll instance, as
// the package's doc says. It lives from its first stream until Shutdown
// (or until its epoll fails), however many streams come and go meanwhile:
// a loop with no stream sleeps in the netpoller, with no deadline, until
// its wake pipe says a stream has come or Shutdown has begun. The epoll's own descriptor sits in Go's
// netpoller (os.NewFile of a non-blocking descriptor), so a sleeping loop
// holds no thread: it waits there, with a read deadline at the time its
// earliest stream is due, until the deadline passes or one of its sockets
// (or its wake pipe) has news.
//
// Everything but incoming, woken, closing, aborting and stopped belongs to
// the loop's goroutine; Serve and Shutdown talk to it through those, under
// mu, and a byte in the wake pipe.
type loop struct {
	srv     *Server
	logger  *slog.Logger
	epfd    int
	file    *os.File // epfd, in Go's netpoller
	raw     syscall.RawConn
	wake    [2]int             // a pipe: a byte in wake[1] wakes the loop
	poll    func(uintptr) bool // l.pollEvents, made once
	ready   int                // how many events the last poll returned
	pollErr error              // why the last poll failed
	events  []syscall.EpollEvent
	// scratch is where every frame is built and framed as a chunk: the
	// first chunkRoom bytes are room for the response head and the
	// chunk's size line, written right before the frame so that no byte
	// of it is copied.
	scratch  []byte
	epoch    time.Time // the loop's clock: due times are nanoseconds since
	deadline int64     // the read deadline set last; noDeadline if none

	mu       sync.Mutex
	incoming []*loopStream // handed over by Serve, not yet registered
	woken    bool          // a byte is in the wake pipe
	closing  bool          // Shutdown has begun
	aborting bool          // Shutdown's context is done
	stopped  bool          // the loop ends, or has ended: it takes no stream, and nothing wakes it
	aborted  chan int      // how many streams abortAll aborted
	done     chan struct{} // closed when the loop has ended

	streams      []*loopStream // by slot; nil where free
	gens         []uint32      // each slot's generation, part of its tokens
	free         []int32       // free slots
	timers       timerHeap
	live         int  // streams in the table
	shuttingDown bool // closing, seen
}

// A loopStream is what a loop holds for one stream while it waits: no
// goroutine, timer or buffer, only this and its Source.
//
// The loop owns conn, and so fd, from add until the stream ends: Serve
// hijacked it from net/http, which gave it up, and keeps no reference to
// it; nothing but the loop closes it (l.end, abort), and the loop uses fd
// only before that. So fd, taken from conn once (RawConn.Control), names
// this socket as long as the loop uses it.
type loopStream struct {
	src       stream.Source
	conn      net.Conn // the loop's alone; closed when the stream ends, it keeps fd open until then
	head      []byte   // the response head, until the first frame takes it along
	rest      []byte   // the unwritten end of a partial write; nil unless parked
	next      int64    // when the Source's next frame is due, on the loop's clock
	fd        int32
	slot      int32
	heapIndex int32 // in the loop's timers; -1 if not in them
	last      bool  // the stream's last chunk is written or in rest: it ends when written
}

const (
	chunkRoom  = 4 << 10 // room before a frame for the head and size line
	noDeadline = -1
	// loopEvents is how many epoll events a loop takes at once.
	loopEvents = 256
)

// loopCount is how many loops a Server runs at most: one per P.
func loopCount() int { return max(1, runtime.GOMAXPROCS(0)) }

// newLoop makes a loop, to be run (l.run), or fails if the kernel refuses
// its descriptors. (It never returns nil
// without an error: that means no loops, elsewhere.)
func newLoop(s *Server) (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("epoll: set non-blocking: %w", err)
	}
	l := &loop{
		srv:      s,
		logger:   s.cfg.Logger,
		epfd:     epfd,
		file:     os.NewFile(uintptr(epfd), "epoll"),
		events:   make([]syscall.EpollEvent, loopEvents),
		scratch:  make([]byte, chunkRoom, chunkRoom+512),
		epoch:    time.Now(),
		deadline: noDeadline,
		aborted:  make(chan int, 1),
		done:     make(chan struct{}),
	}
	l.poll = l.pollEvents
	if l.raw, err = l.file.SyscallConn(); err != nil {
		l.file.Close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if l.wake, err = addWakePipe(epfd); err != nil {
		l.file.Close()
		return nil, err
	}
	return l, nil
}

// add hands a stream on conn to the loop, reporting false if conn has no
// descriptor or the loop has ended (or is ending: it has no stream).
func (l *loop) add(conn net.Conn, head []byte, src stream.Source) bool {
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if raw.Control(func(s uintptr) { fd = int(s) }) != nil || fd < 0 {
		return false
	}
	st := &loopStream{src: src, conn: conn, head: head, fd: int32(fd), slot: -1, heapIndex: -1}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	l.incoming = append(l.incoming, st)
	l.wakeLocked()
	return true
}

// shutdown tells the loop that Shutdown has begun.
func (l *loop) shutdown() {
	l.mu.Lock()
	l.closing = true
	l.wakeLocked()
	l.mu.Unlock()
}

// abortAll makes the loop abort every stream it has and reports how many.
func (l *loop) abortAll() int {
	l.mu.Lock()
	l.aborting = true
	l.wakeLocked()
	l.mu.Unlock()
	select {
	case n := <-l.aborted:
		return n
	case <-l.done:
		select {
		case n := <-l.aborted:
			return n
		default:
			return 0
		}
	}
}

// wait waits until the loop has ended, after Shutdown.
func (l *loop) wait() { <-l.done }

var wakeByte = []byte{0}

func (l *loop) wakeLocked() {
	if !l.woken && !l.stopped {
		l.woken = true
		syscall.Write(l.wake[1], wakeByte) //nolint:errcheck // the pipe holds at most this byte: it cannot be full
	}
}

// run is the loop: write what is due, sleep until the next is due or a
// socket has news, handle the news.
func (l *loop) run() {
	defer close(l.done)
	defer func() {
		l.mu.Lock()
		l.stopped = true
		l.mu.Unlock()
		l.closeFDs()
	}()
	for {
		now := time.Now()
		l.runDue(now)
		if l.live == 0 && l.finished() {
			return
		}
		l.ready, l.pollErr = 0, nil
		var err error
		if l.behind() {
			// Frames are due already: take what the epoll has (a new
			// stream, a departure, room to write) without sleeping. The
			// netpoller would not even look: its deadline has passed.
			l.pollEvents(uintptr(l.epfd))
			err = l.pollErr
		} else {
			l.setDeadline()
			if err = l.raw.Read(l.poll); err == nil {
				err = l.pollErr
			}
		}
		switch {
		case err == nil:
			l.handle(l.events[:l.ready])
		case errors.Is(err, os.ErrDeadlineExceeded):
		default:
			l.fail(err)
			return
		}
	}
}

// finished reports whether the loop, which serves no stream, is to end:
// Shutdown has begun and no stream is coming. If so, it takes no more.
func (l *loop) finished() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closing || len(l.incoming) > 0 {
		return false
	}
	l.stopped = true
	return true
}

// pollEvents takes what the epoll has ready without waiting; false sends
// the loop to sleep in the netpoller until it has more.
func (l *loop) pollEvents(fd uintptr) bool {
	for {
		n, err := syscall.EpollWait(int(fd), l.events, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			l.pollErr = os.NewSyscallError("epoll_wait", err)
			return true
		}
		l.ready = n
		return n > 0
	}
}

// fail ends a loop whose epoll failed: its streams are aborted, and it
// takes no more; the next stream for its place starts a new loop there
// (Server.serveLoop), or a goroutine if none can start.
func (l *loop) fail(err error) {
	l.logger.Error("handler: a detached streams' event loop failed; its streams are dropped", "err", err)
	l.mu.Lock()
	l.stopped = true
	incoming := l.incoming
	l.incoming = nil
	l.mu.Unlock()
	for _, st := range incoming {
		abort(st.conn)
		l.end(st, err)
	}
	l.dropAll(err)
}

// behind reports whether a stream's frame is due already.
func (l *loop) behind() bool {
	st, due := l.timers.first()
	return st != nil && due <= l.clock(time.Now())
}

// clock is t on the loop's clock.
func (l *loop) clock(t time.Time) int64 { return int64(t.Sub(l.epoch)) }

// setDeadline makes the loop's next sleep end when its first stream is due.
func (l *loop) setDeadline() {
	_, due := l.timers.first()
	if len(l.timers) == 0 {
		due = noDeadline
	}
	if due == l.deadline {
		return
	}
	l.deadline = due
	var t time.Time
	if due != noDeadline {
		t = l.epoch.Add(time.Duration(due))
	}
	l.file.SetReadDeadline(t) //nolint:errcheck // the file is pollable: newLoop got its SyscallConn
}

// runDue writes the frames of the streams due by now, as many frames as
// the loop has streams at most, and returns: a loop behind its schedule
// (more frames due than it can write) would otherwise never leave here,
// and never take a new stream or notice a departure. What is left is due
// at once, and the next round writes it, oldest first, so the streams
// share the delay.
func (l *loop) runDue(now time.Time) {
	at := l.clock(now)
	for budget := max(l.live, 1); budget > 0; budget-- {
		st, due := l.timers.first()
		if st == nil || due > at {
			return
		}
		l.fire(st, now)
	}
}

// fire serves a stream whose time has come: its next frame, or, for a
// parked stream, the end of its write timeout.
func (l *loop) fire(st *loopStream, now time.Time) {
	if st.rest != nil {
		l.drop(st, fmt.Errorf("write: %w after %v", os.ErrDeadlineExceeded, l.srv.cfg.WriteTimeout))
		return
	}
	frame, next, last := st.src.Next(l.scratch[:chunkRoom], now)
	st.next = l.clock(next)
	l.write(st, l.chunk(st, frame, last), now)
}

// chunk frames the frame built after chunkRoom bytes of buf as a chunk,
// with the response head before it if it is the stream's first and the
// last chunk after it if it is its last, and returns the bytes to write.
func (l *loop) chunk(st *loopStream, buf []byte, last bool) []byte {
	var line [16 + 2]byte
	size := strconv.AppendInt(line[:0], int64(len(buf)-chunkRoom), 16)
	size = append(size, "\r\n"...)
	start := chunkRoom - len(size)
	copy(buf[start:], size)
	buf = append(buf, "\r\n"...)
	if last {
		buf = append(buf, lastChunk...)
		st.last = true
	}
	l.scratch = buf[:0] // it keeps what it grew to
	if st.head == nil {
		return buf[start:]
	}
	head := st.head
	st.head = nil
	if len(head) > start { // a head larger than the room: once per stream
		return append(head, buf[start:]...)
	}
	start -= len(head)
	copy(buf[start:], head)
	return buf[start:]
}

// write writes p, which the loop's scratch holds, to st's socket, and
// parks the stream with a copy of what the socket did not take.
func (l *loop) write(st *loopStream, p []byte, now time.Time) {
	n, err := writeFD(st.fd, p)
	if err != nil {
		l.drop(st, err)
		return
	}
	if n < len(p) {
		st.rest = append([]byte(nil), p[n:]...)
		l.srv.parked.Add(1)
		l.park(st, now)
		return
	}
	l.written(st)
}

// park makes st wait for EPOLLOUT, within the write timeout.
func (l *loop) park(st *loopStream, now time.Time) {
	if timeout := l.srv.cfg.WriteTimeout; timeout > 0 {
		l.timers.set(st, l.clock(now)+int64(timeout))
	} else {
		l.timers.remove(st)
	}
}

// resume writes what a parked stream's socket has room for.
func (l *loop) resume(st *loopStream) {
	n, err := writeFD(st.fd, st.rest)
	if err != nil {
		l.drop(st, err)
		return
	}
	if n < len(st.rest) {
		st.rest = st.rest[n:] // still parked, within the same timeout
		return
	}
	st.rest = nil
	l.srv.resumed.Add(1)
	l.written(st)
}

// written goes on with a stream whose chunk has been written whole.
func (l *loop) written(st *loopStream) {
	if st.last {
		st.conn.Close()
		l.end(st, nil)
		return
	}
	l.timers.set(st, st.next)
}

// writeFD writes p to fd without waiting, and returns how much it took:
// all of it, or what it took until it was full (EAGAIN), after which the
// socket reports EPOLLOUT, once, when it has room again.
func writeFD(fd int32, p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := syscall.Write(int(fd), p[written:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return written, nil
		case err != nil:
			return written, os.NewSyscallError("write", err)
		case n == 0:
			return written, nil // a socket takes something or says EAGAIN; never spin
		}
		written += n
	}
	return written, nil
}

// drop aborts st's connection (a TCP reset) and ends it with err.
func (l *loop) drop(st *loopStream, err error) {
	abort(st.conn)
	l.end(st, err)
}

// end forgets st, whose connection is closed, and tells its Source why it
// ended.
func (l *loop) end(st *loopStream, err error) {
	l.timers.remove(st)
	if st.slot >= 0 {
		l.streams[st.slot] = nil
		l.gens[st.slot]++ // the stream's tokens go stale
		l.free = append(l.free, st.slot)
		l.live--
	}
	st.rest, st.head = nil, nil
	st.src.End(err)
	l.srv.wg.Done()
}

// dropAll drops every stream and reports how many there were.
func (l *loop) dropAll(err error) int {
	n := 0
	for _, st := range l.streams {
		if st != nil {
			l.drop(st, err)
			n++
		}
	}
	return n
}

// handle handles what the epoll reported.
func (l *loop) handle(events []syscall.EpollEvent) {
	for i := range events {
		ev := &events[i]
		token := getToken(ev)
		if token == wakeToken {
			l.intake(time.Now())
			continue
		}
		st := l.lookup(token)
		switch {
		case st == nil: // it ended earlier in this batch
		case ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0:
			l.drop(st, ErrClientLeft)
		case ev.Events&syscall.EPOLLOUT != 0 && st.rest != nil:
			l.resume(st)
		}
	}
}

// intake registers the streams Serve handed over and acts on Shutdown.
func (l *loop) intake(now time.Time) {
	l.mu.Lock()
	var b [64]byte
	for {
		if n, err := syscall.Read(l.wake[0], b[:]); n <= 0 || err != nil {
			break
		}
	}
	l.woken = false
	incoming := l.incoming
	l.incoming = nil
	closing, aborting := l.closing, l.aborting
	l.mu.Unlock()
	for _, st := range incoming {
		l.register(st, now)
	}
	if closing && !l.shuttingDown {
		l.shuttingDown = true
		l.endAll()
	}
	if aborting {
		l.mu.Lock()
		l.aborting = false
		l.mu.Unlock()
		l.aborted <- l.dropAll(errAborted)
	}
}

// register gives st a slot and a token, watches its socket, and writes its
// head and first frame at once, ahead of any backlog: a loop behind its
// schedule (more frames due than it can write) would otherwise keep a new
// client waiting for its response head until it had written every frame
// due before it, for seconds.
func (l *loop) register(st *loopStream, now time.Time) {
	if n := len(l.free); n > 0 {
		st.slot = l.free[n-1]
		l.free = l.free[:n-1]
		l.streams[st.slot] = st
	} else {
		st.slot = int32(len(l.streams))
		l.streams = append(l.streams, st)
		l.gens = append(l.gens, 0)
	}
	l.live++
	// Edge-triggered, as Go's netpoller watches it too: EPOLLOUT is
	// reported when a full socket has room again, EPOLLRDHUP, EPOLLHUP or
	// EPOLLERR when the client leaves, each once.
	ev := syscall.EpollEvent{Events: syscall.EPOLLOUT | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff}
	setToken(&ev, l.token(st.slot))
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, int(st.fd), &ev); err != nil {
		l.drop(st, fmt.Errorf("epoll_ctl: %w", err))
		return
	}
	l.fire(st, now)
}

// token is the epoll token of the stream in slot: the slot (plus one, as
// 0 is the wake pipe's) and the slot's generation.
func (l *loop) token(slot int32) uint64 {
	return uint64(l.gens[slot])<<32 | uint64(slot+1)
}

// lookup returns the stream of token, or nil if it has ended.
func (l *loop) lookup(token uint64) *loopStream {
	slot := int64(uint32(token)) - 1
	if slot < 0 || slot >= int64(len(l.streams)) || l.gens[slot] != uint32(token>>32) {
		return nil
	}
	return l.streams[slot]
}

// endAll ends every stream on a frame boundary, at Shutdown: a waiting
// stream gets the last chunk now, a parked one after its rest.
func (l *loop) endAll() {
	for _, st := range l.streams {
		switch {
		case st == nil || st.last:
		case st.rest != nil:
			st.rest = append(st.rest, lastChunk...)
			st.last = true
		default:
			l.scratch = append(append(l.scratch[:0], st.head...), lastChunk...)
			st.head = nil
			st.last = true
			l.write(st, l.scratch, time.Now())
			l.scratch = l.scratch[:chunkRoom]
		}
	}
}

// closeFDs releases the loop's descriptors.
func (l *loop) closeFDs() {
	syscall.Close(l.wake[0])
	syscall.Close(l.wake[1])
	l.file.Close()
}
