package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/bench/load"
)

// config is the parsed command line.
type config struct {
	tollgate     string   // prebuilt binary; "" = build ./cmd/tollgate
	tollgateEnv  []string // extra KEY=VALUE for tollgate
	targets      []string
	workloads    []string
	rounds       int
	interleave   int // >0: targets side by side, each workload in this many turns
	duration     time.Duration
	bodyDuration time.Duration
	warmup       time.Duration
	settle       time.Duration
	rate         float64
	highRate     float64
	auth         bool // create a gateway key and send it; false: TOLLGATE_AUTH=disabled
	workers      int
	streamers    int
	streamChunks int
	streamDelay  time.Duration
	bodySize     int
	bodyWorkers  int
	idleStreams  int
	idleDelay    time.Duration
	idleHold     time.Duration
	freshIdle    bool
	upstreamTLS  bool // the fake upstream speaks HTTPS (and HTTP/2)
	pin          bool
	jsonPath     string
	keep         bool
	verbose      bool
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("tollgate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.tollgate, "tollgate", "", "tollgate binary to test (default: go build ./cmd/tollgate into a temp dir)")
	fs.Var((*stringList)(&c.tollgateEnv), "tollgate-env", "extra KEY=VALUE environment for tollgate (repeatable)")
	targets := fs.String("targets", "direct,baseline,tollgate", "targets to run, in order")
	workloads := fs.String("workloads", "open,open-high,saturation,stream,body200k,idle", "workloads to run, in order")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of the open, saturation and stream workloads")
	fs.DurationVar(&c.bodyDuration, "body-duration", 5*time.Second, "length of the body200k workload")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "closed-loop warm-up per target, not measured")
	fs.DurationVar(&c.settle, "settle", 500*time.Millisecond, "pause before each closing CPU sample")
	fs.Float64Var(&c.rate, "rate", 1000, "open-loop request rate (req/s) of the open workload")
	fs.Float64Var(&c.highRate, "high-rate", 2000, "open-loop request rate (req/s) of the open-high workload")
	fs.BoolVar(&c.auth, "auth", true, "run tollgate as a new user does: create a gateway key (tollgate keys create) and send it; false starts it with TOLLGATE_AUTH=disabled")
	fs.IntVar(&c.workers, "workers", 64, "saturation workers")
	fs.IntVar(&c.streamers, "streams", 100, "concurrent streams in the stream workload")
	fs.IntVar(&c.streamChunks, "stream-chunks", 50, "chunks per stream (X-Fake-Chunks)")
	fs.DurationVar(&c.streamDelay, "stream-chunk-delay", 2*time.Millisecond, "delay between stream chunks")
	fs.IntVar(&c.bodySize, "body-size", 200<<10, "request body size in bytes for body200k")
	fs.IntVar(&c.bodyWorkers, "body-workers", 16, "body200k workers")
	fs.IntVar(&c.idleStreams, "idle-streams", 1000, "streams held open in the idle workload")
	fs.DurationVar(&c.idleDelay, "idle-chunk-delay", 5*time.Second, "chunk delay that keeps idle streams open")
	fs.DurationVar(&c.idleHold, "idle-hold", time.Second, "how long idle streams are held before memory is sampled")
	fs.BoolVar(&c.freshIdle, "fresh-idle", true, "restart the proxy before the idle workload, so its RSS is not inflated by earlier workloads")
	fs.BoolVar(&c.upstreamTLS, "upstream-tls", false, "serve the fake upstream over HTTPS with a throwaway self-signed certificate the proxies trust (SSL_CERT_FILE), so they speak HTTP/2 to it as to an HTTPS upstream such as the default one; not with the direct target")
	fs.BoolVar(&c.pin, "pin", runtime.NumCPU() >= 2, "pin the proxy under test to CPU 1 and the load tool and fake to CPU 0 (needs taskset)")
	fs.StringVar(&c.jsonPath, "json", "", "also write results as JSON to this file")
	fs.IntVar(&c.interleave, "interleave", 0, "run the targets side by side: all started at once, each workload in this many turns per target (each 1/N of its length, the order alternating), so the machine's drift falls on every target alike; latencies and CPU are summed over the turns; the idle workload is not run")
	fs.IntVar(&c.rounds, "rounds", 1, "run every target this many times (1-9), in alternating order, and judge the checks by their medians")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir (process logs, tollgate database)")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
	quick := fs.Bool("quick", false, "short run: 2s workloads, 1s body workload, 200 idle streams")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return c, err
		}
		return c, fmt.Errorf("%w: %w", errUsage, err)
	}
	if *quick {
		c.duration, c.bodyDuration, c.idleStreams, c.warmup = 2*time.Second, time.Second, 200, 500*time.Millisecond
	}
	c.targets, c.workloads = splitList(*targets), splitList(*workloads)
	for _, t := range c.targets {
		if t != load.Direct && t != load.Baseline && t != load.Tollgate {
			return c, fmt.Errorf("%w: unknown target %q", errUsage, t)
		}
	}
	for _, w := range c.workloads {
		if _, ok := specFor(c, w); !ok {
			return c, fmt.Errorf("%w: unknown workload %q", errUsage, w)
		}
	}
	if c.upstreamTLS && slices.Contains(c.targets, load.Direct) {
		return c, fmt.Errorf("%w: --upstream-tls needs --targets without direct (the load tool does not trust the certificate)", errUsage)
	}
	if c.rounds < 1 || c.rounds > 9 {
		return c, fmt.Errorf("%w: --rounds must be in [1, 9]", errUsage)
	}
	if c.interleave < 0 || c.interleave > 50 {
		return c, fmt.Errorf("%w: --interleave must be in [0, 50]", errUsage)
	}
	if c.duration <= 0 || c.duration > 10*time.Minute || c.bodyDuration <= 0 || c.bodyDuration > 10*time.Minute {
		return c, fmt.Errorf("%w: durations must be in (0, 10m]", errUsage)
	}
	if c.rate <= 0 || c.rate > 100_000 || c.highRate <= 0 || c.highRate > 100_000 || c.idleStreams < 1 || c.idleStreams > 10_000 {
		return c, fmt.Errorf("%w: --rate and --high-rate must be in (0, 100000] and --idle-streams in [1, 10000]", errUsage)
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// chatBody is a chat request with a user message of n bytes (at least a
// short sentence).
func chatBody(stream bool, n int) []byte {
	msg := "Say hello to the load test."
	if n > len(msg) {
		msg = strings.Repeat("lorem ipsum dolor sit amet ", n/27+1)[:n]
	}
	b, _ := json.Marshal(map[string]any{
		"model":    "gpt-4o-mini",
		"stream":   stream,
		"messages": []map[string]string{{"role": "user", "content": msg}},
	})
	return b
}

// specFor returns the workload named w.
func specFor(c config, w string) (load.Spec, bool) {
	streamHdr := func(chunks int, delay time.Duration) http.Header {
		return http.Header{"X-Fake-Chunks": {fmt.Sprint(chunks)}, "X-Fake-Chunk-Delay": {delay.String()}}
	}
	s := load.Spec{Name: w, Settle: c.settle}
	switch w {
	case load.WorkloadOpen:
		s.Kind, s.Rate, s.Duration, s.Body = load.OpenLoop, c.rate, c.duration, chatBody(false, 0)
	case load.WorkloadOpenHigh:
		s.Kind, s.Rate, s.Duration, s.Body = load.OpenLoop, c.highRate, c.duration, chatBody(false, 0)
	case load.WorkloadSaturation:
		s.Kind, s.Workers, s.Duration, s.Body = load.ClosedLoop, c.workers, c.duration, chatBody(false, 0)
	case load.WorkloadStream:
		s.Kind, s.Workers, s.Duration, s.Body = load.Streams, c.streamers, c.duration, chatBody(true, 0)
		s.Header, s.MinEvents = streamHdr(c.streamChunks, c.streamDelay), c.streamChunks
	case load.WorkloadBigBody:
		s.Kind, s.Workers, s.Duration, s.Body = load.ClosedLoop, c.bodyWorkers, c.bodyDuration, chatBody(false, c.bodySize)
	case load.WorkloadIdle:
		s.Kind, s.Workers, s.Body = load.IdleStreams, c.idleStreams, chatBody(true, 0)
		s.Header, s.Hold, s.Timeout = streamHdr(3, c.idleDelay), c.idleHold, c.idleHold+30*time.Second
	default:
		return s, false
	}
	return s, true
}

// run is one full benchmark: processes up, workloads per target, report.
func run(ctx context.Context, log *slog.Logger, c config, stdout io.Writer) error {
	started := time.Now()
	dir, err := os.MkdirTemp("", "tollgate-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if c.keep {
		log.Info("keeping temp dir", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	taskset := ""
	if c.pin {
		if taskset, err = exec.LookPath("taskset"); err != nil {
			log.Warn("taskset not found; not pinning CPUs")
			taskset = ""
		} else if err := load.PinSelf(ctx, taskset, loadCPU); err != nil {
			return fmt.Errorf("pin load tool to CPU %d: %w", loadCPU, err)
		} else {
			// Go sized GOMAXPROCS before the pin; match it to the one CPU
			// now allowed, as the pinned children get at exec.
			runtime.GOMAXPROCS(1)
		}
	}
	h := &harness{log: log, dir: dir, self: self, taskset: taskset}
	defer h.stopAll()

	if slices.Contains(c.targets, load.Tollgate) {
		if h.tollgate, err = tollgateBinary(ctx, log, c.tollgate, dir); err != nil {
			log.Error("tollgate unavailable; running without it", "err", err)
			c.targets = remove(c.targets, load.Tollgate)
		} else if c.auth {
			// The default configuration a new user runs: auth on, one key
			// with the server's default limits, in the database tollgate
			// then serves from.
			if h.key, err = createKey(ctx, h.tollgate, dir, h.db(), "bench"); err != nil {
				return err
			}
		}
	}
	fakeAddr, err := h.startFake(ctx, c.upstreamTLS)
	if err != nil {
		return err
	}
	var (
		results     []load.Result
		roundRatios [][]load.Ratio
	)
	for round := 1; round <= c.rounds; round++ {
		rs, err := h.runRound(ctx, c, round, fakeAddr)
		if err != nil {
			return err
		}
		ratios := load.Ratios(rs)
		results, roundRatios = append(results, rs...), append(roundRatios, ratios)
		if c.rounds > 1 {
			fmt.Fprintf(stdout, "round %d of %d\n", round, c.rounds)
		}
		fmt.Fprintf(stdout, "tollgate-bench: %d CPUs, pinned=%v, clock ticks %d/s, %s\n\n", runtime.NumCPU(), taskset != "", load.ClockTicks, time.Since(started).Round(time.Second))
		if err := load.WriteTable(stdout, rs); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		if err := load.WriteRatios(stdout, ratios); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
	}
	ratios := roundRatios[0]
	if c.rounds > 1 {
		ratios = load.MedianRatios(roundRatios)
		fmt.Fprintf(stdout, "median of %d rounds (targets in alternating order)\n", c.rounds)
		if err := load.WriteRatios(stdout, ratios); err != nil {
			return err
		}
	} else {
		roundRatios = nil
	}
	if c.jsonPath != "" {
		rep := load.Report{Started: started, Config: configMap(c, taskset != ""), Results: results, Ratios: ratios, RoundRatios: roundRatios}
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("marshal report: %w", err)
		}
		if err := os.WriteFile(c.jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// roundOrder is the order targets run in round: as given in odd rounds and
// reversed in even ones, so that a slow drift of the machine does not
// always favour the same target.
func roundOrder(targets []string, round int) []string {
	out := slices.Clone(targets)
	if round%2 == 0 {
		slices.Reverse(out)
	}
	return out
}

// runRound runs every target once, in roundOrder. Its results are grouped
// by workload.
func (h *harness) runRound(ctx context.Context, c config, round int, fakeAddr string) ([]load.Result, error) {
	results, err := h.runTargets(ctx, c, round, fakeAddr)
	if err != nil {
		return nil, err
	}
	for i := range results {
		if c.rounds > 1 {
			results[i].Round = round
		}
	}
	// Group rows by workload, keeping the configured target order within
	// each, so tables of odd and even rounds read alike.
	slices.SortStableFunc(results, func(a, b load.Result) int {
		if d := slices.Index(c.workloads, a.Workload) - slices.Index(c.workloads, b.Workload); d != 0 {
			return d
		}
		return slices.Index(c.targets, a.Target) - slices.Index(c.targets, b.Target)
	})
	load.Compare(results)
	return results, nil
}

// runTargets runs every target once: one after another, in roundOrder, or
// side by side with --interleave.
func (h *harness) runTargets(ctx context.Context, c config, round int, fakeAddr string) ([]load.Result, error) {
	if c.interleave > 0 {
		rs, err := h.runInterleaved(ctx, c, round, fakeAddr)
		if err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted: %w", ctx.Err())
		}
		return rs, err
	}
	var results []load.Result
	for _, name := range roundOrder(c.targets, round) {
		rs, err := h.runTarget(ctx, c, name, fakeAddr)
		results = append(results, rs...)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted: %w", ctx.Err())
			}
			h.log.Error("target failed", "target", name, "round", round, "err", err)
		}
	}
	return results, nil
}

func configMap(c config, pinned bool) map[string]any {
	return map[string]any{
		"targets": c.targets, "workloads": c.workloads, "duration": c.duration.String(),
		"body_duration": c.bodyDuration.String(), "rate": c.rate, "workers": c.workers,
		"streams": c.streamers, "stream_chunks": c.streamChunks, "stream_chunk_delay": c.streamDelay.String(),
		"high_rate": c.highRate, "auth": c.auth, "body_size": c.bodySize, "body_workers": c.bodyWorkers, "idle_streams": c.idleStreams,
		"idle_chunk_delay": c.idleDelay.String(), "fresh_idle": c.freshIdle, "pinned": pinned, "cpus": runtime.NumCPU(),
		"clock_ticks": load.ClockTicks, "rounds": c.rounds, "interleave": c.interleave,
	}
}

// tollgateBinary returns path if set, else builds ./cmd/tollgate of the
// module the working directory is in.
func tollgateBinary(ctx context.Context, log *slog.Logger, path, dir string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("--tollgate: %w", err)
		}
		return path, nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the tollgate module; pass --tollgate PATH")
	}
	bin := filepath.Join(dir, "tollgate")
	log.Info("building tollgate", "out", bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tollgate")
	cmd.Dir = filepath.Dir(gomod)
	// As released: without cgo, so no libc arenas or thread stacks of its own.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tollgate: %w\n%s", err, out)
	}
	return bin, nil
}

func remove(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}
