package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/bench/load"
)

// soakConfig is the soak mode's command line.
type soakConfig struct {
	duration     time.Duration
	rate         float64
	deadline     time.Duration // per request, client side
	maxInFlight  int
	streamChunks int
	streamDelay  time.Duration

	pgOutage, redisOutage time.Duration
	pgAt, redisAt         float64 // fraction of the run at which each outage starts
	hold                  bool    // relays hold new connections during a cut instead of refusing them

	drainStreams int           // long streams open at SIGTERM
	drainTimeout time.Duration // TOLLGATE_DRAIN_TIMEOUT
	drainShort   time.Duration // length of the drain streams that end within the drain
	drainLong    time.Duration // length of those that outlast it

	pgURL, redisURL string
	tollgate        string
	jsonPath        string
	keep, verbose   bool
}

func parseSoakFlags(args []string, stderr io.Writer) (soakConfig, error) {
	var c soakConfig
	fs := flag.NewFlagSet("tollgate-bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "how long load is sent")
	fs.Float64Var(&c.rate, "rate", 1000, "open-loop request rate (req/s)")
	fs.DurationVar(&c.deadline, "deadline", 30*time.Second, "client deadline of each request")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 10000, "requests outstanding at most; a send beyond it is counted, not made")
	fs.IntVar(&c.streamChunks, "stream-chunks", 20, "chunks per healthy stream (X-Fake-Chunks)")
	fs.DurationVar(&c.streamDelay, "stream-chunk-delay", 5*time.Millisecond, "delay between healthy stream chunks")
	fs.DurationVar(&c.pgOutage, "pg-outage", 30*time.Second, "PostgreSQL outage length (0: none)")
	fs.DurationVar(&c.redisOutage, "redis-outage", 30*time.Second, "Redis outage length (0: none)")
	fs.Float64Var(&c.pgAt, "pg-at", 0.3, "PostgreSQL outage start, as a fraction of -duration")
	fs.Float64Var(&c.redisAt, "redis-at", 0.6, "Redis outage start, as a fraction of -duration")
	fs.BoolVar(&c.hold, "hold", false, "during an outage hold new connections until it ends (a partition) instead of refusing them (a server down)")
	fs.IntVar(&c.drainStreams, "drain-streams", 20, "streams open when SIGTERM is sent (half end within the drain, half outlast it)")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 10*time.Second, "tollgate's TOLLGATE_DRAIN_TIMEOUT")
	fs.DurationVar(&c.drainShort, "drain-short", 4*time.Second, "length of the drain streams that end within the drain")
	fs.DurationVar(&c.drainLong, "drain-long", 30*time.Second, "length of the drain streams that outlast it")
	fs.StringVar(&c.pgURL, "pg", envOr("TOLLGATE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL base URL (a fresh schema is created in it)")
	fs.StringVar(&c.redisURL, "redis", envOr("TOLLGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL")
	fs.StringVar(&c.tollgate, "tollgate", "", "tollgate binary (default: go build ./cmd/tollgate into a temp dir)")
	fs.StringVar(&c.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp dir (logs) and the PostgreSQL schema")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %w", errUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	case c.duration <= 0 || c.duration > 2*time.Hour:
		return c, fmt.Errorf("%w: -duration must be in (0, 2h]", errUsage)
	case c.rate <= 0 || c.rate > 20_000 || c.rate*c.duration.Seconds() > 20_000_000:
		return c, fmt.Errorf("%w: -rate must be in (0, 20000] and rate × duration at most 20M requests", errUsage)
	case c.deadline <= 0 || c.deadline > 10*time.Minute || c.maxInFlight < 1 || c.maxInFlight > 100_000:
		return c, fmt.Errorf("%w: -deadline must be in (0, 10m] and -max-in-flight in [1, 100000]", errUsage)
	case c.pgOutage < 0 || c.redisOutage < 0 || c.pgAt < 0 || c.pgAt > 1 || c.redisAt < 0 || c.redisAt > 1:
		return c, fmt.Errorf("%w: outages must not be negative and start within the run (-pg-at, -redis-at in [0, 1])", errUsage)
	case c.drainStreams < 0 || c.drainStreams > 1000 || c.drainTimeout <= 0 || c.drainLong > 10*time.Minute:
		return c, fmt.Errorf("%w: -drain-streams in [0, 1000], -drain-timeout > 0, -drain-long at most 10m", errUsage)
	case c.streamChunks < 1 || c.streamChunks > 10_000:
		return c, fmt.Errorf("%w: -stream-chunks in [1, 10000]", errUsage)
	}
	return c, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// soakCmd is `tollgate-bench soak`: it runs the soak, prints the report and
// fails when a target is missed.
func soakCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseSoakFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	rep, err := runSoak(ctx, log, c)
	if err != nil {
		return err
	}
	rep.write(stdout)
	if c.jsonPath != "" {
		if err := rep.writeJSON(c.jsonPath); err != nil {
			return err
		}
	}
	if failed := rep.failed(); failed > 0 {
		return fmt.Errorf("soak: %d of %d targets failed", failed, len(rep.Targets))
	}
	return nil
}

// soakEnv is what runSoak sets up before the load: the processes, relays,
// database schema and the gateway key.
type soakEnv struct {
	dir          string
	runID        string
	schema       string
	directDB     string // the schema, reached directly (for counting)
	pgRelay      *load.Relay
	redisRelay   *load.Relay
	gw           *gateway
	key          string
	h            *harness
	cleanupFuncs []func()
}

func (e *soakEnv) cleanup() {
	for i := len(e.cleanupFuncs) - 1; i >= 0; i-- {
		e.cleanupFuncs[i]()
	}
}

// runSoak sets everything up, runs the load with its outages, stops the
// gateway with streams in flight and counts the ledger.
func runSoak(ctx context.Context, log *slog.Logger, c soakConfig) (*soakReport, error) {
	e := &soakEnv{runID: strings.ToLower(rand.Text()[:8])}
	defer e.cleanup()
	if err := e.setup(ctx, log, c); err != nil {
		return nil, err
	}
	rep := &soakReport{Config: soakConfigMap(c), Started: time.Now()}
	t := e.drive(ctx, log, c, rep)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	e.drain(ctx, log, c, t, rep)
	if err := e.countLedger(ctx, t, rep); err != nil {
		return nil, err
	}
	rep.Relays = map[string]load.RelayStats{"postgres": e.pgRelay.Stats(), "redis": e.redisRelay.Stats()}
	rep.fill(c, t)
	return rep, nil
}

func (e *soakEnv) setup(ctx context.Context, log *slog.Logger, c soakConfig) error {
	dir, err := os.MkdirTemp("", "tollgate-soak-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	e.dir = dir
	if c.keep {
		log.Info("keeping temp dir", "dir", dir)
	} else {
		e.cleanupFuncs = append(e.cleanupFuncs, func() { os.RemoveAll(dir) })
	}
	e.h = &harness{log: log, dir: dir}
	e.cleanupFuncs = append(e.cleanupFuncs, e.h.stopAll)
	if e.h.tollgate, err = tollgateBinary(ctx, log, c.tollgate, dir); err != nil {
		return err
	}
	if err := e.setupDB(ctx, log, c); err != nil {
		return err
	}
	if err := e.setupRedis(c); err != nil {
		return err
	}
	if e.key, err = createKey(ctx, e.h.tollgate, dir, e.directDB, "soak",
		// Limits far above the load: every request consults the limiter
		// (Redis) and none is refused by it.
		"--rpm", "1000000000", "--tpm", "2000000000", "--max-parallel", "1000000"); err != nil {
		return err
	}
	fakeAddr, err := e.h.startFake(ctx, false)
	if err != nil {
		return err
	}
	e.gw, err = startGateway(ctx, log, gatewayConfig{
		bin: e.h.tollgate, dir: dir, fake: fakeAddr, drain: c.drainTimeout,
		db:    withURL(c.pgURL, e.pgRelay.Addr(), "search_path", e.schema),
		redis: withURL(c.redisURL, e.redisRelay.Addr(), "", ""),
	})
	if err != nil {
		return err
	}
	e.cleanupFuncs = append(e.cleanupFuncs, e.gw.kill)
	log.Info("soak ready", "gateway", e.gw.addr, "pid", e.gw.pid(), "schema", e.schema,
		"pg_relay", e.pgRelay.Addr(), "redis_relay", e.redisRelay.Addr())
	return nil
}

// setupDB creates a fresh schema and a relay in front of PostgreSQL.
func (e *soakEnv) setupDB(ctx context.Context, log *slog.Logger, c soakConfig) error {
	u, err := url.Parse(c.pgURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: -pg must be a postgres:// URL", errUsage)
	}
	e.schema = "tg_soak_" + e.runID
	conn, err := pgx.Connect(ctx, c.pgURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+e.schema)
	conn.Close(ctx)
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if c.keep {
		log.Info("keeping schema", "schema", e.schema)
	} else {
		e.cleanupFuncs = append(e.cleanupFuncs, func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if conn, err := pgx.Connect(cctx, c.pgURL); err == nil {
				_, _ = conn.Exec(cctx, "DROP SCHEMA "+e.schema+" CASCADE")
				conn.Close(cctx)
			}
		})
	}
	e.directDB = withURL(c.pgURL, "", "search_path", e.schema)
	e.pgRelay = &load.Relay{Listen: "127.0.0.1:0", Target: hostPort(u, "5432"), Hold: c.hold, Log: log}
	if err := e.pgRelay.Start(); err != nil {
		return err
	}
	e.cleanupFuncs = append(e.cleanupFuncs, func() { e.pgRelay.Close() })
	return nil
}

func (e *soakEnv) setupRedis(c soakConfig) error {
	u, err := url.Parse(c.redisURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: -redis must be a redis:// URL", errUsage)
	}
	e.redisRelay = &load.Relay{Listen: "127.0.0.1:0", Target: hostPort(u, "6379"), Hold: c.hold, Log: e.h.log}
	if err := e.redisRelay.Start(); err != nil {
		return err
	}
	e.cleanupFuncs = append(e.cleanupFuncs, func() { e.redisRelay.Close() })
	return nil
}

func hostPort(u *url.URL, defPort string) string {
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defPort)
	}
	return u.Host
}

