package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/joho/godotenv"

	"github.com/ratebill/platform/shared/config"
	"github.com/ratebill/platform/shared/deps"
	"github.com/ratebill/platform/shared/httpapi"
	"github.com/ratebill/platform/shared/telemetry"
)

// ShutdownGrace bounds the drain on SIGTERM; Cloud Run allows 10 s.
const ShutdownGrace = 8 * time.Second

// Timeouts bound how long one client may hold a connection. The
// defaults leave a metered request (milliseconds) ample room and deny a
// slow client (slowloris on headers or body) the server's resources.
type Timeouts struct {
	ReadHeader time.Duration // the request line and headers
	Read       time.Duration // the whole request, body included
	Write      time.Duration // from the end of the headers to the end of the response
	Idle       time.Duration // a keep-alive connection between requests
}

// DefaultTimeouts are the timeouts of every server the platform runs,
// unless the configuration sets others (TimeoutsOf).
var DefaultTimeouts = TimeoutsOf(config.Defaults())

// TimeoutsOf returns the server timeouts cfg sets (HTTP_*_TIMEOUT).
func TimeoutsOf(cfg config.Config) Timeouts {
	return Timeouts{ReadHeader: cfg.HTTPReadHeaderTimeout, Read: cfg.HTTPReadTimeout, Write: cfg.HTTPWriteTimeout, Idle: cfg.HTTPIdleTimeout}
}

// MaxHeaderBytes bounds the request line and headers (Go's default is
// 1 MiB; an API key, a trace header and a request id need far less).
const MaxHeaderBytes = 32 << 10

// NewServer returns an http.Server for h with the timeouts t and the
// header limit. A request with a Transfer-Encoding (a chunked body) is
// the last of its connection (see closeAfterChunked).
//
// Go's HTTP layer answers some malformed requests itself, in plain text
// with Connection: close, before h runs (observed with go1.26 and pinned
// by TestGoRejectsMalformedRequests): 400 for a malformed request line or
// header, a missing Host, or conflicting Content-Lengths; 431 for a head
// over MaxHeaderBytes; 501 for a Transfer-Encoding other than a single
// "chunked" (e.g. gzip); 505 for a major version other than 1 (HTTP/2.0
// in an HTTP/1 request line; HTTP/1.2 is served as 1.1). Serve serves on
// Listener(ln), which turns those into problem+json answers, 501 and 505
// into 400.
func NewServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{
		Handler:           closeAfterChunked(h),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
}

// closeAfterChunked closes the connection after answering any request
// whose body is framed by Transfer-Encoding. RFC 9112 section 6.3 says a
// server MUST close the connection after a request that carries both
// Transfer-Encoding and Content-Length (a request smuggling attempt: a
// front proxy that framed it by Content-Length sees the rest of the body
// as a second request); net/http frames it by Transfer-Encoding, as it
// should, but keeps the connection and serves whatever follows. It also
// deletes the Content-Length before a handler could see it, so the
// handler closes after every chunked request: clients of this API send
// small bodies with a Content-Length, and a chunked upload costs only a
// new connection.
func closeAfterChunked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// Setup prepares a function process: it reads .env when present (local
// runs), loads the configuration from the environment and installs the
// Cloud Logging JSON logger as the default. A bad variable exits with
// status 2 and one line naming it.
func Setup() (config.Config, *slog.Logger) {
	if err := godotenv.Load(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(os.Stderr, ".env: %v\n", err)
		os.Exit(2)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "configuration: %v\n", err)
		os.Exit(2)
	}
	logger := httpapi.NewLogger(os.Stdout, cfg.LogLevel)
	slog.SetDefault(logger)
	return cfg, logger
}

// Run serves h on $HOST:$PORT (port 8080 by default) until SIGTERM or
// SIGINT, then stops accepting, lets in-flight requests finish
// (http.Server.Shutdown), and closes d, flushing pending usage, all
// within ShutdownGrace. It returns a non-nil error when serving failed
// or the drain did not complete.
func Run(h http.Handler, d *deps.Deps) error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("HOST"), port))
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d.Logger.Info("serving", "port", port)
	return Serve(ctx, ln, NewServer(h, TimeoutsOf(d.Config)), d)
}

// Serve serves srv on ln until ctx ends, then drains as Run describes.
func Serve(ctx context.Context, ln net.Listener, srv *http.Server, d *deps.Deps) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(Listener(ln)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	d.Logger.Info("shutting down: draining requests and flushing usage")
	dctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	var errs []error
	if err := srv.Shutdown(dctx); err != nil {
		errs = append(errs, fmt.Errorf("draining requests: %w", err))
	}
	if err := d.Close(dctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.Logger.Info("shutdown complete")
	return nil
}

// Main is a function's whole process: Setup, the dependencies, the
// handler that build wires on them, and Run. Errors exit non-zero.
func Main(build func(*deps.Deps) (http.Handler, error)) {
	cfg, logger := Setup()
	tel, err := telemetry.Setup(context.Background(), cfg, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "telemetry: %v\n", err)
		os.Exit(2)
	}
	if u := tel.MetricsURL(); u != "" {
		logger.Info("serving metrics", "url", u)
	}
	d, err := deps.New(cfg, logger, deps.WithTelemetry(tel))
	if err != nil {
		fmt.Fprintf(os.Stderr, "configuration: %v\n", err)
		os.Exit(2)
	}
	h, err := build(d)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wiring: %v\n", err)
		os.Exit(2)
	}
	if err := Run(h, d); err != nil {
		logger.Error("exiting", "error", err.Error())
		os.Exit(1)
	}
}
