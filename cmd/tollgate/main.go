// Command tollgate is an OpenAI-compatible LLM API gateway.
//
//	tollgate [serve] [flags]        run the gateway (default)
//	tollgate fake-upstream          run the OpenAI-compatible fake upstream
//	tollgate keys ...               manage gateway keys
//	tollgate usage | logs           read the usage ledger
//	tollgate migrate                apply database migrations
//	tollgate config check           validate and print the configuration
//	tollgate backup FILE            online copy of the SQLite database
//	tollgate healthcheck            probe /healthz (the image's HEALTHCHECK)
//	tollgate version
package main

import (
	"context"
	"errors"
	"flag"
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
	// cgroupRoot is where serve looks for a container memory limit to
	// derive a Go memory limit from ("" = don't: tests share one process).
	cgroupRoot string
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// revision and commitTime may be set the same way (deploy/release.sh does)
// for builds the go command cannot stamp (-buildvcs=false, a source tree
// without .git); the stamped build info wins when present.
var revision, commitTime string

// exitError carries a process exit code through the command functions, so
// that os.Exit is called in one place.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr is a command-line mistake (exit status 2). A flag.ErrHelp among
// args (a FlagSet given -h) is not a mistake: the usage was printed, and the
// command succeeds (exit status 0).
func usageErr(format string, args ...any) error {
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, flag.ErrHelp) {
			return &exitError{code: 0, err: flag.ErrHelp}
		}
	}
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], env{lookup: os.LookupEnv, cgroupRoot: "/sys/fs/cgroup"}, os.Stdout, os.Stderr)
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
	err := dispatch(ctx, args, e, stdout, stderr)
	if ee, ok := errors.AsType[*exitError](err); ok && ee.code == 0 {
		return nil // --help: the flag package printed the usage
	}
	return err
}

func dispatch(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			fmt.Fprintln(stdout, helpText)
			return nil
		case "-version", "--version":
			fmt.Fprintln(stdout, versionText())
			return nil
		}
	}
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
	case "config":
		return configCmd(ctx, args, e, stdout, stderr)
	case "backup":
		return backupCmd(ctx, args, e, stdout, stderr)
	case "healthcheck":
		return healthcheckCmd(ctx, args, e, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionText())
		return nil
	case "ledger-writer":
		return ledgerWriterCmd(ctx, args, os.Stdin, stdout, stderr)
	case "help":
		if len(args) > 0 && args[0] != "help" { // "help keys" is "keys --help"
			return run(ctx, []string{args[0], "--help"}, e, stdout, stderr)
		}
		fmt.Fprintln(stdout, helpText)
		return nil
	default:
		return usageErr("unknown command %q (try: tollgate --help)", cmd)
	}
}

// subcommands are the commands helpText lists; tests run each with --help.
var subcommands = []string{
	"serve", "fake-upstream", "keys", "usage", "logs", "prices", "migrate",
	"config", "backup", "healthcheck", "version", "help",
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

const helpText = `tollgate — an OpenAI-compatible LLM API gateway

Usage:
  tollgate serve [--config FILE] [--listen ADDR] [--demo]     run the gateway (the default command)
  tollgate fake-upstream --listen 127.0.0.1:9000              run the fake upstream
  tollgate keys create|list|revoke|rotate                      manage gateway keys
  tollgate usage --since 24h --by model                        usage table
  tollgate logs [--tail] [--limit N]                           recent requests
  tollgate prices [--model TEXT]                               prices and their sources
  tollgate migrate                                             apply migrations
  tollgate config check [--config FILE] [--probe]              validate and print the config, secrets masked
  tollgate backup FILE                                         online copy of the SQLite database
  tollgate healthcheck [--url URL]                             GET /healthz; exit 0 when healthy
  tollgate version | --version                                 version, VCS revision and time
  tollgate help [COMMAND] | --help                             this text, or a command's help

Every command takes --help. Configuration: flags > environment > YAML
(--config or TOLLGATE_CONFIG) > .env > defaults. See README.md for every setting.`
