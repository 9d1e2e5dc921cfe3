// Command tollgate-dialects measures what the translated APIs cost: the CPU
// time tollgate spends per /v1/messages and per bridged /v1/responses
// request, next to a /v1/chat/completions request of the same size.
//
// It starts the fake upstream and tollgate as separate processes (tollgate
// pinned to a CPU of its own when taskset is there), then runs short closed
// loops in turn: the chat completion a Messages request becomes, the
// Messages request, the chat completion a Responses request becomes, the
// Responses request, and again for each round. Both sides of a pair make
// the same upstream request and get the same reply, so the difference is the
// translation. CPU per request is read from /proc/PID/stat, which stays
// meaningful on a shared machine; each ratio is the median of the per-round
// ratios.
//
//	go run ./bench/cmd/tollgate-dialects [--rounds 3] [--duration 3s] [--shapes small,agent] [--modes whole,stream]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/bench/load"
)

var errUsage = errors.New("usage")

type config struct {
	tollgate string
	rounds   int
	duration time.Duration
	warmup   time.Duration
	settle   time.Duration
	workers  int
	chunks   int
	shapes   []string
	modes    []string
	pin      bool
	jsonPath string
	verbose  bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tollgate-dialects:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("tollgate-dialects", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.tollgate, "tollgate", "", "tollgate binary (default: go build ./cmd/tollgate into a temp dir)")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every workload once")
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "length of one workload run")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured warm-up per API")
	fs.DurationVar(&c.settle, "settle", 500*time.Millisecond, "pause before each closing CPU sample (the ledger writer's work is charged too)")
	fs.IntVar(&c.workers, "workers", 8, "concurrent requests")
	fs.IntVar(&c.chunks, "chunks", 50, "reply chunks (X-Fake-Chunks): stream events and completion tokens")
	shapes := fs.String("shapes", "small,agent", "request shapes: small (one line), agent (Claude Code / Codex sized, ~25 KB)")
	modes := fs.String("modes", "whole,stream", "whole (non-stream) and/or stream")
	fs.BoolVar(&c.pin, "pin", runtime.NumCPU() >= 2, "pin tollgate to CPU 1, the load and the fake to CPU 0 (needs taskset)")
	fs.StringVar(&c.jsonPath, "json", "", "also write every result as JSON to this file")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %w", errUsage, err)
	}
	c.shapes, c.modes = strings.Split(*shapes, ","), strings.Split(*modes, ",")
	for _, m := range c.modes {
		if m != "whole" && m != "stream" {
			return c, fmt.Errorf("%w: unknown mode %q", errUsage, m)
		}
	}
	switch {
	case c.rounds < 1 || c.rounds > 50:
		return c, fmt.Errorf("%w: --rounds must be in [1, 50]", errUsage)
	case c.duration <= 0 || c.duration > 5*time.Minute:
		return c, fmt.Errorf("%w: --duration must be in (0, 5m]", errUsage)
	case c.workers < 1 || c.workers > 1024 || c.chunks < 1 || c.chunks > 10_000:
		return c, fmt.Errorf("%w: --workers must be in [1, 1024] and --chunks in [1, 10000]", errUsage)
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	dir, err := os.MkdirTemp("", "tollgate-dialects-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := c.tollgate
	if bin == "" {
		bin = filepath.Join(dir, "tollgate")
		log.Info("building tollgate", "out", bin)
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tollgate").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/tollgate (run from the module root, or pass --tollgate): %w\n%s", err, out)
		}
	}
	taskset := ""
	if c.pin {
		if taskset, err = exec.LookPath("taskset"); err != nil {
			log.Warn("taskset not found; not pinning CPUs")
			taskset = ""
		} else if err := load.PinSelf(ctx, taskset, 0); err != nil {
			return fmt.Errorf("pin to CPU 0: %w", err)
		} else {
			runtime.GOMAXPROCS(1)
		}
	}
	var procs []*load.Proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop(10 * time.Second) //nolint:errcheck // best effort at exit
		}
	}()
	start := func(pc load.ProcConfig, check func(string) func(context.Context) error, addr string) error {
		pc.Dir, pc.Taskset = dir, taskset
		p, err := load.StartProc(log, pc)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		return load.WaitReady(ctx, p, 30*time.Second, check(addr))
	}
	fakeAddr, err := load.FreeAddr()
	if err != nil {
		return err
	}
	if err := start(load.ProcConfig{Name: "fake", Path: bin, Args: []string{"fake-upstream", "--listen", fakeAddr}, CPU: 0}, load.TCPCheck, fakeAddr); err != nil {
		return fmt.Errorf("fake upstream: %w", err)
	}
	gwAddr, err := load.FreeAddr()
	if err != nil {
		return err
	}
	gw := load.ProcConfig{Name: "tollgate", Path: bin, Args: []string{"serve"}, CPU: 1,
		Scrub: []string{"TOLLGATE_", "TAOTOKEN_", "PORT="},
		Env: []string{"TAOTOKEN_BASE_URL=http://" + fakeAddr + "/v1", "TAOTOKEN_API_KEY=sk-bench", "TOLLGATE_AUTH=disabled",
			"TOLLGATE_DB=" + filepath.Join(dir, "bench.db"), "TOLLGATE_LOG_LEVEL=warn", "TOLLGATE_LISTEN=" + gwAddr}}
	healthz := func(a string) func(context.Context) error { return load.HTTPCheck("http://" + a + "/healthz") }
	if err := start(gw, healthz, gwAddr); err != nil {
		return fmt.Errorf("tollgate: %w", err)
	}
	target := load.Target{Name: "tollgate", BaseURL: "http://" + gwAddr + "/v1", PID: procs[len(procs)-1].PID()}
	results, err := measure(ctx, log, c, target)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tollgate-dialects: %d CPUs, pinned=%v, %d rounds of %v, %d workers, %d reply chunks\n\n",
		runtime.NumCPU(), taskset != "", c.rounds, c.duration, c.workers, c.chunks)
	writeTable(stdout, results)
	if c.jsonPath != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(c.jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", c.jsonPath, err)
		}
	}
	return nil
}

