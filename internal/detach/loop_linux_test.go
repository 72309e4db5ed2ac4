package detach

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tickstream/tickstream/internal/stream"
)

// frames is a Source of count frames of size bytes each, period apart, the
// first at once.
type frames struct {
	count, size int
	period      time.Duration
	sent        int
	due         time.Time
	ended       chan error
}

func newFrames(count, size int, period time.Duration) *frames {
	return &frames{count: count, size: size, period: period, ended: make(chan error, 1)}
}

// frame returns the i-th frame: its number, then dots up to size, then a
// blank line, so that a reader can tell every frame from the others.
func (f *frames) frame(dst []byte, i int) []byte {
	start := len(dst)
	dst = strconv.AppendInt(append(dst, "id: "...), int64(i), 10)
	dst = append(dst, '\n')
	if pad := f.size - 2 - (len(dst) - start); pad > 0 {
		dst = append(dst, dots[:pad]...)
	}
	return append(dst, "\n\n"...)
}

func (f *frames) Next(dst []byte, now time.Time) ([]byte, time.Time, bool) {
	if f.due.IsZero() {
		f.due = now
	}
	dst = f.frame(dst, f.sent)
	f.sent++
	f.due = f.due.Add(f.period)
	return dst, f.due, f.sent == f.count
}

func (f *frames) End(err error) { f.ended <- err }

// want is the body a client of f reads: every frame, in order.
func (f *frames) want() []byte {
	var b []byte
	for i := range f.count {
		b = f.frame(b, i)
	}
	return b
}

// waitEnd returns the error f's stream ended with.
func (f *frames) waitEnd(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.ended:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end within 20s")
		return nil
	}
}

var dots = bytes.Repeat([]byte("."), 4<<20)

// waitParked waits until the loops have parked more than n writes.
func waitParked(t *testing.T, s *Server, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.parked.Load() <= n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no write was parked 10s after a client stopped reading")
		}
	}
}

// onLoops fails t if a stream of s was served by a goroutine, not a loop.
func onLoops(t *testing.T, s *Server) {
	t.Helper()
	s.goro.mu.Lock()
	defer s.goro.mu.Unlock()
	if s.goro.next != 0 {
		t.Errorf("%d streams were served by goroutines, not loops", s.goro.next)
	}
}

// hijacker is a ResponseWriter whose connection can be taken over, as
// net/http's HTTP/1.1 ResponseWriter's can.
type hijacker struct {
	*httptest.ResponseRecorder
	conn net.Conn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// serveTCP serves src with s on the server end of a loopback TCP
// connection and returns the client end, whose receive buffer is rcvbuf
// bytes if not 0.
func serveTCP(t *testing.T, s *Server, src stream.Source, frameSize, rcvbuf int) *net.TCPConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		if rcvbuf > 0 {
			c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		}
		return nil
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	w := &hijacker{httptest.NewRecorder(), sc}
	w.Header().Set("Content-Type", "text/event-stream")
	if !s.Serve(w, src, frameSize) {
		t.Fatal("Serve did not take the connection")
	}
	return c.(*net.TCPConn)
}

// readBody reads the response on c and returns its body, decoded.
func readBody(c net.Conn) ([]byte, error) {
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(resp.Body)
}

