package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/bench/load"
)

// The soak's traffic: 80% on a healthy model, half streamed; 20% on models
// the fake fails in every scripted way, one model per way so the gateway's
// per-(upstream, model) health sees each fault on its own model.
const healthyModel = "gpt-4o-mini"

type failKind struct {
	model  string
	stream bool
	header http.Header
}

var failKinds = []failKind{
	{"soak-fail-500", false, http.Header{"X-Fake-Status": {"500"}}},
	{"soak-fail-503", true, http.Header{"X-Fake-Status": {"503"}}},
	{"soak-fail-429", false, http.Header{"X-Fake-Status": {"429"}, "X-Fake-Retry-After": {"1"}}},
	{"soak-fail-reset", false, http.Header{"X-Fake-Reset": {"before"}}},
	{"soak-fail-midstream", true, http.Header{"X-Fake-Reset": {"after:2"}}},
}

// Per-request states, kept in one byte each so the ledger can be matched
// request by request afterwards.
const (
	stNotSent  = 0
	stNoAnswer = 1 // sent; no HTTP status came back
	stAnswered = 2 // any HTTP status (a stream cut later included)
)

// Phases a request is scheduled in, for the per-phase healthy success.
const (
	phaseNormal = iota
	phasePGOutage
	phaseRedisOutage
	numPhases
)

var phaseNames = [numPhases]string{"normal", "pg-outage", "redis-outage"}

// tally collects the outcomes of every request, from many goroutines.
type tally struct {
	state []atomic.Uint32 // per request index: stNotSent, stNoAnswer, stAnswered

	sent, answered, pastDeadline, capped atomic.Int64
	healthy, healthyOK                   [numPhases]atomic.Int64
	maxLag                               atomic.Int64 // worst lateness of a send vs its schedule, ns

	lat, streamLat, firstEvent *load.Histogram // healthy successes, from the scheduled time

	mu        sync.Mutex
	failMix   map[string]map[string]int64 // failing model -> outcome -> count
	healthBad map[string]int64            // healthy failures by outcome
	examples  map[string]string           // outcome -> first full error text
}

func newTally(n int) *tally {
	return &tally{
		state: make([]atomic.Uint32, n),
		lat:   load.NewHistogram(), streamLat: load.NewHistogram(), firstEvent: load.NewHistogram(),
		failMix: map[string]map[string]int64{}, healthBad: map[string]int64{}, examples: map[string]string{},
	}
}

// maxOutcomeKeys bounds the outcome maps whatever the errors look like.
const maxOutcomeKeys = 64

func (t *tally) note(m map[string]int64, outcome, example string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := m[outcome]; !ok && len(m) >= maxOutcomeKeys {
		outcome = "other"
	}
	m[outcome]++
	if _, ok := t.examples[outcome]; !ok && example != "" && len(t.examples) < maxOutcomeKeys {
		t.examples[outcome] = example
	}
}

func (t *tally) failMixFor(model string) map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.failMix[model]
	if m == nil {
		m = map[string]int64{}
		t.failMix[model] = m
	}
	return m
}

// result is what one request got.
type result struct {
	status   int           // 0: no HTTP status
	events   int           // SSE data events read
	done     bool          // a stream ended with [DONE]; a call's body was read whole
	err      error         // transport or read error
	total    time.Duration // from the scheduled time to the end
	first    time.Duration // from the scheduled time to the first event
	deadline bool          // the client deadline passed
}

// outcome names r for the status mix: "200", "503", "200 cut after 2 events",
// "no answer: reset".
func (r result) outcome() string {
	class := errClass(r.err)
	if r.deadline {
		class = "client deadline"
	}
	switch {
	case r.status == 0:
		return "no answer: " + class
	case r.err != nil || (r.status == http.StatusOK && !r.done):
		return fmt.Sprintf("%d cut after %d events (%s)", r.status, r.events, class)
	}
	return fmt.Sprint(r.status)
}

// errClass reduces an error to a few words without addresses, so outcome
// keys stay few. The client deadline is told apart by the caller (net
// timeouts also match context.DeadlineExceeded).
func errClass(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return "dial " + errClass(op.Err)
	}
	switch {
	case err == nil:
		return "eof"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return "other"
}

