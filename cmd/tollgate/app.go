package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/access"
	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/chat"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/limit"
	"github.com/tollgate/tollgate/internal/metrics"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/realip"
	"github.com/tollgate/tollgate/internal/server"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
	"github.com/tollgate/tollgate/internal/telemetry"
	"github.com/tollgate/tollgate/internal/upstream"
)

// newApp wires the gateway: store and ledger writer, upstream pool, keys,
// limits, proxy, metrics, tracing and the server. Anything that fails here
// stops startup: the gateway never half-starts.
func newApp(ctx context.Context, cfg config.Config, args []string, logger *slog.Logger, e env, stdout io.Writer) (*app, error) {
	a := &app{cfg: cfg, args: args, logger: logger, ready: map[string]func(context.Context) error{}}
	ok := false
	defer func() {
		if !ok {
			a.close(logger)
		}
	}()

	st, err := storeopen.Open(ctx, cfg.Database.URL, logger)
	if err != nil {
		return nil, err
	}
	a.store = st
	a.closers = append(a.closers, func(context.Context) error { return st.Close() })

	prices, err := ledger.NewPrices(priceOverrides(cfg.Prices))
	if err != nil {
		return nil, usageErr("config: prices: %v", err)
	}
	a.prices = prices
	trusted, err := realip.ParseTrusted(cfg.TrustedProxies)
	if err != nil {
		return nil, usageErr("config: trusted_proxies: %v", err)
	}

	tracing, err := telemetry.SetupTracing(ctx, e.lookup, version)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	a.closers = append(a.closers, tracing.Shutdown)

	var metricsHandler http.Handler
	if !cfg.DisableMetrics {
		reg := metrics.NewRegistry()
		a.metrics = metrics.New(reg, metrics.Options{
			IsKnownModel: a.knownModel,
			Upstreams:    func() []upstream.Status { return a.pool.Load().Status() },
			Ledger:       a.ledgerStats,
		})
		metricsHandler = metrics.Handler(reg)
	}

	pool, err := a.newPool(cfg, nil)
	if err != nil {
		return nil, usageErr("config: upstreams: %v", err)
	}
	a.setPool(pool)
	transport := proxy.NewTransport()
	a.closers = append(a.closers, func(context.Context) error { transport.CloseIdleConnections(); return nil })

	// The writer is closed after the server has drained (closers run in
	// reverse), so every in-flight request's record is flushed.
	wopts := ledger.WriterOptions{SpillPath: storeopen.DefaultSpillPath(cfg.Database.URL), Logger: logger}
	if tracing.Enabled() {
		wopts.Trace = tracing.LedgerSpan
	}
	a.writer = ledger.NewWriter(st, wopts)
	a.closers = append(a.closers, a.writer.Close)
	a.ring = ledger.NewRing(1000)
	var recorder ledger.Recorder = ledger.Tee{a.ring, a.writer}
	if cfg.DisableLedger {
		logger.Warn("the usage ledger is disabled (TOLLGATE_DISABLE_LEDGER): requests are not recorded in the database")
		recorder = a.ring
	}

	gate, err := a.newGate(ctx, cfg, st, stdout)
	if err != nil {
		return nil, err
	}

	px := &proxy.Proxy{
		Pool:         func() proxy.Planner { return a.pool.Load() },
		Transport:    transport,
		Recorder:     recorder,
		Tracer:       tracing.ProxyTracer(),
		Logger:       logger,
		Cost:         a.cost,
		Estimate:     ledger.EstimateTokens,
		DefaultModel: cfg.DefaultModel,
		MaxRetries:   cfg.MaxRetries,
		Timeout:      cfg.Timeout,
		IdleTimeout:  cfg.IdleTimeout,
		MaxBody:      int64(cfg.MaxBody),
		LogBodies:    cfg.LogBodies,
		LogContent:   cfg.LogContent,
		ClientIP:     (&realip.Resolver{Trusted: trusted}).ClientIP,
	}
	if gate != nil {
		px.Gate = gate
	}
	if a.metrics != nil {
		px.Observer = a.metrics
	}
	a.ready["store"] = st.Ping
	a.ready["upstreams"] = func(context.Context) error {
		if !a.pool.Load().Ready() {
			return errors.New("every upstream's circuit is open")
		}
		return nil
	}
	models := &proxy.Models{Pool: a.pool.Load, Transport: transport, Logger: logger}
	if a.keys != nil {
		models.Allowed = func(r *http.Request) func(string) bool {
			k, err := a.keys.Lookup(auth.KeyFromRequest(r))
			return func(model string) bool { return err == nil && auth.ModelAllowed(k, model) }
		}
	}
	chatSvc := chat.New(chat.Options{
		Proxy: px, Store: st, Keys: a.keys,
		Models: func(ctx context.Context) ([]string, error) {
			list, err := models.List(ctx)
			ids := make([]string, 0, len(list))
			for _, m := range list {
				ids = append(ids, m.ID())
			}
			return ids, err
		},
		DefaultModel:    cfg.DefaultModel,
		ContextMessages: cfg.Chat.ContextMessages,
		KeepMessages:    cfg.Chat.KeepMessages,
		ContextTokens:   cfg.Chat.ContextTokens,
		SystemPrompt:    cfg.Chat.SystemPrompt,
		Development:     cfg.Env == "development",
		Estimate:        ledger.EstimateTokens,
		Logger:          logger,
	})

	retention, stopRetention := context.WithCancel(context.Background())
	go ledger.RunRetention(retention, st, cfg.Retention, time.Hour, logger)
	a.closers = append(a.closers, func(context.Context) error { stopRetention(); return nil })

	var adminAPI http.Handler
	if cfg.AdminToken != "" {
		adminAPI = admin.New(admin.Options{
			Token: cfg.AdminToken, Store: st, Keys: a.manager, Logger: logger,
			Upstreams: func() []upstream.Status { return a.pool.Load().Status() },
			Recent:    a.ring.Recent,
			Reload:    func(context.Context) error { return a.reload(e) },
		})
	} else {
		logger.Info("admin API disabled: set TOLLGATE_ADMIN_TOKEN to enable /admin/*")
	}
	a.srv = server.New(server.Options{
		Admin:   adminAPI,
		Logger:  logger,
		Proxy:   px,
		Models:  models,
		Chat:    chatSvc,
		Metrics: a.metricsRoute(metricsHandler),
		Wrap:    tracing.Middleware,
		Ready:   a.ready,
	})
	ok = true
	return a, nil
}

