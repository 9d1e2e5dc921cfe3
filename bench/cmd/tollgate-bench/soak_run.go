package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/bench/load"
)

// outageReport is one injected dependency outage.
type outageReport struct {
	Dependency  string        `json:"dependency"`
	Start       time.Duration `json:"start_ns"` // since the load started
	Length      time.Duration `json:"length_ns"`
	ConnsClosed int           `json:"conns_closed"`
	Probes      []readiness   `json:"readyz"`
	// HealthySent and HealthyOK are the healthy-model requests scheduled
	// during the outage and how many succeeded.
	HealthySent int64 `json:"healthy_sent"`
	HealthyOK   int64 `json:"healthy_ok"`
}

// sleepUntil waits until t or ctx ends; it reports whether t was reached.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// drive sends the load and, on schedule, samples the gateway and cuts
// PostgreSQL and Redis, probing /readyz during each outage. It returns
// once every request has finished.
func (e *soakEnv) drive(ctx context.Context, log *slog.Logger, c soakConfig, rep *soakReport) *tally {
	total := int(c.rate * c.duration.Seconds())
	t := newTally(total + c.drainStreams)
	client := soakClient(1024)
	defer client.CloseIdleConnections()
	url := "http://" + e.gw.addr + "/v1/chat/completions"
	pgStart := time.Duration(c.pgAt * float64(c.duration))
	redisStart := time.Duration(c.redisAt * float64(c.duration))
	phaseAt := func(off time.Duration) int {
		switch {
		case c.pgOutage > 0 && off >= pgStart && off < pgStart+c.pgOutage:
			return phasePGOutage
		case c.redisOutage > 0 && off >= redisStart && off < redisStart+c.redisOutage:
			return phaseRedisOutage
		}
		return phaseNormal
	}

	start := time.Now()
	evctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards rep while events run
	at := func(off time.Duration, fn func()) {
		wg.Go(func() {
			if sleepUntil(evctx, start.Add(off)) {
				fn()
			}
		})
	}
	snap := func(label string) func() {
		return func() {
			s := e.gw.sample(evctx, label, start)
			log.Info("sample", "label", label, "rss_mb", s.RSS>>20, "goroutines", s.Goroutines)
			mu.Lock()
			rep.Samples = append(rep.Samples, s)
			mu.Unlock()
		}
	}
	at(min(10*time.Second, c.duration/20), snap("start"))
	at(c.duration/2, snap("middle"))
	outage := func(dep string, relay *load.Relay, off, length time.Duration) {
		if length <= 0 {
			return
		}
		at(off, func() {
			o := outageReport{Dependency: dep, Start: time.Since(start), Length: length}
			o.ConnsClosed = relay.Cut(length)
			log.Info("outage", "dependency", dep, "for", length, "conns_closed", o.ConnsClosed)
			o.Probes = probeReady(evctx, e.gw, start, time.Now().Add(length))
			mu.Lock()
			rep.Outages = append(rep.Outages, o)
			mu.Unlock()
		})
	}
	outage("postgres", e.pgRelay, pgStart, c.pgOutage)
	outage("redis", e.redisRelay, redisStart, c.redisOutage)
	wg.Go(func() { rep.Series = series(evctx, e.gw, start, c.duration) })

	runTraffic(ctx, c, client, url, e.key, e.runID, t, total, phaseAt)
	rep.LoadElapsed = time.Since(start)
	cancel()
	wg.Wait()
	for i := range rep.Outages {
		p := phasePGOutage
		if rep.Outages[i].Dependency == "redis" {
			p = phaseRedisOutage
		}
		rep.Outages[i].HealthySent, rep.Outages[i].HealthyOK = t.healthy[p].Load(), t.healthyOK[p].Load()
	}
	s := e.gw.sample(ctx, "end", start)
	log.Info("sample", "label", "end", "rss_mb", s.RSS>>20, "goroutines", s.Goroutines)
	rep.Samples = append(rep.Samples, s)
	// Once the load's keep-alive connections are closed, the goroutines
	// should be back near the start: what is left is a leak.
	client.CloseIdleConnections()
	if sleepUntil(ctx, time.Now().Add(2*time.Second)) {
		rep.Samples = append(rep.Samples, e.gw.sample(ctx, "idle", start))
	}
	return t
}

