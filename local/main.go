// Command local serves tickstream's routes over HTTP/1.1, and over HTTP/2
// with TLS (-tls-cert, -tls-key) or in cleartext (-h2c):
//
//	go run ./local [-addr host:port] [flags]
//
// Build it as a binary named tickstream with go build -o tickstream ./local
// (go install names it local, after its directory). -h lists the flags and
// -version prints the version it was built from.
//
// It listens on :8080, or on the port in the PORT environment variable
// (as hosting platforms set it), unless -addr is given. On SIGINT or SIGTERM
// it stops accepting connections, ends every open stream on an event
// boundary with a properly terminated response, and exits once they are
// closed or the grace period has passed.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tickstream/tickstream/handler"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	var usage *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp), errors.Is(err, errVersion):
	case errors.As(err, &usage):
		os.Exit(2) // the flag package has said what is wrong, and shown the usage
	default:
		fmt.Fprintln(os.Stderr, "tickstream:", err)
		os.Exit(1)
	}
}

// Server limits for requests. There is deliberately no WriteTimeout: it
// would cut every stream at that age; each stream write has its own
// deadline instead (-write-timeout).
const (
	idleTimeout    = 2 * time.Minute
	maxHeaderBytes = 8 << 10
)

// config is what the command line and environment set.
type config struct {
	addr              string
	grace             time.Duration
	logLevel          slog.Level
	readHeaderTimeout time.Duration
	maxStreams        int
	writeTimeout      time.Duration
	heartbeat         time.Duration
	corsOrigins       []string
	streamMemory      int64  // bytes of buffers the open streams may hold
	tlsCert, tlsKey   string // PEM files; both set: serve HTTPS
	h2c               bool   // also serve cleartext HTTP/2
	h3                bool   // also serve HTTP/3 on the port's UDP twin
	detach            bool   // serve HTTP/1.1 streams on hijacked connections
}

// handlerOptions returns the handler options cfg sets.
func (cfg config) handlerOptions() []handler.Option {
	opts := []handler.Option{
		handler.WithMaxStreams(cfg.maxStreams),
		handler.WithWriteTimeout(cfg.writeTimeout),
		handler.WithHeartbeat(cfg.heartbeat),
		handler.WithStreamMemory(cfg.streamMemory),
		// A POST stream's body has as long as its header had.
		handler.WithBodyTimeout(cfg.readHeaderTimeout),
	}
	if len(cfg.corsOrigins) > 0 {
		opts = append(opts, handler.WithAllowedOrigins(cfg.corsOrigins...))
	}
	if cfg.detach {
		opts = append(opts, handler.WithDetachedStreams())
	}
	return opts
}

