//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstream/tickstream/handler"
	"github.com/tickstream/tickstream/internal/wiretest"
)

// sockstat is the TCP line of /proc/net/sockstat: sockets orphaned by their
// process (closed, still sending what was queued), and the pages of memory
// all TCP sockets hold. Both count the whole network namespace, so the
// tests below allow for other packages' tests running beside them.
type sockstat struct{ orphans, memPages int }

func readSockstat(t *testing.T) sockstat {
	t.Helper()
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "TCP: "); ok {
			var s sockstat
			var inuse, tw, alloc int
			if _, err := fmt.Sscanf(rest, "inuse %d orphan %d tw %d alloc %d mem %d", &inuse, &s.orphans, &tw, &alloc, &s.memPages); err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return s
		}
	}
	t.Fatalf("no TCP line in /proc/net/sockstat:\n%s", b)
	return sockstat{}
}

// serverSockets sums up the TCP sockets on one local port.
type serverSockets struct {
	finWait1 int // closed by the server, still sending what was queued
	queued   int // bytes in their send and receive queues
}

// readServerSockets reads the IPv4 sockets whose local port is port (in
// decimal) from /proc/net/tcp.
func readServerSockets(t *testing.T, port string) serverSockets {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	var p int
	fmt.Sscan(port, &p)
	suffix := fmt.Sprintf(":%04X", p)
	var s serverSockets
	for _, line := range strings.Split(string(b), "\n")[1:] {
		// sl local_address rem_address st tx_queue:rx_queue ...
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasSuffix(f[1], suffix) {
			continue
		}
		if f[3] == "04" { // TCP_FIN_WAIT1
			s.finWait1++
		}
		var tx, rx int
		fmt.Sscanf(f[4], "%x:%x", &tx, &rx)
		s.queued += tx + rx
	}
	return s
}