// run is one measured workload run.
type runResult struct {
	Mode, Shape, Workload string
	Round                 int
	load.Result
}

// measure warms up, then runs every workload once per round, interleaved,
// so a burst of load from elsewhere on the machine hits all of them alike.
func measure(ctx context.Context, log *slog.Logger, c config, t load.Target) ([]runResult, error) {
	hdr := http.Header{"X-Fake-Chunks": {fmt.Sprint(c.chunks)}, "X-Fake-Reply": {"text"}}
	var out []runResult
	for _, mode := range c.modes {
		stream := mode == "stream"
		ss, err := shapes(c.shapes, stream)
		if err != nil {
			return nil, err
		}
		kind, minEvents := load.ClosedLoop, 0
		if stream {
			kind, minEvents = load.Streams, c.chunks
		}
		for _, s := range ss {
			workloads := []struct {
				name string
				api  load.API
				body []byte
			}{
				{"chat (as messages)", load.APIChat, s.chatForMessages},
				{"messages", load.APIMessages, s.messages},
				{"chat (as responses)", load.APIChat, s.chatForResponses},
				{"responses", load.APIResponses, s.responses},
			}
			log.Info("shape", "mode", mode, "shape", s.name, "messages_bytes", len(s.messages), "chat_bytes", len(s.chatForMessages),
				"responses_bytes", len(s.responses), "chat_for_responses_bytes", len(s.chatForResponses))
			for _, w := range workloads {
				spec := load.Spec{Name: "warmup", Kind: kind, Workers: c.workers, Duration: c.warmup, Body: w.body, Header: hdr, MinEvents: minEvents}
				if _, err := load.RunAPI(ctx, log, load.Target{Name: t.Name, BaseURL: t.BaseURL}, spec, w.api); err != nil {
					return nil, fmt.Errorf("warm-up %s: %w", w.name, err)
				}
			}
			for round := range c.rounds {
				for _, w := range workloads {
					spec := load.Spec{Name: w.name, Kind: kind, Workers: c.workers, Duration: c.duration, Body: w.body,
						Header: hdr, MinEvents: minEvents, Settle: c.settle}
					r, err := load.RunAPI(ctx, log, t, spec, w.api)
					if err != nil {
						return nil, err
					}
					if r.Errors > 0 {
						return nil, fmt.Errorf("%s %s %s: %d errors, first: %s", mode, s.name, w.name, r.Errors, r.FirstError)
					}
					log.Info("run", "mode", mode, "shape", s.name, "workload", w.name, "round", round, "rps", int(r.RPS), "cpu_per_req", r.CPUPerRequest)
					out = append(out, runResult{Mode: mode, Shape: s.name, Workload: w.name, Round: round, Result: r})
				}
			}
		}
	}
	return out, nil
}
