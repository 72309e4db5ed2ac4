package main

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// HTTP/2 frames, written by hand (RFC 9113 §4.1, §6; HPACK, RFC 7541
// §6.1-6.2) so that the client below can do what no well-behaved client
// library does: grant the server huge windows and never read.
const (
	frameHeaders      = 0x1
	frameSettings     = 0x4
	frameWindowUpdate = 0x8

	flagEndStream  = 0x1
	flagEndHeaders = 0x4

	settingInitialWindowSize = 0x4
	maxWindow                = 1<<31 - 1
)

func appendFrame(dst []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	dst = append(dst, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	dst = binary.BigEndian.AppendUint32(dst, stream)
	return append(dst, payload...)
}

// appendGetHeaders appends the HPACK block of GET http://authority/path:
// static-table entries for :method GET and :scheme http, and literal values
// (without indexing, without Huffman) for :authority and :path.
func appendGetHeaders(dst []byte, authority, path string) []byte {
	dst = append(dst, 0x82, 0x86)
	for _, f := range []struct {
		index byte
		value string
	}{{1, authority}, {4, path}} {
		dst = append(dst, f.index, byte(len(f.value))) // values here are < 127 bytes
		dst = append(dst, f.value...)
	}
	return dst
}

// openStalledH2C opens an h2c connection, grants the server windows of
// 2^31-1 bytes on it and on every stream, asks for path on n streams, and
// never reads a byte.
func openStalledH2C(t *testing.T, addr, path string, n int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(4096)
	out := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	setting := binary.BigEndian.AppendUint16(nil, settingInitialWindowSize)
	setting = binary.BigEndian.AppendUint32(setting, maxWindow)
	out = appendFrame(out, frameSettings, 0, 0, setting)
	out = appendFrame(out, frameWindowUpdate, 0, 0, binary.BigEndian.AppendUint32(nil, maxWindow-65535))
	for i := range n {
		out = appendFrame(out, frameHeaders, flagEndStream|flagEndHeaders, uint32(2*i+1), appendGetHeaders(nil, addr, path))
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	return c
}

// streamStatus asks for one /events event over HTTP/1.1 and returns the
// status: 503 while every stream slot is taken.
func streamStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/events?count=1")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestHTTP2ClientThatStopsReading: an HTTP/2 client that takes every slot
// and never reads its socket loses its connection, and so its streams and
// their slots, within about the write timeout: a busy stream through the
// connection's write timeout, a silent one through an unanswered ping.
func TestHTTP2ClientThatStopsReading(t *testing.T) {
	const writeTimeout = time.Second
	for _, tt := range []struct {
		name, path string
	}{
		{"busy", "/events?interval=1ms&size=65536"},
		{"silent", "/events?interval=1h"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const slots = 5
			r := startRunner(t, []string{"-h2c", "-heartbeat", "0", "-max-streams", "5", "-write-timeout", writeTimeout.String()})
			openStalledH2C(t, strings.TrimPrefix(r.url, "http://"), tt.path, slots)
			// Probe only once the stalled streams hold every slot: a probe
			// that held one meanwhile would leave a stalled stream a 503.
			time.Sleep(200 * time.Millisecond)
			if st := streamStatus(t, r.url); st != http.StatusServiceUnavailable {
				t.Fatalf("a stream beside the stalled client's %d: %d, want 503", slots, st)
			}
			start := time.Now()
			for streamStatus(t, r.url) != http.StatusOK {
				if elapsed := time.Since(start); elapsed > 3*writeTimeout {
					t.Fatalf("the stalled client still holds every slot %v later (write timeout %v)", elapsed, writeTimeout)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestHTTP2SilentStreamOutlivesWriteTimeout: on HTTP/2 a write deadline that
// passes resets the stream even when no write is pending, so a healthy
// stream silent for longer than the write timeout must not be left with
// one. Its client also answers the server's pings.
func TestHTTP2SilentStreamOutlivesWriteTimeout(t *testing.T) {
	r := startRunnerWithClock(t, wiretest.SteppingClock(time.Second), []string{"-h2c", "-heartbeat", "0", "-write-timeout", "400ms"})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(r.url + "/events?interval=1s&count=2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the stream ended with %v after %q", err, body)
	}
	want := "retry: 1000\nid: 1\nevent: tick\ndata: {\"id\":1,\"timestamp\":\"2000-01-01T00:00:00.000Z\",\"message\":\"Event #1\"}\n\n" +
		"id: 2\nevent: tick\ndata: {\"id\":2,\"timestamp\":\"2000-01-01T00:00:01.000Z\",\"message\":\"Event #2\"}\n\n"
	if diff := cmp.Diff(want, string(body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}