// stallStream opens /events with 64 KiB events every millisecond on a
// connection with a small receive buffer, and never reads it.
func stallStream(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tcp := c.(*net.TCPConn)
	tcp.SetReadBuffer(4096)
	if _, err := fmt.Fprintf(c, "GET /events?interval=1ms&size=65536 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return tcp
}

// readUntilFailure reads c until a read fails and returns how much it read
// and the error; io.EOF means a normal close, ECONNRESET a reset.
func readUntilFailure(c net.Conn, timeout time.Duration) (int64, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	n, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	return n, err
}

// TestDroppedStalledReadersFreeKernelMemory: 200 clients that stop reading
// 64 KiB events are dropped at the write timeout with a TCP reset, which
// frees what their sockets had queued at once: within 2 s no orphan socket,
// nothing left in FIN-WAIT-1 and no byte queued on the server's port. A
// normal close would leave about 4 MB queued per client for minutes (753 MiB
// of TCP memory in /proc/net/sockstat for 200), and the client reading it.
func TestDroppedStalledReadersFreeKernelMemory(t *testing.T) {
	for _, detach := range []string{"-detach=true", "-detach=false"} {
		t.Run(detach, func(t *testing.T) {
			const clients = 200
			const writeTimeout = 500 * time.Millisecond
			r := startRunner(t, []string{detach, "-write-timeout", writeTimeout.String(), "-max-streams", "1000"})
			addr := strings.TrimPrefix(r.url, "http://")
			idle := readSockstat(t)

			conns := make([]*net.TCPConn, clients)
			for i := range conns {
				conns[i] = stallStream(t, addr)
			}
			// Each is dropped between half and all of the write timeout
			// after its buffers fill; then a client that reads gets what
			// was in flight and the reset, not megabytes more.
			time.Sleep(2 * writeTimeout)
			for i, c := range conns {
				n, err := readUntilFailure(c, 5*time.Second)
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("client %d: read %d bytes, then %v; want a connection reset", i, n, err)
				}
				if n > 1<<20 {
					t.Errorf("client %d read %d bytes after it was dropped, want what was in flight (< 1 MiB)", i, n)
				}
				c.Close()
			}
			// What the kernel still holds for them, counted on the
			// server's own sockets (/proc/net/tcp), which other packages'
			// tests running beside this one cannot disturb: a normal close
			// would leave each in FIN-WAIT-1 with megabytes queued.
			port := addr[strings.LastIndex(addr, ":")+1:]
			var held serverSockets
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				held = readServerSockets(t, port)
				if held.finWait1 == 0 && held.queued == 0 && readSockstat(t).orphans <= idle.orphans {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("2s after %d stalled clients were dropped, the server's port has %d sockets in FIN-WAIT-1 "+
						"and %d bytes queued; %d orphan sockets (idle: %d)", clients, held.finWait1, held.queued, readSockstat(t).orphans, idle.orphans)
				}
			}
		})
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// openRawStreams opens n /events streams of an hour between events on raw
// connections, one after the other, and reads each one's first event. Every
// other one is a POST whose body sets the interval, so that what is proved
// of these streams holds for POST streams too.
func openRawStreams(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i%2 == 0 {
			io.WriteString(c, "GET /events?interval=1h HTTP/1.1\r\nHost: x\r\n\r\n")
		} else {
			io.WriteString(c, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n{\"interval\":\"1h\"}")
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %s", i, resp.Status)
		}
		if _, err := wiretest.ReadFrames(resp.Body, 1); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	return conns
}

// TestDepartedClientsFreeSlotsAtOnce: 2,000 clients of silent streams
// (an hour between events, no heartbeats) close their connections. The
// server, which will not write to them for an hour, must notice and free
// their slots and descriptors within 2 s, in the default (detached) mode.
func TestDepartedClientsFreeSlotsAtOnce(t *testing.T) {
	const n = 2000
	r := startRunner(t, []string{"-heartbeat", "0", "-max-streams", fmt.Sprint(n)})
	addr := strings.TrimPrefix(r.url, "http://")
	before := openFDs(t)
	conns := openRawStreams(t, addr, n)
	if during := openFDs(t); during < before+2*n {
		t.Fatalf("%d descriptors with %d streams open, %d before: want the clients' and the server's", during, n, before)
	}
	for _, c := range conns {
		c.Close()
	}
	// The event loops live on until shutdown, each with its epoll and its
	// wake pipe: at most one per P.
	before += 3 * runtime.GOMAXPROCS(0)
	for deadline := time.Now().Add(2 * time.Second); openFDs(t) > before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open 2s after %d clients left, %d before", openFDs(t), n, before)
		}
	}
	// Every slot is free again.
	openRawStreams(t, addr, n)
}

// TestShutdownResetsStalledReaders: SIGTERM with 200 healthy streams and 20
// clients that stopped reading. The healthy ones end cleanly at once; the
// stalled ones cannot take their last event, and at the end of the grace
// period their connections are reset (no orphan sockets left behind), and
// run returns an error that says so: the exit status is 1.
func TestShutdownResetsStalledReaders(t *testing.T) {
	const grace = time.Second
	r := startRunner(t, []string{"-grace", grace.String(), "-write-timeout", "1m"}, handler.WithInterval(20*time.Millisecond))
	addr := strings.TrimPrefix(r.url, "http://")
	idle := readSockstat(t)
	healthy := openStreams(t, r.url, 200)
	stalled := make([]*net.TCPConn, 20)
	for i := range stalled {
		stalled[i] = stallStream(t, addr)
	}
	time.Sleep(300 * time.Millisecond) // their buffers fill

	start := time.Now()
	err := r.stop()
	elapsed := time.Since(start)
	want := "shutdown: not every client took its last event within the 1s grace; the rest were reset: " +
		"handler: reset 20 streams whose clients did not take their last event: context deadline exceeded"
	if err == nil || err.Error() != want {
		t.Errorf("run returned %v\nwant %s", err, want)
	}
	if elapsed < grace || elapsed > grace+time.Second {
		t.Errorf("run returned %v after the stop, want just after the %v grace", elapsed, grace)
	}
	checkCleanEnds(t, healthy)
	for i, c := range stalled {
		if n, err := readUntilFailure(c, 5*time.Second); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("stalled client %d: read %d bytes, then %v; want a connection reset", i, n, err)
		}
	}
	if now := readSockstat(t); now.orphans > idle.orphans {
		t.Errorf("%d orphan sockets after shutdown, %d before", now.orphans, idle.orphans)
	}
	if logs := r.logs.String(); !strings.Contains(logs, `level=WARN msg="stopped after the grace period; connections of clients that were not reading were reset" grace=1s`) {
		t.Errorf("no log line says what happened:\n%s", logs)
	}
}

