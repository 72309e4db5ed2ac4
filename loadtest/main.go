// Command loadtest holds many concurrent SSE streams open against a server on
// this machine and reports how the server keeps up:
//
//	go run ./loadtest -url http://127.0.0.1:8080/events -streams 10000 -hold 30s -pid $(pgrep -n tickstream)
//
// It opens the streams (plain HTTP/1.1, one connection each, spread over
// several 127.0.0.x source addresses so that more than one address's
// ephemeral ports are available), waits until all are open, holds them for
// -hold, then closes them and reports: streams held, events delivered during
// the hold, gaps and repeats in each stream's ids, time to first event, and
// lateness against each stream's schedule. Given the server's process id it
// also reports the server's resident memory per stream and CPU time per
// delivered event, from /proc (Linux).
//
// Event ids are read from the "id" member of each event's JSON data, so it
// works with tickstream's /events, go-httpbin's /sse and the naive baseline
// in loadtest/naive alike. It only connects to loopback addresses and stops
// by itself.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// Bounds of the flags.
const (
	maxStreams     = 20_000
	maxHold        = 10 * time.Minute
	maxSourceAddrs = 250
)

// config is what the flags set.
type config struct {
	url         *url.URL
	streams     int
	hold        time.Duration
	interval    time.Duration // the time between two events of one stream
	sourceAddrs int           // connect from 127.0.0.2 to 127.0.0.(1+sourceAddrs)
	dials       int           // connections being opened at once
	pid         int           // the server's process id; 0 for none
	client      string        // how each stream is read: "raw" or "nethttp"
	json        bool
}

func parseConfig(args []string, output io.Writer) (config, error) {
	var cfg config
	var rawURL string
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&rawURL, "url", "http://127.0.0.1:8080/events", "the stream `URL`, on a loopback address")
	fs.IntVar(&cfg.streams, "streams", 1000, "concurrent streams to hold (1 to 20000)")
	fs.DurationVar(&cfg.hold, "hold", 10*time.Second, "how long to hold them once all are open (at most 10m)")
	fs.DurationVar(&cfg.interval, "interval", time.Second, "the time between two events of a stream, for lateness")
	fs.IntVar(&cfg.sourceAddrs, "source-addrs", 8, "connect from this many addresses, 127.0.0.2 and up (1 to 250)")
	fs.IntVar(&cfg.dials, "dials", 200, "connections being opened at once")
	fs.IntVar(&cfg.pid, "pid", 0, "the server's process `id`, to report its memory and CPU (Linux)")
	fs.StringVar(&cfg.client, "client", "raw", "read each stream from a raw socket (`raw`, the least a client costs), or through net/http's client, a transport each (nethttp, what browsers' and proxies' HTTP stacks cost)")
	fs.BoolVar(&cfg.json, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return cfg, fmt.Errorf("-url %q: want an http:// URL", rawURL)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return cfg, fmt.Errorf("-url %q: only loopback addresses are allowed", rawURL)
	}
	cfg.url = u
	switch {
	case cfg.streams < 1 || cfg.streams > maxStreams:
		return cfg, fmt.Errorf("-streams %d: want 1 to %d", cfg.streams, maxStreams)
	case cfg.hold <= 0 || cfg.hold > maxHold:
		return cfg, fmt.Errorf("-hold %v: want more than 0 and at most %v", cfg.hold, maxHold)
	case cfg.interval <= 0:
		return cfg, fmt.Errorf("-interval %v: want more than 0", cfg.interval)
	case cfg.sourceAddrs < 1 || cfg.sourceAddrs > maxSourceAddrs:
		return cfg, fmt.Errorf("-source-addrs %d: want 1 to %d", cfg.sourceAddrs, maxSourceAddrs)
	case cfg.dials < 1:
		return cfg, fmt.Errorf("-dials %d: want at least 1", cfg.dials)
	case cfg.client != "raw" && cfg.client != "nethttp":
		return cfg, fmt.Errorf("-client %q: want raw or nethttp", cfg.client)
	}
	return cfg, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	r, err := loadTest(ctx, cfg)
	if err != nil {
		return err
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	r.writeText(stdout)
	return nil
}

