// Command tollgate is an OpenAI-compatible LLM API gateway.
//
//	tollgate [serve] [flags]        run the gateway (default)
//	tollgate fake-upstream          run the OpenAI-compatible fake upstream
//	tollgate keys ...               manage gateway keys
//	tollgate usage | logs           read the usage ledger
//	tollgate migrate                apply database migrations
//	tollgate version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// env is the process environment, passed in so tests can supply their own.
type env struct {
	lookup func(string) (string, bool)
	// dotenv is the .env file to read ("" = ".env" in the working directory).
	dotenv string
	// ready, when set, is told the listen address once the server accepts.
	ready func(addr string)
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code through the command functions, so
// that os.Exit is called in one place.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], env{lookup: os.LookupEnv}, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		code := 1
		if ee, ok := errors.AsType[*exitError](err); ok {
			code = ee.code
		}
		fmt.Fprintln(os.Stderr, "tollgate:", err)
		os.Exit(code)
	}
}

// run dispatches a subcommand. It is main without os.Exit, for tests.
func run(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, e, stdout, stderr)
	case "fake-upstream":
		return fakeUpstream(ctx, args, stdout)
	case "keys":
		return keysCmd(ctx, args, e, stdout, stderr)
	case "usage":
		return usageCmd(ctx, args, e, stdout, stderr)
	case "logs":
		return logsCmd(ctx, args, e, stdout, stderr)
	case "prices":
		return pricesCmd(ctx, args, e, stdout, stderr)
	case "migrate":
		return migrateCmd(ctx, args, e, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "tollgate", version)
		return nil
	case "help":
		fmt.Fprintln(stdout, helpText)
		return nil
	default:
		return usageErr("unknown command %q (try: tollgate help)", cmd)
	}
}

const helpText = `tollgate — an OpenAI-compatible LLM API gateway

Usage:
  tollgate [serve] [--config FILE] [--listen ADDR] [--demo]   run the gateway
  tollgate fake-upstream --listen 127.0.0.1:9000              run the fake upstream
  tollgate keys create|list|revoke|rotate                      manage gateway keys
  tollgate usage --since 24h --by model                        usage table
  tollgate logs [--tail] [--limit N]                           recent requests
  tollgate prices [--model TEXT]                               prices and their sources
  tollgate migrate                                             apply migrations
  tollgate version

Configuration: flags > environment > YAML (--config or TOLLGATE_CONFIG) > .env > defaults.
See README.md for every setting.`
