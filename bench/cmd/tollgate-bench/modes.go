package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/tollgate/tollgate/internal/fakeupstream"
)

// baseline runs a bare httputil.ReverseProxy from --listen to --target until
// ctx ends. It is what tollgate is compared with: the least any Go proxy
// must do. Its transport is tuned like a production proxy's (large idle
// pool, no compression) so the comparison is fair.
func baseline(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	target := fs.String("target", "", "upstream origin, e.g. http://127.0.0.1:9000")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: --target must be an absolute URL", errUsage)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// After copying Content-Length bytes the transport reads the
			// body once more to check for extra data; if the response
			// headers were already written, the server has closed the
			// inbound body, that read fails and the transport drops the
			// upstream connection mid-stream (golang/go#40747). Ending the
			// body at Content-Length avoids the extra read.
			if n := r.In.ContentLength; n > 0 {
				r.Out.Body = struct {
					io.Reader
					io.Closer
				}{io.LimitReader(r.In.Body, n), r.In.Body}
			}
		},
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			// As http.DefaultTransport: HTTP/2 to an HTTPS target
			// (--upstream-tls), which a custom DialContext turns off.
			ForceAttemptHTTP2: true,
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return serveUntilDone(ctx, *listen, rp, log)
}

// fake runs the fake upstream in-process; the tool uses it only when no
// tollgate binary is available for `tollgate fake-upstream`.
func fake(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	chunks := fs.Int("chunks", 8, "content chunks per streamed reply")
	chunkDelay := fs.Duration("chunk-delay", 0, "delay between streamed chunks")
	cert := fs.String("tls-cert", "", "serve HTTPS (and HTTP/2) with this PEM certificate")
	key := fs.String("tls-key", "", "PEM private key of --tls-cert")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	opts := fakeupstream.Options{Chunks: *chunks, ChunkDelay: *chunkDelay, NoRecord: true,
		TLSCertFile: *cert, TLSKeyFile: *key}
	if err := fakeupstream.ListenAndServe(ctx, *listen, opts, nil); err != nil {
		return fmt.Errorf("fake: %w", err)
	}
	return nil
}

// serveUntilDone serves h on addr until ctx ends, then shuts down with a
// short grace period for open streams.
func serveUntilDone(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