// newPool builds the upstream pool from cfg, carrying state over from prev.
func (a *app) newPool(cfg config.Config, prev *upstream.Pool) (*upstream.Pool, error) {
	return upstream.NewPool(upstream.Options{
		Upstreams:     cfg.UpstreamConfigs(),
		Aliases:       cfg.Models,
		Routing:       cfg.Routing,
		Breaker:       cfg.Breaker,
		Logger:        a.logger,
		OnStateChange: a.onStateChange,
		Price: func(model string) (int64, bool) {
			p, ok := a.prices.Lookup(model)
			return (p.InputNano + p.OutputNano) * 1_000_000 / 2, ok
		},
	}, prev)
}

// newGate builds the access gate: keys from the store, limits in memory or
// Redis. It returns nil when auth is disabled and no IP limit is set.
func (a *app) newGate(ctx context.Context, cfg config.Config, st store.Store, stdout io.Writer) (*access.Gate, error) {
	g := &access.Gate{
		Defaults: access.Defaults{
			RPM: cfg.Limits.RPM, TPM: cfg.Limits.TPM, MaxParallel: cfg.Limits.MaxParallel,
			IPRPM: cfg.Limits.IPRPM, MaxTokens: int64(cfg.Limits.DefaultMaxTokens),
		},
		Price: func(model string, prompt, completion int64) (int64, bool) {
			return a.prices.Cost(model, ledger.Tokens{Prompt: prompt, Completion: completion})
		},
	}
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, usageErr("config: TOLLGATE_REDIS_URL: %v", err)
		}
		// Fail fast: during a Redis outage each check must not wait on redials.
		opts.DialTimeout, opts.MaxRetries, opts.DialerRetries = 500*time.Millisecond, -1, 1
		opts.ReadTimeout, opts.WriteTimeout = time.Second, time.Second
		client := redis.NewClient(opts)
		if err := client.Ping(ctx).Err(); err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("redis %s: %w", opts.Addr, err)
		}
		a.closers = append(a.closers, func(context.Context) error { return client.Close() })
		onFail := func(err error) {
			if a.metrics != nil {
				a.metrics.RedisFailure()
			}
			a.logger.Error("limit backend (redis) failed", "error", err, "policy", cfg.Limits.FailPolicy)
		}
		mk := func(prefix string) *limit.Redis {
			return limit.NewRedis(client, limit.RedisOptions{
				Prefix: "tollgate:" + prefix + ":", Spend: st, FailClosed: cfg.Limits.FailPolicy == "fail_closed", OnFailure: onFail,
			})
		}
		g.RPM, g.TPM, g.IP = mk("rpm"), mk("tpm"), mk("ip")
		b := mk("k")
		g.Parallel, g.Budget = b, b
		a.ready["redis"] = func(ctx context.Context) error { return client.Ping(ctx).Err() }
	} else {
		b := limit.NewMemory(limit.MemoryOptions{Spend: st})
		g.RPM, g.TPM, g.IP = limit.NewMemory(limit.MemoryOptions{}), limit.NewMemory(limit.MemoryOptions{}), limit.NewMemory(limit.MemoryOptions{})
		g.Parallel, g.Budget = b, b
	}

	if cfg.Auth == "disabled" {
		a.logger.Warn("authentication is DISABLED (TOLLGATE_AUTH=disabled): anyone who can reach this port can spend the upstream keys")
		if cfg.Limits.IPRPM <= 0 {
			return nil, nil
		}
		return g, nil
	}
	cache := auth.NewCache(st, 2*time.Second, a.logger)
	if err := cache.Reload(ctx); err != nil {
		return nil, fmt.Errorf("load gateway keys: %w", err)
	}
	mgr := auth.NewManager(st, time.Now)
	mgr.OnChange = cache.Invalidate
	a.keys, a.manager = cache, mgr
	plaintext, created, err := auth.EnsureInitialKey(ctx, mgr)
	if err != nil {
		return nil, fmt.Errorf("create the first gateway key: %w", err)
	}
	if created {
		_ = cache.Reload(ctx)
		a.demoKey = plaintext
		fmt.Fprintf(stdout, "\nNo gateway keys existed, so one was created. It is shown only this once:\n\n  %s\n\nSend it as 'Authorization: Bearer <key>'. Manage keys with `tollgate keys`.\n\n", plaintext)
	}
	cacheCtx, stop := context.WithCancel(context.Background())
	go cache.Run(cacheCtx)
	a.closers = append(a.closers, func(context.Context) error { stop(); return nil })
	g.Keys = cache
	return g, nil
}