// probeReady asks /readyz about once a second until end.
func probeReady(ctx context.Context, g *gateway, since, end time.Time) []readiness {
	var out []readiness
	// Half a second in, so the gateway has met the outage; bounded by end.
	next := time.Now().Add(500 * time.Millisecond)
	for next.Before(end) && sleepUntil(ctx, next) {
		out = append(out, g.readyz(ctx, since))
		next = next.Add(time.Second)
	}
	return out
}

// series samples RSS and goroutines every duration/300 (at least 1 s), so
// the JSON report shows their course over the run.
func series(ctx context.Context, g *gateway, since time.Time, d time.Duration) []sample {
	every := max(time.Second, d/300)
	var out []sample
	for i := 1; i <= 400 && sleepUntil(ctx, since.Add(time.Duration(i)*every)); i++ {
		out = append(out, g.sample(ctx, "series", since))
	}
	return out
}

// drainReport is the end of the run: streams in flight at SIGTERM.
type drainReport struct {
	Streams int `json:"streams"`
	Opened  int `json:"opened"` // delivered a first event before SIGTERM
	// Completed ended with [DONE]; CutByDrain got 200 and were cut when the
	// drain deadline closed the connection; NoAnswer got no status.
	Completed    int           `json:"completed"`
	CutByDrain   int           `json:"cut_by_drain"`
	NoAnswer     int           `json:"no_answer"`
	ShortDone    int           `json:"short_completed"` // of the streams meant to end within the drain
	Short        int           `json:"short"`
	ExitCode     int           `json:"exit_code"`
	ExitAfter    time.Duration `json:"exit_after_ns"` // from SIGTERM
	Killed       bool          `json:"killed"`        // had to be SIGKILLed
	ExitDeadline time.Duration `json:"exit_deadline_ns"`
}

// drain opens the drain streams (half short enough to finish within the
// drain timeout, half longer), waits for their first events, sends SIGTERM
// and waits for the gateway to exit.
func (e *soakEnv) drain(ctx context.Context, log *slog.Logger, c soakConfig, t *tally, rep *soakReport) {
	d := drainReport{Streams: c.drainStreams, ExitDeadline: c.drainTimeout + 30*time.Second}
	base := len(t.state) - c.drainStreams
	client := soakClient(c.drainStreams)
	defer client.CloseIdleConnections()
	url := "http://" + e.gw.addr + "/v1/chat/completions"
	const chunkDelay = 100 * time.Millisecond
	opened := make(chan struct{}, c.drainStreams)
	results := make([]result, c.drainStreams)
	var wg sync.WaitGroup
	for i := range c.drainStreams {
		length := c.drainLong
		if i%2 == 0 {
			length, d.Short = c.drainShort, d.Short+1
		}
		chunks := max(int(length/chunkDelay), 2)
		r := request{id: fmt.Sprintf("soak-%s-drain-%d", e.runID, i), model: healthyModel, stream: true,
			header: http.Header{"X-Fake-Chunks": {strconv.Itoa(chunks)}, "X-Fake-Chunk-Delay": {chunkDelay.String()}},
			opened: func() { opened <- struct{}{} }}
		r.body = fmt.Appendf(nil, `{"model":%q,"stream":true,"messages":[{"role":"user","content":"A long story, please."}]}`, r.model)
		t.sent.Add(1)
		t.state[base+i].Store(stNoAnswer)
		wg.Go(func() {
			results[i] = do(ctx, client, url, e.key, r, time.Now(), max(c.deadline, c.drainLong+30*time.Second))
			t.answer(base+i, results[i])
		})
	}
	wait := time.NewTimer(30 * time.Second)
	for d.Opened < c.drainStreams {
		select {
		case <-opened:
			d.Opened++
			continue
		case <-wait.C:
		case <-ctx.Done():
		}
		break
	}
	wait.Stop()
	sigAt := time.Now()
	log.Info("SIGTERM with streams in flight", "pid", e.gw.pid(), "open_streams", d.Opened)
	_ = e.gw.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.gw.done:
	case <-time.After(d.ExitDeadline):
		d.Killed = true
		_ = e.gw.cmd.Process.Kill()
		<-e.gw.done
	}
	d.ExitAfter, d.ExitCode = time.Since(sigAt), e.gw.exitCode()
	wg.Wait()
	for i, res := range results {
		switch {
		case res.status == 0:
			d.NoAnswer++
		case res.done:
			d.Completed++
			if i%2 == 0 {
				d.ShortDone++
			}
		default:
			d.CutByDrain++
		}
	}
	rep.Drain = d
}

