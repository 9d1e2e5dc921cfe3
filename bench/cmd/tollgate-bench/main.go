// Command tollgate-bench measures what tollgate costs over a bare reverse
// proxy. In one bounded run it starts the fake upstream, a bare
// net/http/httputil.ReverseProxy and tollgate as separate processes, drives
// the same workloads at each (and at the fake directly) over loopback, and
// prints throughput, latency, added latency, CPU per request and memory,
// plus the ratios the gateway-core issue sets as targets.
//
//	go run ./bench/cmd/tollgate-bench [flags]
//
// The hidden modes "baseline" and "fake" are the same binary re-executed as
// the bare proxy and (when tollgate does not build) the fake upstream.
// See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-bench:", err)
		code := 1
		if errors.Is(err, flag.ErrHelp) {
			code = 0
		} else if errors.Is(err, errUsage) {
			code = 2
		}
		os.Exit(code)
	}
}

// errUsage marks bad command lines.
var errUsage = errors.New("usage")

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "baseline":
			return baseline(ctx, args[1:], stderr)
		case "fake":
			return fake(ctx, args[1:], stderr)
		case "soak":
			return soakCmd(ctx, args[1:], stdout, stderr)
		}
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return run(ctx, log, cfg, stdout)
}