func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, error) {
	cfg := config{addr: ":8080"}
	if port := getenv("PORT"); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 {
			return cfg, fmt.Errorf("PORT=%q: want a port number from 0 to 65535", port)
		}
		cfg.addr = ":" + port
	}
	fs := flag.NewFlagSet("tickstream", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprint(output, "Usage: tickstream [flags]\n\n"+
			"Serves tickstream's Server-Sent Events routes (/events, /stream/fast,\n"+
			"/health and a live page) until SIGINT or SIGTERM, then ends every stream\n"+
			"cleanly and exits.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.StringVar(&cfg.addr, "addr", cfg.addr, "listen on `host:port`; PORT=n in the environment makes the default :n")
	fs.DurationVar(&cfg.grace, "grace", 5*time.Second, "on SIGINT or SIGTERM, wait this long for open streams to end before closing them")
	cfg.logLevel = slog.LevelInfo
	fs.Var(levelFlag{&cfg.logLevel}, "log-level", "log `level`: debug, info, warn or error")
	fs.DurationVar(&cfg.readHeaderTimeout, "read-header-timeout", 5*time.Second, "close connections whose request header, or a POST stream's body, takes longer than this")
	fs.IntVar(&cfg.maxStreams, "max-streams", handler.DefaultMaxStreams, "serve at most this many streams at once; more get 503")
	cfg.streamMemory = handler.DefaultStreamMemory
	fs.Var(sizeFlag{&cfg.streamMemory}, "stream-memory", "let the open streams hold at most this `size` of buffers in all (such as 64MiB or 1GiB); a stream beyond it gets 503")
	fs.DurationVar(&cfg.writeTimeout, "write-timeout", handler.DefaultWriteTimeout, "drop a stream whose client stopped taking writes, half to all of this later (0: never)")
	fs.DurationVar(&cfg.heartbeat, "heartbeat", handler.DefaultHeartbeat, "send a keepalive comment on streams silent this long (0: never)")
	fs.Func("cors-origins", "allow cross-origin reads from these comma-separated `origins` (* for any); CORS is off without it", func(s string) error {
		for _, o := range strings.Split(s, ",") {
			if o = strings.TrimSpace(o); o != "" {
				cfg.corsOrigins = append(cfg.corsOrigins, o)
			}
		}
		return nil
	})
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "serve HTTPS, HTTP/2 and HTTP/1.1, with this PEM certificate `file` (needs -tls-key)")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "the PEM private key `file` of -tls-cert")
	fs.BoolVar(&cfg.h2c, "h2c", false, "also serve cleartext HTTP/2 (prior knowledge), for proxies that speak it to upstreams")
	fs.BoolVar(&cfg.h3, "h3", false, "also serve HTTP/3 (QUIC) on the same port over UDP, offered to clients by Alt-Svc (needs -tls-cert)")
	fs.BoolVar(&cfg.detach, "detach", true, "serve HTTP/1.1 streams on hijacked connections, from event loops on Linux, with a tenth of the memory per stream")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, &usageError{err}
	}
	if *showVersion {
		fmt.Fprintln(output, version(debug.ReadBuildInfo()))
		return cfg, errVersion
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"grace", cfg.grace}, {"write-timeout", cfg.writeTimeout}, {"heartbeat", cfg.heartbeat}} {
		if d.value < 0 {
			return cfg, fmt.Errorf("-%s %v: must not be negative", d.name, d.value)
		}
	}
	if cfg.readHeaderTimeout <= 0 {
		return cfg, fmt.Errorf("-read-header-timeout %v: must be positive", cfg.readHeaderTimeout)
	}
	if cfg.maxStreams < 1 {
		return cfg, fmt.Errorf("-max-streams %d: must be at least 1", cfg.maxStreams)
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return cfg, errors.New("-tls-cert and -tls-key go together")
	}
	if cfg.h2c && cfg.tlsCert != "" {
		return cfg, errors.New("-h2c is cleartext HTTP/2 and cannot be combined with -tls-cert")
	}
	if cfg.h3 && cfg.tlsCert == "" {
		return cfg, errors.New("-h3 needs -tls-cert and -tls-key: HTTP/3 is always encrypted")
	}
	return cfg, nil
}

// run parses args and the environment, serves until ctx is done, then shuts
// down gracefully. Logs go to logOutput. Options in opts are applied to the
// handler after the runner's own.
func run(ctx context.Context, args []string, getenv func(string) string, logOutput io.Writer, opts ...handler.Option) error {
	cfg, err := parseConfig(args, getenv, logOutput)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(logOutput, &slog.HandlerOptions{Level: cfg.logLevel}))
	var tlsConfig *tls.Config
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fmt.Errorf("loading -tls-cert and -tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	cfg.maxStreams = fitStreamsToFileLimit(cfg.maxStreams, logger)
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var udp net.PacketConn
	if cfg.h3 {
		// The TCP port's twin: Alt-Svc offers h3 on the port the client
		// already uses, as servers on 443 do.
		if udp, err = net.ListenPacket("udp", ln.Addr().String()); err != nil {
			ln.Close()
			return fmt.Errorf("listen for HTTP/3: %w", err)
		}
	}
	return serve(ctx, &resettingListener{TCPListener: ln.(*net.TCPListener)}, udp, tlsConfig, cfg, logger, opts)
}

// fitStreamsToFileLimit returns maxStreams, or less if the process may not
// open that many file descriptors with a reserve left for everything else
// (/health, the page, the 503s that refuse streams beyond the limit, the
// listener and the runtime's own): each stream holds one descriptor, and a
// server out of descriptors cannot even accept /health. It logs when it
// lowers the limit.
func fitStreamsToFileLimit(maxStreams int, logger *slog.Logger) int {
	limit, ok := openFileLimit()
	if !ok {
		return maxStreams
	}
	reserve := max(64, limit/8)
	if uint64(maxStreams)+reserve <= limit {
		return maxStreams
	}
	fit := 1
	if limit > reserve {
		fit = int(limit - reserve)
	}
	logger.Warn("lowering -max-streams to fit the open file limit (raise it with ulimit -n)",
		"max_streams", fit, "requested", maxStreams, "open_file_limit", limit, "reserved", reserve)
	return fit
}

