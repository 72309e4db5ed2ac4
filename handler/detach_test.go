package handler_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/clock"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// hijackable is a ResponseWriter whose connection can be taken over, as
// net/http's HTTP/1.1 ResponseWriter's can.
type hijackable struct {
	*httptest.ResponseRecorder
	conn net.Conn
}

func (h *hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// serveDetached serves target on one end of a pipe with h and returns the
// response read from the other end. ServeHTTP must return at once.
func serveDetached(t *testing.T, h http.Handler, target string) (*http.Response, net.Conn) {
	t.Helper()
	return serveDetachedRequest(t, h, httptest.NewRequest("GET", target, nil))
}

// serveDetachedRequest is serveDetached for a request of the caller's.
func serveDetachedRequest(t *testing.T, h http.Handler, req *http.Request) (*http.Response, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	returned := make(chan struct{})
	go func() {
		h.ServeHTTP(&hijackable{httptest.NewRecorder(), server}, req)
		close(returned)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(client), req)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeHTTP did not return after detaching the stream")
	}
	return resp, client
}

// TestDetachedGolden: a detached stream's bytes, read back through an HTTP
// client, are the golden file's.
func TestDetachedGolden(t *testing.T) {
	h := handler.New(handler.WithDetachedStreams(), handler.WithInterval(time.Millisecond))
	req := httptest.NewRequest("GET", "/events?count=5", nil)
	req = req.WithContext(clock.NewContext(req.Context(), wiretest.SteppingClock(time.Second)))
	resp, _ := serveDetachedRequest(t, h, req)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	if !resp.Close || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("Close=%v TransferEncoding=%v, want a chunked response that closes its connection", resp.Close, resp.TransferEncoding)
	}
	wiretest.Golden(t, filepath.Join("testdata", "events.golden"), wiretest.Dump(resp.StatusCode, resp.Header, body))
	waitForNoStreams(t, h)
}

// waitForNoStreams waits until h serves no stream: a detached stream frees
// its slot just after its client has read the last chunk.
func waitForNoStreams(t *testing.T, h *handler.Handler) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); h.Streams() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Streams() = %d 5s after every stream ended", h.Streams())
		}
	}
}

// TestDetachedShutdown: Shutdown ends a detached endless stream after the
// event it is writing, with a properly ended response, waits for it, and
// ends streams detached afterwards at once.
func TestDetachedShutdown(t *testing.T) {
	h := handler.New(handler.WithDetachedStreams(), handler.WithInterval(10*time.Millisecond))
	resp, _ := serveDetached(t, h, "/events")
	if _, err := wiretest.ReadFrames(resp.Body, 2); err != nil {
		t.Fatal(err)
	}
	if n := h.Streams(); n != 1 {
		t.Errorf("Streams() = %d with one detached stream", n)
	}
	rest := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(resp.Body)
		if err == nil && len(b) > 0 && string(b[len(b)-2:]) != "\n\n" {
			err = io.ErrUnexpectedEOF
		}
		rest <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-rest; err != nil {
		t.Errorf("the stream ended with %v, want a clean end on an event boundary", err)
	}
	if n := h.Streams(); n != 0 {
		t.Errorf("Streams() = %d after Shutdown", n)
	}

	late, _ := serveDetached(t, h, "/events")
	if b, err := io.ReadAll(late.Body); err != nil || len(b) != 0 {
		t.Errorf("a stream detached after Shutdown: %q, %v; want an empty, properly ended response", b, err)
	}
}

// TestDetachedClientGone: a detached stream whose client closes the
// connection ends and frees its slot without waiting for its next write,
// due in an hour. A pipe has no file descriptor: this is the path of a
// reading goroutine per stream, used where the epoll watcher is not
// (departure_linux_test.go tests that one).
func TestDetachedClientGone(t *testing.T) {
	h := handler.New(handler.WithDetachedStreams(), handler.WithInterval(time.Hour), handler.WithHeartbeat(0))
	resp, client := serveDetached(t, h, "/events")
	if _, err := wiretest.ReadFrames(resp.Body, 1); err != nil {
		t.Fatal(err)
	}
	client.Close()
	waitForNoStreams(t, h)
}

// TestDetachedShutdownAbortsStalled: a stream whose client stopped reading
// cannot take its last event; when Shutdown's context is done its
// connection is aborted, and Shutdown says so.
func TestDetachedShutdownAbortsStalled(t *testing.T) {
	h := handler.New(handler.WithDetachedStreams(), handler.WithInterval(time.Millisecond), handler.WithWriteTimeout(time.Hour))
	resp, _ := serveDetached(t, h, "/events")
	if _, err := wiretest.ReadFrames(resp.Body, 1); err != nil { // then never read again: net.Pipe has no buffer
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := h.Shutdown(ctx)
	want := "handler: reset 1 streams whose clients did not take their last event: context deadline exceeded"
	if err == nil || err.Error() != want {
		t.Errorf("Shutdown: %v, want %s", err, want)
	}
	if n := h.Streams(); n != 0 {
		t.Errorf("Streams() = %d after Shutdown returned", n)
	}
}
