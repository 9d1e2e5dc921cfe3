package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/gcpace"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/metrics"
	"github.com/tollgate/tollgate/internal/server"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/telemetry"
	"github.com/tollgate/tollgate/internal/ui"
	"github.com/tollgate/tollgate/internal/upstream"
)

// serveFlags maps each serve flag to the environment variable it overrides,
// so flags and environment share one table in the config package.
var serveFlags = []struct{ name, env, usage string }{
	{"listen", "TOLLGATE_LISTEN", "address to listen on (default :3000)"},
	{"port", "PORT", "port to listen on"},
	{"default-model", "TOLLGATE_DEFAULT_MODEL", "model used when a request names none"},
	{"max-retries", "TOLLGATE_MAX_RETRIES", "retries per request"},
	{"timeout", "TOLLGATE_TIMEOUT", "whole-request deadline, e.g. 10m"},
	{"max-body", "TOLLGATE_MAX_BODY", "request body limit, e.g. 32MiB"},
	{"drain-timeout", "TOLLGATE_DRAIN_TIMEOUT", "graceful shutdown deadline"},
	{"db", "TOLLGATE_DB", "database: file path, sqlite://PATH or postgres://..."},
	{"log-level", "TOLLGATE_LOG_LEVEL", "debug, info, warn or error"},
	{"log-format", "TOLLGATE_LOG_FORMAT", "json or text"},
	{"auth", "TOLLGATE_AUTH", "enabled or disabled"},
}

// loadConfig parses serve's flags and loads the configuration.
func loadConfig(args []string, e env, stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "YAML config file (or TOLLGATE_CONFIG)")
	demo := fs.Bool("demo", false, "serve with an in-process fake upstream; no account needed")
	vals := make(map[string]*string, len(serveFlags))
	for _, f := range serveFlags {
		vals[f.name] = fs.String(f.name, "", f.usage+" (env "+f.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return config.Config{}, usageErr("%v", err)
	}
	flags := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		for _, sf := range serveFlags {
			if sf.name == f.Name {
				flags[sf.env] = *vals[f.Name]
			}
		}
	})
	if *demo {
		flags["TOLLGATE_DEMO"] = "true"
	}
	dotenv := e.dotenv
	if dotenv == "" {
		dotenv = ".env"
	}
	cfg, err := config.Load(config.Sources{ConfigFile: *configFile, DotEnv: dotenv, Lookup: e.lookup, Flags: flags})
	if err != nil {
		return cfg, usageErr("config: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageErr("config: %v", err)
	}
	return cfg, nil
}

func serve(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, e, stderr)
	if err != nil {
		return err
	}
	logger, logClose, err := telemetry.NewLogger(stderr, telemetry.LogOptions{
		Format: cfg.Log.Format, Level: cfg.Log.Level, File: cfg.Log.File, ErrorFile: cfg.Log.ErrorFile,
		MaxSizeMB: cfg.Log.MaxSizeMB, MaxAgeDay: cfg.Log.MaxAgeDay, FlushInterval: cfg.Log.FlushInterval,
	})
	if err != nil {
		return usageErr("%v", err)
	}
	defer logClose.Close()
	if setGCPercent(e.lookup, logger) {
		// Past ~32 MB live, GOGC falls so that at most 64 MB of garbage
		// accumulates between cycles (many open streams: docs/perf.md).
		go (&gcpace.Pacer{Percent: defaultGCPercent}).Run(ctx)
	}
	setMemoryLimit(e.cgroupRoot, e.lookup, logger)

	if cfg.Demo {
		stopFake, err := startDemoUpstream(ctx, &cfg, logger)
		if err != nil {
			return err
		}
		defer stopFake()
		if cfg.Database.URL == config.DefaultDB {
			// A demo leaves nothing behind: its keys and ledger live in a
			// temporary database unless TOLLGATE_DB names one.
			dir, err := os.MkdirTemp("", "tollgate-demo-")
			if err != nil {
				return fmt.Errorf("demo database: %w", err)
			}
			defer os.RemoveAll(dir)
			cfg.Database.URL = filepath.Join(dir, "demo.db")
		}
	}

	a, err := newApp(ctx, cfg, args, logger, e, stdout)
	if err != nil {
		return err
	}
	defer a.close(logger)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	addr := ln.Addr().String()
	logger.Info("tollgate listening", "addr", addr, "upstreams", len(cfg.UpstreamConfigs()), "version", version)
	if cfg.Demo {
		printDemo(stdout, addr, a.demoKey, cfg.Database.URL)
		printDashboard(stdout, addr, a.ui)
	}
	if e.ready != nil {
		e.ready(addr)
	}

	if cfg.MetricsListen != "" && a.metricsHandler != nil {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metricsHandler)
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ms.Serve(mln) }()
		defer ms.Close()
		logger.Info("metrics listening", "addr", mln.Addr().String())
	}

	if cfg.DebugListen != "" {
		stop, err := serveDebug(cfg.DebugListen, logger)
		if err != nil {
			return err
		}
		defer stop()
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := a.reload(e); err != nil {
					logger.Error("config reload refused; the running config stays", "error", err)
				}
			}
		}
	}()
	return a.srv.Serve(ctx, ln, cfg.DrainTimeout)
}