// withURL returns raw with its host:port replaced and, if set, one query
// parameter set.
func withURL(raw, hostport, key, value string) string {
	u, _ := url.Parse(raw) // parsed successfully before
	if hostport != "" {
		u.Host = hostport
	}
	if key != "" {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// createKey makes a gateway key with `tollgate keys create --name NAME
// --db DB [extra...]` and returns its secret (never logged).
func createKey(ctx context.Context, bin, dir, db, name string, extra ...string) (string, error) {
	args := append([]string{"keys", "create", "--name", name, "--db", db}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = scrubTollgateEnv(os.Environ())
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("tollgate keys create: %w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("tollgate keys create: %w", err)
	}
	// The secret is the one line indented by four spaces.
	for line := range strings.SplitSeq(string(out), "\n") {
		if k, ok := strings.CutPrefix(line, "    "); ok && strings.TrimSpace(k) != "" {
			return strings.TrimSpace(k), nil
		}
	}
	return "", errors.New("tollgate keys create: no key in its output")
}

func scrubTollgateEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "TOLLGATE_") && !strings.HasPrefix(kv, "TAOTOKEN_") && !strings.HasPrefix(kv, "PORT=") {
			out = append(out, kv)
		}
	}
	return out
}

func soakConfigMap(c soakConfig) map[string]any {
	return map[string]any{
		"duration": c.duration.String(), "rate": c.rate, "deadline": c.deadline.String(),
		"max_in_flight": c.maxInFlight, "stream_chunks": c.streamChunks, "stream_chunk_delay": c.streamDelay.String(),
		"pg_outage": c.pgOutage.String(), "pg_at": c.pgAt, "redis_outage": c.redisOutage.String(), "redis_at": c.redisAt,
		"hold": c.hold, "drain_streams": c.drainStreams, "drain_timeout": c.drainTimeout.String(),
		"drain_short": c.drainShort.String(), "drain_long": c.drainLong.String(),
	}
}
