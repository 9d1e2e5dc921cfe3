package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/server"
	"github.com/tollgate/tollgate/internal/upstream"
)

// newApp wires the gateway: upstream pool, proxy, recorder, server.
func newApp(ctx context.Context, cfg config.Config, logger *slog.Logger, stdout io.Writer) (*app, error) {
	a := &app{cfg: cfg}
	pool, err := newPool(cfg, nil, logger)
	if err != nil {
		return nil, usageErr("config: upstreams: %v", err)
	}
	a.pool.Store(pool)
	transport := proxy.NewTransport()
	a.closers = append(a.closers, func(context.Context) error { transport.CloseIdleConnections(); return nil })

	ring := ledger.NewRing(1000)
	var recorder ledger.Recorder = ring

	px := &proxy.Proxy{
		Pool:         func() proxy.Planner { return a.pool.Load() },
		Transport:    transport,
		Recorder:     recorder,
		Logger:       logger,
		DefaultModel: cfg.DefaultModel,
		MaxRetries:   cfg.MaxRetries,
		Timeout:      cfg.Timeout,
		MaxBody:      int64(cfg.MaxBody),
		LogBodies:    cfg.LogBodies,
		LogContent:   cfg.LogContent,
	}
	models := &proxy.Models{Pool: a.pool.Load, Transport: transport, Logger: logger}
	a.srv = server.New(server.Options{
		Logger: logger,
		Proxy:  px,
		Models: models,
		Ready: map[string]func(context.Context) error{
			"upstreams": func(context.Context) error {
				if !a.pool.Load().Ready() {
					return fmt.Errorf("every upstream's circuit is open")
				}
				return nil
			},
		},
	})
	_ = upstream.StateClosed
	return a, nil
}