// TestStreamLimitFitsFileLimit runs the command under `ulimit -n 1024`
// with the default -max-streams (10,000): it lowers the stream limit to fit,
// says so in one log line, and while 1,500 clients try to open streams,
// the ones beyond the limit get 503 and /health keeps answering.
func TestStreamLimitFitsFileLimit(t *testing.T) {
	bin := buildCommand(t)
	logs := &logSink{addrc: make(chan string, 1)}
	cmd := exec.Command("sh", "-c", `ulimit -n 1024 && exec "$0" "$@"`, bin, "-addr", "127.0.0.1:0", "-heartbeat", "0")
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var addr string
	select {
	case addr = <-logs.addrc:
	case <-time.After(10 * time.Second):
		t.Fatalf("the command did not start listening:\n%s", logs)
	}
	lowered := regexp.MustCompile(`level=WARN msg=.*`).FindString(logs.String())
	want := `level=WARN msg="lowering -max-streams to fit the open file limit (raise it with ulimit -n)" max_streams=896 requested=10000 open_file_limit=1024 reserved=128`
	if diff := cmp.Diff(want, lowered); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}

	const clients = 1500
	statuses := make(chan int, clients)
	var conns sync.WaitGroup
	held := make(chan struct{})
	for range clients {
		conns.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				statuses <- 0
				return
			}
			defer c.Close()
			io.WriteString(c, "GET /events?interval=1h HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				statuses <- 0
				return
			}
			statuses <- resp.StatusCode
			<-held // a stream holds its slot and descriptor until the end
		})
	}
	health := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	checkHealth := func() {
		resp, err := health.Get("http://" + addr + "/health")
		if err != nil {
			t.Fatalf("/health while %d clients open streams: %v", clients, err)
		}
		resp.Body.Close()
	}
	counts := map[int]int{}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for answered := 0; answered < clients; {
		select {
		case st := <-statuses:
			counts[st]++
			answered++
		case <-tick.C:
			checkHealth()
		}
	}
	checkHealth()
	close(held)
	conns.Wait()
	if diff := cmp.Diff(map[int]int{200: 896, 503: clients - 896}, counts); diff != "" {
		t.Errorf("statuses of %d stream requests (-want +got):\n%s", clients, diff)
	}
}

// forcedCollections returns how many collections the program has forced
// (debug.FreeOSMemory, runtime.GC).
func forcedCollections() uint64 {
	sample := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// TestBurstOfStreamsGivesMemoryBack: 4,000 streams start (about 17 MiB of
// stream buffers taken, as the budget counts them) and then none; within a
// few seconds of the burst's end the runner collects the garbage their
// setup left and returns the free heap to the system, which Go's runtime,
// with nothing allocated per event, would not do for minutes.
func TestBurstOfStreamsGivesMemoryBack(t *testing.T) {
	r := startRunner(t, []string{"-heartbeat", "0"})
	before := forcedCollections()
	openRawStreams(t, strings.TrimPrefix(r.url, "http://"), 4000)
	for deadline := time.Now().Add(5 * time.Second); forcedCollections() == before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no memory returned 5 s after a burst of 4,000 streams")
		}
	}
}
