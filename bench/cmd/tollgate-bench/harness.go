package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tollgate/tollgate/bench/load"
)

// CPU assignment when pinning: the proxy under test gets a core of its own,
// so its CPU time and throughput are not disturbed by the load it serves.
const (
	loadCPU  = 0
	proxyCPU = 1
)

// harness owns the child processes of one run and stops them all, by PID,
// whatever happens.
type harness struct {
	log      *slog.Logger
	dir      string
	self     string // this binary, re-executed for the baseline and fake modes
	tollgate string // tollgate binary, "" when unavailable
	taskset  string // "" = no pinning
	key      string // gateway key sent to every target; "" = tollgate runs with auth disabled
	// fakeCert is the fake upstream's certificate file when it speaks
	// HTTPS (--upstream-tls), "" for plain HTTP.
	fakeCert string
	procs    []*load.Proc
}

// fakeOrigin is the fake upstream's origin at addr.
func (h *harness) fakeOrigin(addr string) string {
	if h.fakeCert != "" {
		return "https://" + addr
	}
	return "http://" + addr
}

// trustEnv makes a proxy trust the fake upstream's certificate: Go reads
// SSL_CERT_FILE in place of the system roots.
func (h *harness) trustEnv() []string {
	if h.fakeCert == "" {
		return nil
	}
	return []string{"SSL_CERT_FILE=" + h.fakeCert}
}

// db is tollgate's database in the run's temp dir.
func (h *harness) db() string { return filepath.Join(h.dir, "bench.db") }

func (h *harness) start(pc load.ProcConfig) (*load.Proc, error) {
	pc.Dir, pc.Taskset = h.dir, h.taskset
	p, err := load.StartProc(h.log, pc)
	if err != nil {
		return nil, err
	}
	h.procs = append(h.procs, p)
	return p, nil
}

// stop stops p and forgets it.
func (h *harness) stop(p *load.Proc) {
	if err := p.Stop(10 * time.Second); err != nil {
		h.log.Warn("stop", "proc", p.Name, "err", err)
	}
	for i, q := range h.procs {
		if q == p {
			h.procs = append(h.procs[:i], h.procs[i+1:]...)
			break
		}
	}
}

// stopAll stops every process still running, newest first.
func (h *harness) stopAll() {
	for len(h.procs) > 0 {
		h.stop(h.procs[len(h.procs)-1])
	}
}

// startFake starts the fake upstream on CPU 0 and returns its address. It
// is `tollgate fake-upstream` when a tollgate binary exists, else this
// binary's fake mode (the same fakeupstream package). With useTLS it
// speaks HTTPS with a certificate made for the run.
func (h *harness) startFake(ctx context.Context, useTLS bool) (string, error) {
	addr, err := load.FreeAddr()
	if err != nil {
		return "", err
	}
	args := []string{"--listen", addr}
	if useTLS {
		cert, key, err := selfSigned(h.dir)
		if err != nil {
			return "", err
		}
		h.fakeCert = cert
		args = append(args, "--tls-cert", cert, "--tls-key", key)
	}
	pc := load.ProcConfig{Name: "fake", Path: h.self, Args: append([]string{"fake"}, args...), CPU: loadCPU}
	if h.tollgate != "" {
		pc.Path, pc.Args = h.tollgate, append([]string{"fake-upstream"}, args...)
	}
	p, err := h.start(pc)
	if err != nil {
		return "", err
	}
	if err := load.WaitReady(ctx, p, 15*time.Second, load.TCPCheck(addr)); err != nil {
		return "", fmt.Errorf("fake upstream: %w", err)
	}
	return addr, nil
}