func (a *app) onStateChange(name string, from, to upstream.State) {
	if a.metrics != nil {
		a.metrics.OnStateChange(name, from, to)
	}
}

// metricsRoute mounts /metrics on the main listener unless a separate
// metrics address is configured, in which case serve starts it there.
func (a *app) metricsRoute(h http.Handler) http.Handler {
	a.metricsHandler = h
	if a.cfg.MetricsListen != "" {
		return nil
	}
	return h
}

// cost prices a request's usage.
func (a *app) cost(model string, u openai.Usage) (int64, bool) {
	return a.prices.Cost(model, ledger.Tokens{
		Prompt: u.PromptTokens, Completion: u.CompletionTokens, Cached: u.CachedTokens, Reasoning: u.ReasoningTokens,
	})
}

// knownModel bounds the metrics' model label: models upstreams or aliases
// name, or that have a price.
func (a *app) knownModel(model string) bool {
	if _, ok := a.prices.Lookup(model); ok {
		return true
	}
	known := a.known.Load()
	return known != nil && (*known)[model]
}

func (a *app) ledgerStats() metrics.LedgerStats {
	if a.writer == nil {
		return metrics.LedgerStats{}
	}
	s := a.writer.Stats()
	return metrics.LedgerStats{
		QueueDepth: int64(s.QueueDepth), Written: uint64(s.Written), Spilled: uint64(s.Spilled),
		Lost: uint64(s.Lost), Batches: uint64(s.Batches), LastBatchSeconds: s.LastBatchDuration.Seconds(),
	}
}

func priceOverrides(in map[string]config.Price) map[string]ledger.PriceUSD {
	out := make(map[string]ledger.PriceUSD, len(in))
	for _, k := range slices.Sorted(maps.Keys(in)) {
		p := in[k]
		out[k] = ledger.PriceUSD{Input: p.Input, CachedInput: p.CachedInput, Output: p.Output}
	}
	return out
}