// serve serves on ln (with TLS if tlsConfig is set), and HTTP/3 on udp if
// it is not nil, until ctx is done.
func serve(ctx context.Context, ln *resettingListener, udp net.PacketConn, tlsConfig *tls.Config, cfg config, logger *slog.Logger, opts []handler.Option) error {
	h := handler.New(append(append(cfg.handlerOptions(), handler.WithLogger(logger)), opts...)...)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Requests carry ctx's values (the tests' clock), not its end:
		// shutdown ends the streams when it is time.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:    log.New(redactingWriter{logger}, "", 0),
		TLSConfig:   tlsConfig,
		Protocols:   new(http.Protocols),
	}
	if cfg.writeTimeout > 0 {
		// The per-stream write deadline cannot see an HTTP/2 client that
		// stops reading its connection: the stream's writes go to the
		// connection's buffers, not to the socket. These end such a
		// connection, and every stream on it, within about the write
		// timeout: a write to the socket that makes no progress for that
		// long, or a ping left unanswered, closes it.
		srv.HTTP2 = &http.HTTP2Config{
			WriteByteTimeout: cfg.writeTimeout,
			SendPingTimeout:  cfg.writeTimeout / 2,
			PingTimeout:      cfg.writeTimeout / 2,
		}
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(tlsConfig != nil)
	srv.Protocols.SetUnencryptedHTTP2(cfg.h2c)
	// Shutdown then ends every stream at its next event boundary and waits
	// for their responses to complete. Detached streams, on hijacked
	// connections, are the handler's to end (h.Shutdown below).
	h.ConfigureServer(srv)
	var h3 *http3Server
	h3Served := make(chan error, 1)
	if udp != nil {
		h3 = newHTTP3Server(ctx, udp, tlsConfig, h, logger)
		srv.Handler = h3.advertise(h)
		go func() { h3Served <- h3.serve() }()
	}

	served := make(chan error, 1)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { served <- srv.Serve(ln) }()
	}
	returning, stopReturning := context.WithCancel(ctx)
	defer stopReturning()
	go returnMemory(returning, h)
	// Said last: once it is logged, every goroutine the server keeps runs,
	// which the tests that count goroutines rely on.
	logger.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "h2c", cfg.h2c, "h3", h3 != nil)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case err := <-h3Served:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "grace", cfg.grace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.grace)
	defer cancel()
	if h3 != nil {
		// Its streams end with the others, at the same time.
		go func() { h3Served <- h3.shutdown(shutdownCtx) }()
		defer func() {
			if err := <-h3Served; err != nil {
				logger.Warn("HTTP/3 did not shut down cleanly", "err", err)
			}
		}()
	}
	// The server ends its streams and the handler the detached ones, at the
	// same time.
	if err := h.Shutdown(shutdownCtx); err != nil {
		// What is left belongs to clients that do not take their last
		// bytes: reset it rather than leave the kernel holding it.
		ln.reset()
		srv.Close()
		<-served
		logger.Warn("stopped after the grace period; connections of clients that were not reading were reset", "grace", cfg.grace, "err", err)
		return fmt.Errorf("shutdown: not every client took its last event within the %v grace; the rest were reset: %w", cfg.grace, err)
	}
	<-served // http.ErrServerClosed
	logger.Info("stopped")
	return nil
}

// returnMemory gives the operating system back the memory that streams
// leave behind: the buffers of big streams once they end, and the garbage a
// burst of new streams makes as it starts (net/http's buffers for each
// connection, which a detached stream leaves to the collector, and the
// stacks of the goroutines that answered them). Go's runtime returns freed
// heap only slowly, and only after a collection, which a server that
// allocates nothing per event may not start for minutes: 1,000 clients of
// 1 MiB events would leave it holding hundreds of megabytes, and 10,000
// new streams a third more than they need. Every second, it collects and
// returns what is free if streams that ended have given up 32 MiB of
// buffers or more since it last did, or if streams that started have taken
// 16 MiB or more and none started in the last second (the burst is over).
func returnMemory(ctx context.Context, h *handler.Handler) {
	const (
		worthReleased = 32 << 20
		worthTaken    = 16 << 20
	)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	open, returned := h.StreamBuffers()
	lastTaken := open + returned // taken in all, since the handler was made
	returnedTaken := lastTaken
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		open, released := h.StreamBuffers()
		taken := open + released
		quiet := taken == lastTaken
		lastTaken = taken
		if released-returned >= worthReleased || quiet && taken-returnedTaken >= worthTaken {
			debug.FreeOSMemory()
			returned, returnedTaken = released, taken
		}
	}
}

// clientAddr matches an IPv4 or bracketed IPv6 address with a port, as
// net/http writes client addresses into its error log.
var clientAddr = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}:\d+\b|\[[0-9A-Fa-f:.%a-zA-Z]+\]:\d+`)

// redactingWriter receives net/http's error log ("http: TLS handshake error
// from 192.0.2.1:5678: EOF") and logs each message at warn level with client
// addresses removed.
type redactingWriter struct{ logger *slog.Logger }

func (w redactingWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	w.logger.Warn(clientAddr.ReplaceAllString(msg, "<client>"))
	return len(p), nil
}
