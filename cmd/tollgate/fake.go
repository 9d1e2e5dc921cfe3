package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/internal/fakeupstream"
)

// fakeUpstream runs the OpenAI-compatible fake on its own, for load tests and
// trying SDKs without an account.
func fakeUpstream(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fake-upstream", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on")
	chunks := fs.Int("chunks", 8, "content chunks per streamed reply")
	chunkDelay := fs.Duration("chunk-delay", 0, "delay between streamed chunks")
	cert := fs.String("tls-cert", "", "serve HTTPS (and HTTP/2) with this PEM certificate (needs --tls-key)")
	key := fs.String("tls-key", "", "PEM private key of --tls-cert")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if (*cert == "") != (*key == "") {
		return usageErr("--tls-cert and --tls-key go together")
	}
	opts := fakeupstream.Options{Chunks: *chunks, ChunkDelay: *chunkDelay, NoRecord: true,
		TLSCertFile: *cert, TLSKeyFile: *key}
	scheme := "http"
	if *cert != "" {
		scheme = "https"
	}
	return fakeupstream.ListenAndServe(ctx, *listen, opts, func(addr string) {
		fmt.Fprintf(stdout, "fake upstream listening on %s://%s/v1\n", scheme, addr)
	})
}

// newFakeServer wraps the fake in an http.Server with the same header bounds
// as the gateway.
func newFakeServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 1 << 20}
}