// soakClient is an HTTP/1.1 client for conns concurrent requests whose
// connects are bounded only by each request's deadline: a gateway that is
// slow to accept must show up as latency (or a missed deadline), not as a
// failure the client chose.
func soakClient(conns int) *http.Client {
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// request is one scheduled request.
type request struct {
	id     string
	model  string
	stream bool
	header http.Header
	body   []byte
	// minEvents is the SSE data events a healthy stream must carry.
	minEvents int
	// opened, if set, is called at the first SSE event.
	opened func()
}

// soakRequest builds request i of the run: every fifth fails (cycling
// through failKinds), the rest alternate call and stream.
func soakRequest(c soakConfig, runID string, i int) request {
	r := request{id: fmt.Sprintf("soak-%s-%d", runID, i), model: healthyModel, stream: i%2 == 1}
	if i%5 == 0 {
		k := failKinds[(i/5)%len(failKinds)]
		r.model, r.stream, r.header = k.model, k.stream, k.header
	} else if r.stream {
		r.header = http.Header{"X-Fake-Chunks": {fmt.Sprint(c.streamChunks)}, "X-Fake-Chunk-Delay": {c.streamDelay.String()}}
		r.minEvents = c.streamChunks
	}
	r.body = fmt.Appendf(nil, `{"model":%q,"stream":%v,"messages":[{"role":"user","content":"Say hello to the soak."}]}`, r.model, r.stream)
	return r
}

// do sends r and reads the whole answer under the client deadline.
func do(ctx context.Context, client *http.Client, url, key string, r request, due time.Time, deadline time.Duration) (res result) {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	defer func() {
		res.total = time.Since(due)
		// Runs before cancel: a deadline error here is the client's own.
		res.deadline = errors.Is(ctx.Err(), context.DeadlineExceeded)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(r.body))
	if err != nil {
		res.err = err
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Request-Id", r.id)
	for k, v := range r.header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		_, res.err = io.Copy(io.Discard, resp.Body)
		res.done = res.err == nil
		return res
	}
	res.events, res.first, res.done, res.err = readEvents(resp.Body, due, r.opened)
	return res
}

// readEvents reads SSE data events until [DONE] or the end of body.
func readEvents(body io.Reader, due time.Time, opened func()) (events int, first time.Duration, done bool, err error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 16<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		events++
		if events == 1 {
			first = time.Since(due)
			if opened != nil {
				opened()
			}
		}
		if bytes.Equal(bytes.TrimSpace(line[len("data:"):]), []byte("[DONE]")) {
			_, err = io.Copy(io.Discard, body)
			return events, first, true, err
		}
	}
	return events, first, false, sc.Err()
}

// answer files what every request counts toward: answered, past deadline.
func (t *tally) answer(i int, res result) {
	if res.status != 0 {
		t.answered.Add(1)
		t.state[i].Store(stAnswered)
	}
	if res.deadline {
		t.pastDeadline.Add(1)
	}
}

// record files one request's result.
func (t *tally) record(i, phase int, r request, res result) {
	t.answer(i, res)
	if r.model != healthyModel {
		t.note(t.failMixFor(r.model), res.outcome(), errText(res.err))
		return
	}
	t.healthy[phase].Add(1)
	ok := res.status == http.StatusOK && res.done && res.err == nil && res.events >= r.minEvents
	if !ok {
		t.note(t.healthBad, phaseNames[phase]+": "+res.outcome(), errText(res.err))
		return
	}
	t.healthyOK[phase].Add(1)
	if r.stream {
		t.streamLat.Record(res.total)
		t.firstEvent.Record(res.first)
	} else {
		t.lat.Record(res.total)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runTraffic sends the open-loop load: c.rate requests a second for
// c.duration, each at its scheduled time whatever the answers, with at most
// c.maxInFlight outstanding (a send beyond that is counted, not made). It
// returns when every request has finished. Requests 0..total-1 of t are
// the load's; phaseAt says which phase a scheduled time falls in.
func runTraffic(ctx context.Context, c soakConfig, client *http.Client, url, key, runID string, t *tally, total int, phaseAt func(time.Duration) int) {
	interval := time.Duration(float64(time.Second) / c.rate)
	sem := make(chan struct{}, c.maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	for i := range total {
		off := time.Duration(i) * interval
		due := start.Add(off)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if lag := -int64(wait); lag > t.maxLag.Load() {
			t.maxLag.Store(lag) // one writer: this loop
		}
		select {
		case sem <- struct{}{}:
		default:
			t.capped.Add(1)
			continue
		}
		t.sent.Add(1)
		t.state[i].Store(stNoAnswer)
		r, phase := soakRequest(c, runID, i), phaseAt(off)
		wg.Go(func() {
			defer func() { <-sem }()
			t.record(i, phase, r, do(ctx, client, url, key, r, due, c.deadline))
		})
	}
}
