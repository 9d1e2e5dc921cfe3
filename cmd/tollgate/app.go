package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
	_ "time/tzdata" // TOLLGATE_TIMEZONE must work on hosts and images without a zoneinfo database

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/access"
	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/anthropic"
	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/chat"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/limit"
	"github.com/tollgate/tollgate/internal/metrics"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/realip"
	"github.com/tollgate/tollgate/internal/responses"
	"github.com/tollgate/tollgate/internal/server"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
	"github.com/tollgate/tollgate/internal/streamconn"
	"github.com/tollgate/tollgate/internal/telemetry"
	"github.com/tollgate/tollgate/internal/telemetry/repeat"
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

	var dbOpts storeopen.Options
	if !cfg.Database.InlineWriter {
		dbOpts.SQLiteWriter = sqliteWriter(os.Stderr)
	}
	st, err := storeopen.OpenWith(ctx, cfg.Database.URL, logger, dbOpts)
	if err != nil {
		return nil, err
	}
	a.store = st
	a.closers = append(a.closers, func(context.Context) error { return st.Close() })

	prices, priceLoader, err := newPricer(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	a.prices = prices
	if priceLoader != nil && cfg.PricesRefresh > 0 {
		refresh, stopRefresh := context.WithCancel(context.Background())
		go priceLoader.Run(refresh, cfg.PricesRefresh)
		a.closers = append(a.closers, func(context.Context) error { stopRefresh(); return nil })
	}
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
			Currency:     cfg.Currency,
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

	// Event streams leave net/http's connection handling once their headers
	// are due (streamconn); where the system has no poller they stay.
	var streams *streamconn.Conns
	if !cfg.NetHTTPStreams {
		if streams, err = streamconn.New(server.IdleTimeout, logger); err != nil {
			logger.Debug("stream connections stay with net/http", "error", err)
		}
	}
	px := &proxy.Proxy{
		Streams:      streams,
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
	a.ready["database"] = st.Ping
	a.ready["upstreams"] = func(context.Context) error {
		if !a.pool.Load().Ready() {
			return errors.New("every upstream's circuit is open")
		}
		return nil
	}
	models := &openai.Models{Pool: a.pool.Load, Transport: transport, Logger: logger, AnthropicList: anthropic.ModelList}
	if strings.EqualFold(cfg.Currency, "USD") || cfg.Currency == "" {
		// OpenRouter-style lists carry USD prices per token.
		models.OnList = func(name string, body []byte) {
			if entries, err := ledger.PricesFromModelList(name, body); err == nil && len(entries) > 0 {
				a.prices.SetUpstreamList(name, entries)
			}
		}
	}
	if a.keys != nil {
		models.Allowed = func(r *http.Request) (func(string) bool, *openai.Error) {
			k, err := a.keys.Lookup(auth.KeyFromRequest(r))
			if err != nil {
				return nil, openai.NewError(http.StatusUnauthorized, openai.TypeAuthentication, "invalid_api_key", err.Error())
			}
			return func(model string) bool { return auth.ModelAllowed(k, model) }, nil
		}
	}
	chatSvc := chat.New(chat.Options{
		Engine: px, Store: st, Keys: a.keys,
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

	loc, err := cfg.Location()
	if err != nil {
		return nil, usageErr("config: %v", err)
	}
	adminOpts := admin.Options{
		Token: cfg.AdminToken, Store: st, Keys: a.manager, Logger: logger,
		Currency: cfg.Currency, Location: loc,
		Upstreams: func() []upstream.Status { return a.pool.Load().Status() },
		Recent:    a.ring.Recent,
		Reload:    func(context.Context) error { return a.reload(e) },
	}
	if cfg.AdminToken != "" {
		// Fill the usage cache the dashboard's overview reads, off the request path.
		warm, stopWarm := context.WithCancel(context.Background())
		a.closers = append(a.closers, func(context.Context) error { stopWarm(); return nil })
		go func() { defer stopWarm(); _ = admin.WarmOverview(warm, st, loc) }()
	}
	var adminAPI http.Handler
	if cfg.AdminToken != "" {
		adminAPI = admin.New(adminOpts)
	} else {
		logger.Info("admin API disabled: set TOLLGATE_ADMIN_TOKEN to enable /admin/*")
	}
	if a.ui, err = newUI(cfg, adminOpts, a.keys, st, logger); err != nil {
		return nil, err
	}
	a.srv = server.New(server.Options{
		Admin:   adminAPI,
		Logger:  logger,
		Proxy:   a.v1(px),
		Models:  models,
		Chat:    chatSvc,
		Metrics: a.metricsRoute(metricsHandler),
		UI:      a.ui,
		Wrap:    tracing.Middleware,
		Checks:  a.ready,
		// Reported by /healthz?verbose; they never make the gateway unready.
		Upstreams: func() []upstream.Status { return a.pool.Load().Status() },
		Streams:   streams,
		LedgerQueue: func() (int, int) {
			if a.writer == nil || cfg.DisableLedger {
				return 0, 0
			}
			// In memory the writer holds its queue (2048 rows by default), an
			// overflow and its pending rows; past MaxMemoryRows (100000) rows
			// go to the spill file, so a depth of 110,000 means it has been
			// spilling for a while.
			return a.writer.Stats().QueueDepth, 110_000
		},
	})
	ok = true
	return a, nil
}

// v1 routes /v1/ to the engine, each API in its dialect.
func (a *app) v1(px *proxy.Proxy) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", px.Handler(openai.Dialect{}))
	claude := px.Handler(anthropic.New(a.logger))
	mux.Handle("POST /v1/messages", claude)
	mux.Handle("POST /v1/messages/count_tokens", claude)
	mux.Handle("POST /v1/responses", px.Handler(responses.New(responses.Options{Logger: a.logger})))
	return mux
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
			p, ok := a.prices.Lookup("", model)
			return (p.Input + p.Output) / 2, ok
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
		Prices:        a.prices,
		Targets:       a.priceTargets,
		AllowUnpriced: cfg.Limits.Unpriced == "allow",
		BudgetWarn:    cfg.Limits.BudgetWarn,
		Currency:      cfg.Currency,
		Logger:        a.logger,
	}
	if a.metrics != nil {
		g.OnUnpriced, g.OnBudgetWarn = a.metrics.Unpriced, a.metrics.BudgetWarning
	}
	loc, err := cfg.Location()
	if err != nil {
		return nil, usageErr("config: %v", err)
	}
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, usageErr("config: TOLLGATE_REDIS_URL: %v", err)
		}
		// Fail fast: during a Redis outage each check must not wait on redials.
		opts.DialTimeout, opts.MaxRetries, opts.DialerRetries = 500*time.Millisecond, -1, 1
		opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = time.Second, time.Second, time.Second
		// go-redis logs every failed dial itself; route it through the same
		// once-per-10s limit as the gateway's own Redis errors.
		redis.SetLogger(repeat.Printer{Limiter: repeat.New(10*time.Second, nil), Logger: a.logger,
			Level: slog.LevelWarn, Key: "go-redis", Msg: "redis client"})
		client := redis.NewClient(opts)
		if err := client.Ping(ctx).Err(); err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("redis %s: %w", opts.Addr, err)
		}
		a.closers = append(a.closers, func(context.Context) error { return client.Close() })
		// During an outage every request fails its Redis call: log once,
		// then once per 10s with the count of repeats (the metric counts all).
		redisErrLog := repeat.New(10*time.Second, nil)
		onFail := func(err error) {
			if a.metrics != nil {
				a.metrics.RedisFailure()
			}
			redisErrLog.Log(context.Background(), a.logger, slog.LevelError, "redis", "limit backend (redis) failed",
				slog.Any("error", err), slog.String("policy", cfg.Limits.FailPolicy))
		}
		mk := func(prefix string) *limit.Redis {
			return limit.NewRedis(client, limit.RedisOptions{
				Prefix: "tollgate:" + prefix + ":", Spend: st, Location: loc, FailClosed: cfg.Limits.FailPolicy == "fail_closed", OnFailure: onFail,
			})
		}
		g.RPM, g.TPM, g.IP = mk("rpm"), mk("tpm"), mk("ip")
		b := mk("k")
		g.Parallel, g.Budget = b, b
		a.ready["redis"] = func(ctx context.Context) error { return client.Ping(ctx).Err() }
	} else {
		b := limit.NewMemory(limit.MemoryOptions{Spend: st, Location: loc})
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
	mgr.Currency, mgr.Location = cfg.Currency, loc
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

// priceTargets lists where model may be served, for budget reservations:
// every (upstream, model sent) pair the pool would try.
func (a *app) priceTargets(model string) []access.Target {
	plan, err := a.pool.Load().Plan(model)
	if err != nil {
		return nil
	}
	out := make([]access.Target, len(plan))
	for i, t := range plan {
		out[i] = access.Target{Upstream: t.Upstream.Name(), Model: t.Model}
	}
	return out
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

// cost prices a request's usage at the upstream that served it.
func (a *app) cost(upstreamName, model string, u proxy.Usage) (int64, bool) {
	return a.prices.Cost(upstreamName, model, ledger.Tokens{
		Prompt: u.Prompt, Completion: u.Completion, Cached: u.Cached, CacheWrite: u.CacheWrite, Reasoning: u.Reasoning,
	})
}

// knownModel bounds the metrics' model label: models upstreams or aliases
// name, or that have a price.
func (a *app) knownModel(model string) bool {
	if a.prices.HasAnywhere(model) {
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