// ledgerReport compares the ledger with what the clients saw.
type ledgerReport struct {
	Rows     int64            `json:"rows"`
	Answered int64            `json:"answered"`
	Outcomes map[string]int64 `json:"outcomes"` // row outcome (status) -> rows
	// Missing are answered requests without a row; Extra rows of requests
	// that got no answer; Foreign rows with ids this run did not send;
	// Duplicate ids seen twice. Up to 10 examples of each.
	Missing, Extra, Foreign, Duplicate int64
	Examples                           map[string][]string `json:"examples,omitempty"`
	SpillRows                          int64               `json:"spill_rows"` // rows left in the spill file
}

// countLedger reads every row of the run's schema directly (not through
// the relay) and matches each to its request by X-Request-Id.
func (e *soakEnv) countLedger(ctx context.Context, t *tally, rep *soakReport) error {
	conn, err := pgx.Connect(ctx, e.directDB)
	if err != nil {
		return fmt.Errorf("count ledger: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id, outcome, status FROM "+e.schema+".requests")
	if err != nil {
		return fmt.Errorf("count ledger: %w", err)
	}
	defer rows.Close()
	l := ledgerReport{Outcomes: map[string]int64{}, Examples: map[string][]string{}}
	example := func(kind, s string) {
		if len(l.Examples[kind]) < 10 {
			l.Examples[kind] = append(l.Examples[kind], s)
		}
	}
	seen := make([]bool, len(t.state))
	base := len(t.state) - rep.Drain.Streams
	prefix := "soak-" + e.runID + "-"
	for rows.Next() {
		var id, outcome string
		var status int
		if err := rows.Scan(&id, &outcome, &status); err != nil {
			return fmt.Errorf("count ledger: %w", err)
		}
		l.Rows++
		l.Outcomes[fmt.Sprintf("%s (%d)", outcome, status)]++
		i, ok := requestIndex(strings.TrimPrefix(id, prefix), base)
		switch {
		case !strings.HasPrefix(id, prefix) || !ok || i >= len(seen):
			l.Foreign++
			example("foreign", id)
		case seen[i]:
			l.Duplicate++
			example("duplicate", id)
		default:
			seen[i] = true
			if t.state[i].Load() != stAnswered {
				l.Extra++
				example("extra", fmt.Sprintf("%s: row %s %d, client %s", id, outcome, status, stateName(t.state[i].Load())))
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count ledger: %w", err)
	}
	for i := range t.state {
		if t.state[i].Load() == stAnswered && !seen[i] {
			l.Missing++
			example("missing", requestName(e.runID, i, base))
		}
	}
	l.Answered = t.answered.Load()
	l.SpillRows = countLines(filepath.Join(e.dir, "tollgate-spill.jsonl"))
	rep.Ledger = l
	return nil
}

// requestIndex parses "123" or "drain-4" into the tally index.
func requestIndex(s string, drainBase int) (int, bool) {
	if v, ok := strings.CutPrefix(s, "drain-"); ok {
		n, err := strconv.Atoi(v)
		return drainBase + n, err == nil && n >= 0
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && n < drainBase
}

func requestName(runID string, i, drainBase int) string {
	if i >= drainBase {
		return fmt.Sprintf("soak-%s-drain-%d", runID, i-drainBase)
	}
	return fmt.Sprintf("soak-%s-%d", runID, i)
}

func stateName(s uint32) string {
	switch s {
	case stAnswered:
		return "answered"
	case stNoAnswer:
		return "no answer"
	}
	return "not sent"
}

// countLines counts the lines of a file, 0 when it does not exist.
func countLines(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	return n
}
