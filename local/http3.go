package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/tickstream/tickstream/internal/clock"
)

// An http3Server serves the handler over HTTP/3 (-h3) on a UDP socket of
// the TCP listener's port, as browsers find it: from the Alt-Svc header of
// the HTTP/1.1 and HTTP/2 responses (advertise).
type http3Server struct {
	srv        *http3.Server
	conn       net.PacketConn
	endStreams context.CancelFunc
}

// newHTTP3Server returns the HTTP/3 server of h on conn. Its requests carry
// the clock of ctx (the tests'), and their contexts end when shutdown
// begins, so that open streams end on an event boundary as they do over
// TCP.
func newHTTP3Server(ctx context.Context, conn net.PacketConn, tlsConfig *tls.Config, h http.Handler, logger *slog.Logger) *http3Server {
	streams, endStreams := context.WithCancel(context.Background())
	now := clock.From(ctx)
	return &http3Server{
		conn:       conn,
		endStreams: endStreams,
		srv: &http3.Server{
			Handler:        h,
			Port:           conn.LocalAddr().(*net.UDPAddr).Port,
			TLSConfig:      http3.ConfigureTLSConfig(tlsConfig.Clone()),
			IdleTimeout:    idleTimeout,
			MaxHeaderBytes: maxHeaderBytes,
			Logger:         logger,
			ConnContext: func(ctx context.Context, _ *quic.Conn) context.Context {
				ctx, cancel := context.WithCancel(clock.NewContext(ctx, now))
				context.AfterFunc(streams, cancel)
				return ctx
			},
		},
	}
}

// advertise returns h with every response offering HTTP/3 on this server's
// port (Alt-Svc: h3=":port"), as Caddy and CDNs offer it.
func (s *http3Server) advertise(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.srv.SetQUICHeaders(w.Header()) //nolint:errcheck // fails only without a port, which the server has
		h.ServeHTTP(w, r)
	})
}

// serve serves until shutdown; it returns nil once shut down.
func (s *http3Server) serve() error {
	err := s.srv.Serve(s.conn)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve HTTP/3: %w", err)
}

// shutdown ends every open stream at its next event boundary, then waits
// for their responses to complete until ctx is done, when it closes every
// connection.
func (s *http3Server) shutdown(ctx context.Context) error {
	s.endStreams()
	defer s.conn.Close() //nolint:errcheck // the server may have closed it
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close() //nolint:errcheck // closing after a failed graceful shutdown
		return fmt.Errorf("HTTP/3: %w", err)
	}
	return nil
}