// app holds everything serve wires together.
type app struct {
	cfg     config.Config
	logger  *slog.Logger
	pool    atomic.Pointer[upstream.Pool]
	known   atomic.Pointer[map[string]bool] // models named by upstreams and aliases
	srv     *server.Server
	store   store.Store
	prices  *ledger.Pricer
	metrics *metrics.Metrics
	writer  *ledger.Writer
	ring    *ledger.Ring
	keys    *auth.Cache
	manager *auth.Manager
	ready   map[string]func(context.Context) error
	closers []func(context.Context) error
	demoKey string
	ui      *ui.Handler

	metricsHandler http.Handler // nil when metrics are disabled

	args     []string   // serve's flags, re-read on reload
	reloadMu sync.Mutex // one reload at a time
}

// reload re-reads the configuration and swaps the upstream pool. A bad
// config is refused and the running one stays; in-flight requests keep the
// pool they started with.
func (a *app) reload(e env) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg, err := loadConfig(a.args, e, io.Discard)
	if err != nil {
		return err
	}
	if a.cfg.Demo {
		cfg.Upstreams = a.cfg.Upstreams
	}
	p, err := a.newPool(cfg, a.pool.Load())
	if err != nil {
		return fmt.Errorf("upstreams: %w", err)
	}
	a.setPool(p)
	if err := applyPriceOverrides(a.prices, cfg); err != nil {
		a.logger.Warn("prices in the reloaded configuration ignored", "error", err)
	}
	a.logger.Info("configuration reloaded", "upstreams", len(cfg.UpstreamConfigs()))
	return nil
}

func (a *app) setPool(p *upstream.Pool) {
	known := map[string]bool{}
	for _, m := range p.Models() {
		known[m] = true
	}
	a.known.Store(&known)
	a.pool.Store(p)
}

func (a *app) close(logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout+10e9)
	defer cancel()
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](ctx); err != nil {
			logger.Error("shutdown", "error", err)
		}
	}
}

// startDemoUpstream runs the fake upstream on a loopback port and points the
// configuration at it.
func startDemoUpstream(ctx context.Context, cfg *config.Config, logger *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo upstream: %w", err)
	}
	fake := fakeupstream.New(fakeupstream.Options{Chunks: 8, NoRecord: true, Logger: logger})
	hs := newFakeServer(fake)
	go func() { _ = hs.Serve(ln) }()
	cfg.Upstreams = []upstream.Config{{Name: "demo", BaseURL: "http://" + ln.Addr().String() + "/v1", Models: []string{"*"}}}
	logger.Info("demo mode: serving from an in-process fake upstream", "addr", ln.Addr().String())
	return func() { _ = hs.Close() }, nil
}

func printDemo(w io.Writer, addr, key, db string) {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	auth := ""
	if key != "" {
		auth = ` -H "Authorization: Bearer ` + key + `"`
	}
	fmt.Fprintf(w, "\ntollgate demo is ready. Try:\n\n  curl -s http://%s:%s/v1/chat/completions%s -H 'Content-Type: application/json' \\\n    -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}'\n\n",
		host, port, auth)
	if key == "" {
		fmt.Fprintln(w, "(the database already had gateway keys: use one of yours, or `tollgate keys create --name demo`)")
	}
	fmt.Fprintf(w, "Usage so far: tollgate usage --db %s --since 1h\n\n", db)
}

// serveDebug serves the runtime profiles on their own listener, never on the
// public one.
func serveDebug(addr string, logger *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	logger.Info("debug endpoints listening", "addr", ln.Addr().String())
	return func() { _ = hs.Close() }, nil
}