// report is what a load test measured.
type report struct {
	Streams      int            `json:"streams"`        // requested
	Held         int            `json:"held"`           // open through the whole hold
	Failed       map[string]int `json:"failed"`         // streams that did not open or ended early, by reason
	Hold         time.Duration  `json:"hold_ns"`        // how long they were held
	Events       int64          `json:"events"`         // events delivered during the hold
	Gaps         int64          `json:"gaps"`           // ids missing from streams
	Repeats      int64          `json:"repeats"`        // ids repeated or out of order
	FirstEvent   percentiles    `json:"first_event"`    // from dialing to the first event
	Lateness     percentiles    `json:"lateness"`       // behind each stream's schedule, during the hold
	ServerRSS    int64          `json:"server_rss_kib"` // at the end of the hold
	RSSPerStream float64        `json:"rss_per_stream_kib"`
	ServerCPU    time.Duration  `json:"server_cpu_ns"` // during the hold
	CPUPerEvent  time.Duration  `json:"cpu_per_event_ns"`
	// The kernel's memory (Linux), at the end of the hold, beyond what it
	// was before the streams opened: outside any process's RSS, and for
	// both ends' sockets when the load tool runs on the server's machine.
	// TCP is what TCP's buffers hold (/proc/net/sockstat), slab the
	// kernel's objects (/proc/meminfo, Slab: sockets, files, epoll entries),
	// which is most of an idle socket's cost and counts the whole machine.
	KernelTCP           int64   `json:"kernel_tcp_kib"`
	KernelTCPPerStream  float64 `json:"kernel_tcp_per_stream_kib"`
	KernelSlab          int64   `json:"kernel_slab_kib"`
	KernelSlabPerStream float64 `json:"kernel_slab_per_stream_kib"`
	serverMeasure       bool    // the server's figures were read (-pid)
	kernelMeasure       bool    // the kernel's were (/proc/net/sockstat)
}

