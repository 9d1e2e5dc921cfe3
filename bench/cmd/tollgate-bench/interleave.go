package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/bench/load"
)

// runInterleaved is a round with the targets side by side (--interleave
// N): all of them are started and warmed up first, then each workload runs
// on them in N turns of 1/N of its length, the targets' order alternating
// from turn to turn. A neighbour's burst on this shared VM lasts seconds to
// minutes; run one after another, a target's whole workload can fall in it
// and its partner's not, which moved CPU per stream by up to 0.2 between
// rounds. In turns of a second or two both take their share of it. A
// target's counts, CPU and latencies are summed over its turns (load.Turns).
// The idle workload measures memory, not time, and is not run here.
func (h *harness) runInterleaved(ctx context.Context, c config, round int, fakeAddr string) ([]load.Result, error) {
	targets := make(map[string]load.Target, len(c.targets))
	var procs []*load.Proc
	defer func() {
		for _, p := range procs {
			h.stop(p)
		}
	}()
	for _, name := range c.targets {
		t, p, err := h.startTarget(ctx, c, name, fakeAddr)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		if p != nil {
			procs = append(procs, p)
		}
		targets[name] = t
		h.log.Info("target up", "target", name, "url", t.BaseURL, "pid", t.PID)
		if err := h.warm(ctx, c, t); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	var results []load.Result
	for _, w := range c.workloads {
		if w == load.WorkloadIdle {
			h.log.Info("idle workload not run with --interleave (it measures memory, run it without)")
			continue
		}
		spec, _ := specFor(c, w)
		turn := spec.Duration / time.Duration(c.interleave)
		sums := make(map[string]*load.Turns, len(c.targets))
		for _, name := range c.targets {
			sums[name] = load.NewTurns()
		}
		for i := range c.interleave {
			for _, name := range roundOrder(c.targets, round+i) {
				r, err := load.Run(ctx, h.log, targets[name], sums[name].Spec(spec, turn))
				if err != nil {
					return results, err
				}
				sums[name].Add(r)
				h.log.Debug("turn", "target", name, "workload", w, "turn", i+1, "requests", r.Requests, "cpu", r.CPU, "cpu_per_request", r.CPUPerRequest)
			}
		}
		for _, name := range c.targets {
			sums[name].Close()
			r := sums[name].Result()
			h.log.Info("workload done", "target", name, "workload", w, "turns", c.interleave, "rps", int(r.RPS), "p50", r.Latency.P50, "p99", r.Latency.P99, "errors", r.Errors)
			results = append(results, r)
		}
	}
	return results, nil
}
