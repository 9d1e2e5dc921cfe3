package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/bench/load"
)

// gatewayConfig is how the soak starts tollgate.
type gatewayConfig struct {
	bin, dir, fake string
	db, redis      string
	drain          time.Duration
}

// gateway is the tollgate process under soak. It is started here rather
// than with load.StartProc because the soak needs its exit status.
type gateway struct {
	addr    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // cmd.Wait's result, valid once done is closed
	probe   *http.Client
}

func startGateway(ctx context.Context, log *slog.Logger, gc gatewayConfig) (*gateway, error) {
	addr, err := load.FreeAddr()
	if err != nil {
		return nil, err
	}
	g := &gateway{addr: addr, logPath: filepath.Join(gc.dir, "tollgate.log"), done: make(chan struct{}),
		probe: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	lf, err := os.Create(g.logPath)
	if err != nil {
		return nil, fmt.Errorf("gateway log: %w", err)
	}
	defer lf.Close() // the child holds its own descriptor
	g.cmd = exec.Command(gc.bin, "serve")
	g.cmd.Dir = gc.dir // also where a spill file would go
	g.cmd.Env = append(scrubTollgateEnv(os.Environ()),
		"TAOTOKEN_BASE_URL=http://"+gc.fake+"/v1",
		"TAOTOKEN_API_KEY=sk-soak-upstream",
		"TOLLGATE_DB="+gc.db,
		"TOLLGATE_REDIS_URL="+gc.redis,
		"TOLLGATE_LISTEN="+addr,
		"TOLLGATE_LOG_LEVEL=warn",
		"TOLLGATE_DRAIN_TIMEOUT="+gc.drain.String(),
	)
	g.cmd.Stdout, g.cmd.Stderr = lf, lf
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start tollgate: %w", err)
	}
	go func() {
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	log.Debug("started", "proc", "tollgate", "pid", g.pid())
	// Bounded: 60 s at most, 50 ms apart.
	for i := 0; ; i++ {
		if g.get(ctx, "/healthz") == http.StatusOK {
			return g, nil
		}
		select {
		case <-g.done:
			return nil, fmt.Errorf("tollgate exited before it was ready (%v):\n%s", g.err, g.logTail(4096))
		case <-ctx.Done():
			g.kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if i > 1200 {
			g.kill()
			return nil, fmt.Errorf("tollgate not ready after 60s:\n%s", g.logTail(4096))
		}
	}
}

func (g *gateway) pid() int { return g.cmd.Process.Pid }

// kill stops the gateway by PID if it still runs: SIGTERM, then SIGKILL
// after 10 s.
func (g *gateway) kill() {
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// get returns the status of GET path, 0 when there was none.
func (g *gateway) get(ctx context.Context, path string) int {
	status, _ := g.getBody(ctx, path)
	return status
}

func (g *gateway) getBody(ctx context.Context, path string) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.addr+path, nil)
	if err != nil {
		return 0, nil
	}
	resp, err := g.probe.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b
}

// goroutines reads go_goroutines from the gateway's /metrics (served on the
// main listener unless TOLLGATE_METRICS_LISTEN is set, which the soak does
// not set).
func (g *gateway) goroutines(ctx context.Context) (int, error) {
	status, body := g.getBody(ctx, "/metrics")
	if status != http.StatusOK {
		return 0, fmt.Errorf("/metrics: status %d", status)
	}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("go_goroutines %q: %w", v, err)
			}
			return int(f), nil
		}
	}
	return 0, errors.New("/metrics has no go_goroutines")
}

// readiness is one /readyz probe.
type readiness struct {
	At     time.Duration `json:"at_ns"` // since the load started
	Status int           `json:"status"`
	// Report is the /readyz body's status and checks, to show the
	// dependency was seen failing ("degraded") while the gateway stayed ready.
	Report string `json:"report"`
}

func (g *gateway) readyz(ctx context.Context, since time.Time) readiness {
	status, body := g.getBody(ctx, "/readyz")
	r := readiness{At: time.Since(since), Status: status}
	var rep struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if json.Unmarshal(body, &rep) == nil {
		var bad []string
		for k, v := range rep.Checks {
			if v != "ok" {
				bad = append(bad, k+": "+shorten(v, 80))
			}
		}
		r.Report = rep.Status
		if len(bad) > 0 {
			r.Report += " (" + strings.Join(bad, "; ") + ")"
		}
	} else {
		r.Report = shorten(string(body), 120)
	}
	return r
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// sample is the gateway's memory and goroutines at one moment.
type sample struct {
	Label      string        `json:"label"`
	At         time.Duration `json:"at_ns"`
	RSS        int64         `json:"rss_bytes"`
	CPU        time.Duration `json:"cpu_ns"` // utime+stime so far
	Goroutines int           `json:"goroutines"`
	Err        string        `json:"error,omitempty"`
}

func (g *gateway) sample(ctx context.Context, label string, since time.Time) sample {
	s := sample{Label: label, At: time.Since(since)}
	var errs []string
	if p, err := load.ReadProc(g.pid()); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.RSS, s.CPU = p.RSS, p.CPU
	}
	n, err := g.goroutines(ctx)
	if err != nil {
		errs = append(errs, err.Error())
	}
	s.Goroutines = n
	s.Err = strings.Join(errs, "; ")
	return s
}

// exitCode is the gateway's exit status once it has exited: 0 for a clean
// exit, -1 when killed by a signal.
func (g *gateway) exitCode() int {
	if g.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(g.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func (g *gateway) logTail(n int64) string {
	f, err := os.Open(g.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, 0)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}