type percentiles struct {
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func (r report) writeText(w io.Writer) {
	fmt.Fprintf(w, "streams held     %d of %d\n", r.Held, r.Streams)
	for reason, n := range r.Failed {
		fmt.Fprintf(w, "  failed         %d: %s\n", n, reason)
	}
	fmt.Fprintf(w, "events           %d in %v (%.0f/s)\n", r.Events, r.Hold, float64(r.Events)/r.Hold.Seconds())
	fmt.Fprintf(w, "id gaps          %d\n", r.Gaps)
	fmt.Fprintf(w, "ids repeated     %d\n", r.Repeats)
	fmt.Fprintf(w, "first event      p50 %v  p99 %v  max %v\n", r.FirstEvent.P50, r.FirstEvent.P99, r.FirstEvent.Max)
	fmt.Fprintf(w, "lateness         p50 %v  p99 %v  max %v\n", r.Lateness.P50, r.Lateness.P99, r.Lateness.Max)
	if r.serverMeasure {
		fmt.Fprintf(w, "server RSS       %d KiB, %.1f KiB per stream\n", r.ServerRSS, r.RSSPerStream)
		fmt.Fprintf(w, "server CPU       %v, %.1f µs per event\n", r.ServerCPU, float64(r.CPUPerEvent)/float64(time.Microsecond))
	}
	if r.kernelMeasure {
		fmt.Fprintf(w, "kernel TCP       %d KiB, %.1f KiB per stream (buffers of both ends' sockets, /proc/net/sockstat)\n", r.KernelTCP, r.KernelTCPPerStream)
		fmt.Fprintf(w, "kernel slab      %d KiB, %.1f KiB per stream (both ends' sockets, files and the rest, /proc/meminfo)\n", r.KernelSlab, r.KernelSlabPerStream)
	}
}

// histogram counts durations in 100 µs buckets up to 10 s; longer ones go
// in the last bucket, and the maximum is kept exactly. It is safe for
// concurrent use.
type histogram struct {
	buckets [100_000]atomic.Int64
	max     atomic.Int64
}

const bucketWidth = 100 * time.Microsecond

func (h *histogram) add(d time.Duration) {
	d = max(d, 0)
	h.buckets[min(int(d/bucketWidth), len(h.buckets)-1)].Add(1)
	for m := h.max.Load(); int64(d) > m && !h.max.CompareAndSwap(m, int64(d)); m = h.max.Load() {
	}
}

// percentiles returns the 50th and 99th percentiles, each the upper edge of
// the first bucket at or below which at least that share of the samples
// lie (capped by the maximum), and the maximum.
func (h *histogram) percentiles() percentiles {
	var total int64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	at := func(q float64) time.Duration {
		if total == 0 {
			return 0
		}
		rank := int64(math.Ceil(q * float64(total)))
		var seen int64
		for i := range h.buckets {
			if seen += h.buckets[i].Load(); seen >= rank {
				return min(time.Duration(i+1)*bucketWidth, time.Duration(h.max.Load()))
			}
		}
		return time.Duration(h.max.Load())
	}
	return percentiles{P50: at(0.50), P99: at(0.99), Max: time.Duration(h.max.Load())}
}

// loadTest runs one test as cfg says.
func loadTest(ctx context.Context, cfg config) (report, error) {
	r := report{Streams: cfg.streams, Failed: map[string]int{}, serverMeasure: cfg.pid != 0}
	baseTCP, tcpOK := kernelTCPKiB()
	baseSlab, slabOK := slabKiB()
	var baseRSS int64
	if cfg.pid != 0 {
		var err error
		if baseRSS, _, err = processStats(cfg.pid); err != nil {
			return r, err
		}
	}

	var (
		firstEvent, lateness histogram
		holding              atomic.Bool
		events, gaps, repeat atomic.Int64
		opened, failed, lost atomic.Int64 // streams opened, never opened, lost after opening
		mu                   sync.Mutex   // guards r.Failed
		wg                   sync.WaitGroup
	)
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	dials := make(chan struct{}, cfg.dials)
	for i := range cfg.streams {
		select {
		case dials <- struct{}{}:
		case <-ctx.Done():
			return r, ctx.Err()
		}
		wg.Go(func() {
			src := net.IPv4(127, 0, 0, byte(2+i%cfg.sourceAddrs))
			wasOpened := false
			err := readStream(streamCtx, cfg, src, dials,
				func(wait time.Duration) {
					wasOpened = true
					firstEvent.add(wait)
					opened.Add(1)
				},
				func(late time.Duration, gap, repeated bool) {
					if !holding.Load() {
						return
					}
					events.Add(1)
					lateness.add(late)
					if gap {
						gaps.Add(1)
					}
					if repeated {
						repeat.Add(1)
					}
				})
			if err != nil && streamCtx.Err() == nil {
				mu.Lock()
				r.Failed[err.Error()]++
				mu.Unlock()
				if wasOpened {
					lost.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	// Wait until every stream is open or has failed.
	for opened.Load()+failed.Load() < int64(cfg.streams) {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}

	_, cpuStart, _ := processStats(cfg.pid)
	holding.Store(true)
	start := time.Now()
	select {
	case <-time.After(cfg.hold):
	case <-ctx.Done():
	}
	holding.Store(false)
	r.Hold = time.Since(start)
	r.Held = int(opened.Load() - lost.Load())
	if cfg.pid != 0 {
		rss, cpuEnd, err := processStats(cfg.pid)
		if err != nil {
			return r, err
		}
		r.ServerRSS = rss
		r.RSSPerStream = float64(rss-baseRSS) / float64(max(r.Held, 1))
		r.ServerCPU = cpuEnd - cpuStart
		r.CPUPerEvent = r.ServerCPU / time.Duration(max(events.Load(), 1))
	}
	tcp, tcpNow := kernelTCPKiB()
	slab, slabNow := slabKiB()
	if tcpOK && tcpNow && slabOK && slabNow {
		r.kernelMeasure = true
		r.KernelTCP, r.KernelSlab = max(tcp-baseTCP, 0), max(slab-baseSlab, 0)
		r.KernelTCPPerStream = float64(r.KernelTCP) / float64(max(r.Held, 1))
		r.KernelSlabPerStream = float64(r.KernelSlab) / float64(max(r.Held, 1))
	}
	cancel()
	wg.Wait()
	r.Events, r.Gaps, r.Repeats = events.Load(), gaps.Load(), repeat.Load()
	r.FirstEvent, r.Lateness = firstEvent.percentiles(), lateness.percentiles()
	return r, nil
}

// readStream opens one stream from src and reads it until ctx is done. It
// calls first with the time from dialing to the first event, then event
// for each later one with its lateness against the stream's schedule (the
// first event's arrival plus one interval per id since) and whether its id
// skipped ahead or repeated. It releases a slot of dials once the
// connection is open.
func readStream(ctx context.Context, cfg config, src net.IP, dials <-chan struct{},
	first func(wait time.Duration), event func(late time.Duration, gap, repeated bool)) error {
	start := time.Now()
	open := openRaw
	if cfg.client == "nethttp" {
		open = openNetHTTP
	}
	body, err := open(ctx, cfg, src, dials)
	if err != nil {
		return err
	}
	defer body.Close()
	lines := bufio.NewReaderSize(body, 512) // without the chunked framing

	var firstID, lastID int64
	var firstAt time.Time
	for n := 0; ; n++ {
		var id int64
		for {
			line, err := lines.ReadSlice('\n')
			// A line longer than the buffer (a padded event: size=) has its
			// id in its first bytes, read before the rest is skipped (which
			// reuses the buffer).
			lineID, ok := dataID(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = lines.ReadSlice('\n')
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("stream ended: %v", err)
			}
			if ok {
				id = lineID
				break
			}
		}
		now := time.Now()
		if n == 0 {
			firstID, lastID, firstAt = id, id, now
			first(now.Sub(start))
			continue
		}
		event(now.Sub(firstAt.Add(time.Duration(id-firstID)*cfg.interval)), id > lastID+1, id <= lastID)
		lastID = max(lastID, id)
	}
}

// openRaw opens a stream from src on a socket of its own, sends the request
// and reads the response head itself, and returns the body, without its
// chunked framing; closing it, or ctx's end, closes the socket. It releases
// a slot of dials once the connection is open.
func openRaw(ctx context.Context, cfg config, src net.IP, dials <-chan struct{}) (io.ReadCloser, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
	conn, err := d.DialContext(ctx, "tcp", cfg.url.Host)
	<-dials
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return nil, fmt.Errorf("dial: %v", opErr.Err)
		}
		return nil, fmt.Errorf("dial: %v", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", cfg.url.RequestURI(), cfg.url.Host)
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1024), &http.Request{Method: "GET"})
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	} else if err != nil {
		err = fmt.Errorf("reading the response: %v", err)
	}
	if err != nil {
		stop()
		conn.Close()
		return nil, err
	}
	return readCloser{resp.Body, func() error { stop(); return conn.Close() }}, nil
}

// openNetHTTP opens a stream from src through net/http's client, with a
// transport of its own (as each browser or proxy connection has its
// buffers and goroutines), and returns the body. It releases a slot of
// dials once the response head has come.
func openNetHTTP(ctx context.Context, cfg config, src net.IP, dials <-chan struct{}) (io.ReadCloser, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.url.String(), nil)
	if err != nil {
		<-dials
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	<-dials
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return nil, fmt.Errorf("dial: %v", opErr.Err)
		}
		return nil, fmt.Errorf("reading the response: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Body, nil
}

// readCloser is a Reader with a Close of its own.
type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// dataID returns the number after `"id":` in a data line.
func dataID(line []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return 0, false
	}
	i := bytes.Index(rest, []byte(`"id":`))
	if i < 0 {
		return 0, false
	}
	rest = rest[i+len(`"id":`):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}

// kernelTCPKiB reads the memory all TCP sockets of the network namespace
// hold, in KiB, from /proc/net/sockstat ("TCP: ... mem N", in pages), and
// reports false where there is none (not Linux).
func kernelTCPKiB() (int64, bool) {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "TCP: ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i += 2 {
			if f[i] == "mem" {
				pages, err := strconv.ParseInt(f[i+1], 10, 64)
				return pages * int64(os.Getpagesize()) / 1024, err == nil
			}
		}
	}
	return 0, false
}

// slabKiB reads the kernel's slab memory, in KiB, from /proc/meminfo
// ("Slab:"), and reports false where there is none (not Linux).
func slabKiB() (int64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Slab:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kib, err == nil
		}
	}
	return 0, false
}

// processStats reads a process's resident memory (KiB) and the CPU time it
// has used, from /proc. CPU time is counted in clock ticks of 1/100 s, the
// value of CLK_TCK on Linux.
func processStats(pid int) (rssKiB int64, cpu time.Duration, err error) {
	if pid == 0 {
		return 0, 0, nil
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("server process: %w", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("server process: %w", err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return 0, 0, errors.New("server process: unexpected /proc stat format")
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return rssKiB, time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