// startTarget starts the proxy for target name (none for direct) and
// returns the load.Target to drive.
func (h *harness) startTarget(ctx context.Context, c config, name, fakeAddr string) (load.Target, *load.Proc, error) {
	t := load.Target{Name: name, APIKey: h.key}
	if name == load.Direct {
		t.BaseURL = "http://" + fakeAddr + "/v1"
		return t, nil, nil
	}
	addr, err := load.FreeAddr()
	if err != nil {
		return t, nil, err
	}
	t.BaseURL = "http://" + addr + "/v1"
	pc := load.ProcConfig{Name: name, CPU: proxyCPU}
	check := load.TCPCheck(addr)
	switch name {
	case load.Baseline:
		pc.Path, pc.Args = h.self, []string{"baseline", "--listen", addr, "--target", h.fakeOrigin(fakeAddr)}
		pc.Env = h.trustEnv()
	case load.Tollgate:
		pc.Path, pc.Args = h.tollgate, []string{"serve"}
		pc.Scrub = []string{"TOLLGATE_", "TAOTOKEN_", "PORT="}
		pc.Env = []string{
			"TAOTOKEN_BASE_URL=" + h.fakeOrigin(fakeAddr) + "/v1",
			"TAOTOKEN_API_KEY=sk-bench",
			"TOLLGATE_DB=" + h.db(),
			"TOLLGATE_LOG_LEVEL=warn",
			"TOLLGATE_LISTEN=" + addr,
		}
		if h.key == "" {
			pc.Env = append(pc.Env, "TOLLGATE_AUTH=disabled")
		}
		pc.Env = append(pc.Env, h.trustEnv()...)
		pc.Env = append(pc.Env, c.tollgateEnv...)
		check = load.HTTPCheck("http://" + addr + "/healthz")
	}
	p, err := h.start(pc)
	if err != nil {
		return t, nil, err
	}
	if err := load.WaitReady(ctx, p, 30*time.Second, check); err != nil {
		h.stop(p)
		return t, nil, err
	}
	t.PID = p.PID()
	return t, p, nil
}

// warm sends the closed-loop warm-up to t and lets it settle.
func (h *harness) warm(ctx context.Context, c config, t load.Target) error {
	if c.warmup <= 0 {
		return nil
	}
	// With the target's key: without it every warm-up request was a 401
	// (until the eleventh session), which warmed no upstream connection and
	// left the first workload to do it.
	warm := load.Spec{Name: "warmup", Kind: load.ClosedLoop, Workers: 8, Duration: c.warmup, Body: chatBody(false, 0)}
	r, err := load.Run(ctx, h.log, load.Target{Name: t.Name, BaseURL: t.BaseURL, APIKey: t.APIKey}, warm)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if r.Errors > 0 {
		return fmt.Errorf("warm-up: %d requests failed (%d ok): %s", r.Errors, r.Requests, r.FirstError)
	}
	// A closed loop saturates the proxy, and a saturated core starves
	// tollgate's SCHED_IDLE ledger child, whose rows then go in-process
	// until the gateway has been calm for a second: let that pass before
	// anything is measured.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(warmSettle):
		return nil
	}
}

// runTarget starts the target, warms it up, runs every workload and stops
// it. Results of the workloads that finished are returned even on error.
// warmSettle is the quiet pause between the warm-up and the first workload.
const warmSettle = 2 * time.Second

func (h *harness) runTarget(ctx context.Context, c config, name, fakeAddr string) ([]load.Result, error) {
	t, p, err := h.startTarget(ctx, c, name, fakeAddr)
	if err != nil {
		return nil, err
	}
	// p may be replaced below; stop whichever is current at return.
	defer func() {
		if p != nil {
			h.stop(p)
		}
	}()
	h.log.Info("target up", "target", name, "url", t.BaseURL, "pid", t.PID)
	if err := h.warm(ctx, c, t); err != nil {
		return nil, err
	}
	var out []load.Result
	for _, w := range c.workloads {
		if w == load.WorkloadIdle && p != nil && c.freshIdle {
			// Memory retained from earlier workloads (a Go heap shrinks
			// slowly) would be charged to the idle streams; a fresh
			// process measures what holding them costs.
			h.stop(p)
			if t, p, err = h.startTarget(ctx, c, name, fakeAddr); err != nil {
				return out, fmt.Errorf("restart for %s: %w", w, err)
			}
		}
		spec, _ := specFor(c, w)
		r, err := load.Run(ctx, h.log, t, spec)
		if err != nil {
			return out, err
		}
		h.log.Info("workload done", "target", name, "workload", w, "rps", int(r.RPS), "p50", r.Latency.P50, "p99", r.Latency.P99, "errors", r.Errors)
		out = append(out, r)
		if p != nil {
			select {
			case <-p.Exited():
				return out, fmt.Errorf("%s exited during %s; log %s:\n%s", name, w, p.LogPath, p.LogTail(2048))
			default:
			}
		}
	}
	return out, nil
}
