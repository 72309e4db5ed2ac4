//go:build linux

package detach

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"
)

// A departureWatcher notices, with one epoll instance and one goroutine for
// all of a Server's goroutine-served connections, when a client closes or resets
// its connection: the socket reports EPOLLRDHUP (the peer's FIN) or
// EPOLLHUP/EPOLLERR (a reset), and the watcher calls depart with the token
// the connection was registered with. Tokens, not file descriptors, identify
// connections, so a descriptor closed and reused meanwhile is never
// mistaken for another. A closed descriptor leaves the epoll set by itself.
type departureWatcher struct {
	epfd   int
	wake   [2]int // a pipe: a byte written to wake[1] ends the loop
	depart func(token uint64)
	logger *slog.Logger
	done   chan struct{}
}

// wakeToken is the token of the wake pipe; streams' tokens start at 1.
const wakeToken = 0

// newDepartureWatcher starts a watcher that calls depart, or returns nil if
// the kernel refuses the resources (the streams then fall back to a reader
// each).
func newDepartureWatcher(depart func(token uint64), logger *slog.Logger) *departureWatcher {
	w, err := startDepartureWatcher(depart, logger)
	if err != nil {
		logger.Warn("handler: watching detached connections with a goroutine each", "err", err)
		return nil
	}
	return w
}

func startDepartureWatcher(depart func(token uint64), logger *slog.Logger) (*departureWatcher, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	w := &departureWatcher{epfd: epfd, depart: depart, logger: logger, done: make(chan struct{})}
	if w.wake, err = addWakePipe(epfd); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	go w.loop()
	return w, nil
}

// addWakePipe makes a non-blocking pipe and watches its reading end in
// epfd under wakeToken, so that a byte written to its writing end wakes
// whoever waits on epfd.
func addWakePipe(epfd int) ([2]int, error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return p, fmt.Errorf("pipe2: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	setToken(&ev, wakeToken)
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		syscall.Close(p[0])
		syscall.Close(p[1])
		return p, fmt.Errorf("epoll_ctl: %w", err)
	}
	return p, nil
}

// watch adds the connection to the epoll set under token. Edge-triggered:
// a departure is reported once, including one that happened before watch.
func (w *departureWatcher) watch(conn syscall.Conn, token uint64) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR | syscall.EPOLLET&0xffffffff}
	setToken(&ev, token)
	var ctlErr error
	if err := raw.Control(func(fd uintptr) {
		ctlErr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); err != nil {
		return err
	}
	return ctlErr
}

func (w *departureWatcher) loop() {
	defer close(w.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			w.logger.Error("handler: epoll_wait failed; departures of detached clients are noticed at their next write", "err", err)
			return
		}
		for _, ev := range events[:n] {
			token := getToken(&ev)
			if token == wakeToken {
				return
			}
			w.depart(token)
		}
	}
}

// close ends the loop and releases the watcher's descriptors.
func (w *departureWatcher) close() {
	syscall.Write(w.wake[1], []byte{0}) //nolint:errcheck // the pipe is empty: it cannot be full
	<-w.done
	w.closeFDs()
}

func (w *departureWatcher) closeFDs() {
	syscall.Close(w.wake[0])
	syscall.Close(w.wake[1])
	syscall.Close(w.epfd)
}

// setToken and getToken keep a token in an epoll event's 64-bit data, which
// package syscall spells as the two 32-bit fields Fd and Pad.
func setToken(ev *syscall.EpollEvent, token uint64) {
	ev.Fd, ev.Pad = int32(uint32(token)), int32(uint32(token>>32))
}

func getToken(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