func newServer(t *testing.T, timeout time.Duration) *Server {
	t.Helper()
	s := New(Config{WriteTimeout: timeout, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// stats returns how many writes the loops parked and resumed.
func (s *Server) stats() (parked, resumed int64) {
	return s.parked.Load(), s.resumed.Load()
}

// TestLoopWritesFrames: a loop writes the response head, every frame as a
// chunk and the last chunk, which a client reads back as the frames.
func TestLoopWritesFrames(t *testing.T) {
	s := newServer(t, 10*time.Second)
	src := newFrames(5, 100, time.Millisecond)
	c := serveTCP(t, s, src, 100, 0)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"status": resp.StatusCode, "type": resp.Header.Get("Content-Type"),
		"chunked": resp.TransferEncoding, "close": resp.Close, "body": string(body)}
	want := map[string]any{"status": 200, "type": "text/event-stream",
		"chunked": []string{"chunked"}, "close": true, "body": string(src.want())}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	if err := src.waitEnd(t); err != nil {
		t.Errorf("End(%v), want End(nil)", err)
	}
	onLoops(t, s)
}

// TestLoopsLiveUntilShutdown: a loop starts with the first stream of its
// place and serves every later one there, one at a time or not, with no
// new loop between them however long it had none; only Shutdown ends it.
func TestLoopsLiveUntilShutdown(t *testing.T) {
	s := New(Config{WriteTimeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var first []*loop
	for round := range 3 {
		for range loopCount() { // one stream for each place, one after another
			src := newFrames(2, 100, time.Millisecond)
			c := serveTCP(t, s, src, 100, 0)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if body, err := readBody(c); err != nil || !bytes.Equal(body, src.want()) {
				t.Fatalf("round %d: body %q, %v", round, body, err)
			}
			if err := src.waitEnd(t); err != nil {
				t.Fatalf("round %d: End(%v)", round, err)
			}
		}
		s.mu.Lock()
		loops := slices.Clone(s.loops)
		s.mu.Unlock()
		if round == 0 {
			first = loops
		}
		for i, l := range loops {
			if l != first[i] {
				t.Errorf("round %d: place %d has a new loop", round, i)
			}
			select {
			case <-l.done:
				t.Errorf("round %d: the loop of place %d ended with its streams", round, i)
			default:
			}
		}
	}
	onLoops(t, s)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, l := range first {
		select {
		case <-l.done:
		default:
			t.Errorf("the loop of place %d still runs after Shutdown", i)
		}
	}
}

// costly is a Source whose every frame costs cost of CPU to build: a
// stream of it due more often than that falls behind its schedule.
type costly struct {
	*frames
	cost time.Duration
}

func (c costly) Next(dst []byte, now time.Time) ([]byte, time.Time, bool) {
	for start := time.Now(); time.Since(start) < c.cost; {
	}
	return c.frames.Next(dst, now)
}

// TestNewStreamHeadAheadOfBacklog: with its loops behind their schedule
// (more frames due than they can build: frames that cost 2 ms, due every
// millisecond), a new stream still gets its response head and first
// frame at once, not after every frame due before it.
func TestNewStreamHeadAheadOfBacklog(t *testing.T) {
	s := newServer(t, 10*time.Second)
	for range 4 * loopCount() {
		src := costly{newFrames(1<<30, 100, time.Millisecond), 2 * time.Millisecond}
		c := serveTCP(t, s, src, 100, 0)
		go io.Copy(io.Discard, c) //nolint:errcheck // a client that reads
	}
	time.Sleep(time.Second) // the backlog grows: a second's frames are 2 s of work per stream
	start := time.Now()
	src := newFrames(2, 100, time.Millisecond)
	c := serveTCP(t, s, src, 100, 0)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("a new stream's head came %v after it was served, behind the loops' backlog; want at once", waited)
	}
}

// TestPartialWriteResumedOnEPOLLOUT: frames far larger than the socket
// takes at once are written in part, parked, and resumed each time the
// client has read enough for EPOLLOUT; the client gets every byte in
// order, and the stream ends normally.
func TestPartialWriteResumedOnEPOLLOUT(t *testing.T) {
	s := newServer(t, 10*time.Second)
	const size = 1 << 20
	src := newFrames(12, size, 0) // all due at once
	c := serveTCP(t, s, src, size, 64<<10)
	waitParked(t, s, 0) // the socket is full
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	body, err := readBody(slowReader{c})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, src.want()) {
		t.Errorf("the client read %d bytes, not the %d of the frames in order", len(body), len(src.want()))
	}
	if err := src.waitEnd(t); err != nil {
		t.Errorf("End(%v), want End(nil)", err)
	}
	if parked, resumed := s.stats(); resumed != parked {
		t.Errorf("%d writes parked and %d resumed, want each parked write resumed", parked, resumed)
	}
}

// slowReader reads at most 16 KiB at a time, so that a large frame
// drains in many EPOLLOUTs.
type slowReader struct{ net.Conn }

func (r slowReader) Read(p []byte) (int, error) { return r.Conn.Read(p[:min(len(p), 16<<10)]) }

// TestParkedStreamKeepsOthersOnSchedule: a stream parked on the full
// socket of a client that stopped reading holds up none of the thousands
// of streams its loops serve besides: each gets every frame, and the
// stalled one is dropped with a reset when its write timeout passes.
func TestParkedStreamKeepsOthersOnSchedule(t *testing.T) {
	const (
		streams = 2000
		count   = 20
		period  = 50 * time.Millisecond
		timeout = 2 * time.Second
	)
	s := newServer(t, timeout)
	stalled := newFrames(100, 256<<10, 0)
	stalledClient := serveTCP(t, s, stalled, 256<<10, 64<<10)

	srcs := make([]*frames, streams)
	clients := make([]*net.TCPConn, streams)
	for i := range srcs {
		srcs[i] = newFrames(count, 100, period)
		clients[i] = serveTCP(t, s, srcs[i], 100, 0)
	}
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i, c := range clients {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			body, err := readBody(c)
			if err == nil && !bytes.Equal(body, srcs[i].want()) {
				err = fmt.Errorf("stream %d: %d bytes, not its %d frames", i, len(body), count)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	onLoops(t, s)
	for i, src := range srcs {
		if err := src.waitEnd(t); err != nil {
			t.Errorf("stream %d: End(%v), want End(nil)", i, err)
		}
	}
	// The stalled stream is still parked, or was dropped after its timeout.
	if err := stalled.waitEnd(t); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the stalled stream: End(%v), want a write timeout", err)
	}
	stalledClient.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, stalledClient); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the stalled client's connection ended with %v, want a reset", err)
	}
}

// TestClientResetMidWrite: a client that resets its connection while its
// stream is parked mid-frame ends that stream only; the loops go on
// serving the others and take new ones.
func TestClientResetMidWrite(t *testing.T) {
	s := newServer(t, time.Minute)
	for round := range 3 {
		parked := s.parked.Load()
		big := newFrames(10, 1<<20, 0)
		c := serveTCP(t, s, big, 1<<20, 64<<10)
		other := newFrames(3, 100, 10*time.Millisecond)
		oc := serveTCP(t, s, other, 100, 0)
		waitParked(t, s, parked)
		c.SetLinger(0)
		c.Close()
		if err := big.waitEnd(t); err == nil {
			t.Errorf("round %d: the reset stream ended with End(nil)", round)
		}
		oc.SetReadDeadline(time.Now().Add(10 * time.Second))
		body, err := readBody(oc)
		if err != nil || !bytes.Equal(body, other.want()) {
			t.Errorf("round %d: the other stream read %q, %v", round, body, err)
		}
		if err := other.waitEnd(t); err != nil {
			t.Errorf("round %d: the other stream: End(%v)", round, err)
		}
	}
}

// TestShutdownEndsLoopStreams: Shutdown ends a waiting stream at once
// with the last chunk and a parked one whose client reads after its rest;
// one whose client never reads is reset when Shutdown's context is done,
// and Shutdown says so. The loops then end.
func TestShutdownEndsLoopStreams(t *testing.T) {
	s := New(Config{WriteTimeout: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	waiting := newFrames(1000, 100, time.Hour)
	wc := serveTCP(t, s, waiting, 100, 0)
	wc.SetReadDeadline(time.Now().Add(10 * time.Second))
	wr := bufio.NewReader(wc)
	resp, err := http.ReadResponse(wr, nil)
	if err != nil {
		t.Fatal(err)
	}
	stalled := newFrames(100, 1<<20, 0)
	serveTCP(t, s, stalled, 1<<20, 64<<10)
	waitParked(t, s, 0)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = s.Shutdown(ctx)
	if want := "handler: reset 1 streams whose clients did not take their last event: context deadline exceeded"; err == nil || err.Error() != want {
		t.Errorf("Shutdown: %v, want %s", err, want)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(body, waiting.frame(nil, 0)) {
		t.Errorf("the waiting stream: %q, %v; want its first frame and a proper end", body, err)
	}
	if err := waiting.waitEnd(t); err != nil {
		t.Errorf("the waiting stream: End(%v), want End(nil)", err)
	}
	if err := stalled.waitEnd(t); !errors.Is(err, errAborted) {
		t.Errorf("the stalled stream: End(%v), want %v", err, errAborted)
	}
	for _, l := range s.loops {
		select {
		case <-l.done:
		default:
			t.Error("a loop is still running after Shutdown")
		}
	}
}

// BenchmarkLoopFrame measures a loop's work per frame: the Source builds
// it in the scratch buffer, the loop frames it as a chunk, writes it
// (here to /dev/null) and schedules the stream's next.
func BenchmarkLoopFrame(b *testing.B) {
	l, err := newLoop(New(Config{Logger: slog.Default()}))
	if err != nil {
		b.Fatal(err)
	}
	defer l.closeFDs()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	st := &loopStream{src: newFrames(1<<62, 120, time.Second), fd: int32(null.Fd()), slot: 0, heapIndex: -1}
	l.streams, l.gens = []*loopStream{st}, []uint32{0}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		l.fire(st, now)
		now = now.Add(time.Second)
	}
}
