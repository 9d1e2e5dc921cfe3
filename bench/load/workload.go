package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says how a Spec drives its target.
type Kind string

// The workload kinds.
const (
	// OpenLoop launches requests on a fixed schedule (Spec.Rate for
	// Spec.Duration) whatever the completions, and measures latency from
	// the scheduled send time so a stalled target cannot hide its queueing
	// (coordinated omission).
	OpenLoop Kind = "open"
	// ClosedLoop runs Spec.Workers workers, each sending its next request
	// as soon as the previous one finished, for Spec.Duration.
	ClosedLoop Kind = "closed"
	// Streams is ClosedLoop with streamed replies: latency is the full
	// stream, FirstChunk the time to its first SSE data event.
	Streams Kind = "stream"
	// IdleStreams opens Spec.Workers streams at once, waits until each has
	// delivered its first event, holds them Spec.Hold, samples the target
	// process's memory, then cancels them all.
	IdleStreams Kind = "idle"
)

// Spec is one workload.
type Spec struct {
	// Name labels the workload in the report ("open-1000rps").
	Name string
	Kind Kind
	// Rate is requests per second, for OpenLoop.
	Rate float64
	// Duration is how long requests are started; in-flight ones then finish.
	Duration time.Duration
	// Workers is the concurrency (ClosedLoop, Streams) or the number of
	// streams held open (IdleStreams).
	Workers int
	// Body is the JSON request body sent to {BaseURL}/chat/completions.
	Body []byte
	// Header is added to every request (the X-Fake-* controls).
	Header http.Header
	// MinEvents is how many SSE data events a stream must carry, [DONE]
	// included, to count as a success.
	MinEvents int
	// Hold is how long IdleStreams keeps the streams open before sampling.
	Hold time.Duration
	// MaxInFlight bounds the OpenLoop requests outstanding at once; a send
	// that would exceed it is counted as an error instead. Default 4096.
	MaxInFlight int
	// Timeout bounds each request. Default 30s.
	Timeout time.Duration
	// Settle is a pause after the last request and before the closing CPU
	// sample, so work the target does after answering (a batched usage
	// writer, say) is charged to this workload.
	Settle time.Duration
	// Latency and FirstChunk, when set, collect the latencies instead of
	// fresh histograms, so that runs in turns (tollgate-bench --interleave)
	// report the percentiles of all their turns together.
	Latency, FirstChunk *Histogram
	// Client, when set, is used instead of a fresh one (ClientFor), so
	// that turns reuse their connections: a fresh client a turn opened
	// every connection again each second, at the open loop's schedule.
	Client *http.Client
}

// Target is one endpoint under test.
type Target struct {
	// Name labels the target in the report ("direct", "baseline", "tollgate").
	Name string
	// BaseURL is the OpenAI base URL, e.g. http://127.0.0.1:9000/v1.
	BaseURL string
	// PID is the process whose CPU and memory are sampled; 0 for none.
	PID int
	// APIKey is sent as "Authorization: Bearer APIKey" (a gateway key);
	// "" sends a placeholder that a target without auth ignores.
	APIKey string
}

// Result is what one workload measured against one target.
type Result struct {
	Target   string `json:"target"`
	Workload string `json:"workload"`
	// Round is the 1-based round of a run with --rounds above 1, else 0.
	Round int  `json:"round,omitempty"`
	Kind  Kind `json:"kind"`
	// Rate is the open-loop rate asked for (req/s), 0 for other kinds.
	Rate float64 `json:"rate,omitempty"`
	// Streams is how many streams an IdleStreams workload tried to hold.
	Streams int `json:"streams,omitempty"`
	// Requests is the number that completed successfully.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// FirstError is the first failure seen, for diagnosis.
	FirstError string        `json:"first_error,omitempty"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	RPS        float64       `json:"rps"`
	Latency    Summary       `json:"latency"`
	// FirstChunk is the time to the first SSE data event (streams only).
	FirstChunk Summary `json:"first_chunk"`
	// Added* are filled in by Compare: this target's percentile minus the
	// direct target's for the same workload.
	AddedP50           time.Duration `json:"added_p50_ns"`
	AddedP99           time.Duration `json:"added_p99_ns"`
	AddedFirstChunkP50 time.Duration `json:"added_first_chunk_p50_ns"`
	AddedFirstChunkP99 time.Duration `json:"added_first_chunk_p99_ns"`
	HasAdded           bool          `json:"has_added"`
	// Proc reports whether the process fields below were measured.
	Proc bool `json:"proc"`
	// CPU is the target process's utime+stime during the workload, and
	// CPUPerRequest that divided by Requests.
	CPU           time.Duration `json:"cpu_ns"`
	CPUPerRequest time.Duration `json:"cpu_per_request_ns"`
	// RSS is the resident set size at the end of the workload (for
	// IdleStreams: while the streams are open); HWM the lifetime peak.
	RSS int64 `json:"rss_bytes"`
	HWM int64 `json:"hwm_bytes"`
}

// maxInFlight is MaxInFlight with its default.
func (s Spec) maxInFlight() int {
	if s.MaxInFlight <= 0 {
		return 4096
	}
	return s.MaxInFlight
}

// ClientFor returns a client with enough connections for spec.
func ClientFor(spec Spec) *http.Client {
	conns := spec.Workers
	if spec.Kind == OpenLoop {
		conns = min(spec.maxInFlight(), 1024)
	}
	return NewClient(conns)
}

// NewClient returns an HTTP/1.1 client tuned for load: enough idle
// connections for conns concurrent requests, no compression, no proxy from
// the environment (all traffic stays on loopback).
func NewClient(conns int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     32 << 10,
		ReadBufferSize:      32 << 10,
	}}
}

// counters collects outcomes from many goroutines.
type counters struct {
	ok, errs atomic.Uint64
	once     sync.Once
	first    string
	lat      *Histogram
	ttfc     *Histogram
}

func newCounters() *counters {
	return &counters{lat: NewHistogram(), ttfc: NewHistogram()}
}

func (c *counters) fail(err error) {
	c.errs.Add(1)
	c.once.Do(func() { c.first = err.Error() })
}

// Run executes spec against t with a fresh client and returns what it
// measured. It samples t.PID before and after when set. Run returns early,
// with an error, when ctx is cancelled.
func Run(ctx context.Context, log *slog.Logger, t Target, spec Spec) (Result, error) {
	res := Result{Target: t.Name, Workload: spec.Name, Kind: spec.Kind}
	switch spec.Kind {
	case OpenLoop:
		res.Rate = spec.Rate
	case IdleStreams:
		res.Streams = spec.Workers
	}
	auth := "Bearer sk-bench-client"
	if t.APIKey != "" {
		auth = "Bearer " + t.APIKey
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 30 * time.Second
	}
	spec.MaxInFlight = spec.maxInFlight()
	spec.Header = withAuth(spec.Header, auth)
	client := spec.Client
	if client == nil {
		client = ClientFor(spec)
		defer client.CloseIdleConnections()
	}
	url := strings.TrimSuffix(t.BaseURL, "/") + "/chat/completions"

	var before ProcSample
	if t.PID > 0 {
		var err error
		if before, err = ReadProc(t.PID); err != nil {
			return res, fmt.Errorf("sample %s before %s: %w", t.Name, spec.Name, err)
		}
	}
	c := newCounters()
	if spec.Latency != nil {
		c.lat = spec.Latency
	}
	if spec.FirstChunk != nil {
		c.ttfc = spec.FirstChunk
	}
	start := time.Now()
	var err error
	switch spec.Kind {
	case OpenLoop:
		err = runOpen(ctx, client, url, spec, c)
	case ClosedLoop, Streams:
		runClosed(ctx, client, url, spec, c)
	case IdleStreams:
		var mem ProcSample
		mem, err = runIdle(ctx, log, client, url, spec, t.PID, c)
		res.RSS, res.HWM = mem.RSS, mem.HWM
	default:
		err = fmt.Errorf("unknown workload kind %q", spec.Kind)
	}
	res.Elapsed = time.Since(start)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return res, fmt.Errorf("%s on %s: %w", spec.Name, t.Name, err)
	}
	res.Requests, res.Errors, res.FirstError = c.ok.Load(), c.errs.Load(), c.first
	if res.Elapsed > 0 {
		res.RPS = float64(res.Requests) / res.Elapsed.Seconds()
	}
	res.Latency, res.FirstChunk = c.lat.Summary(), c.ttfc.Summary()
	if t.PID > 0 {
		sleepCtx(ctx, spec.Settle)
		after, err := ReadProc(t.PID)
		if err != nil {
			return res, fmt.Errorf("sample %s after %s: %w", t.Name, spec.Name, err)
		}
		res.Proc = true
		res.CPU = after.CPU - before.CPU
		if res.Requests > 0 {
			res.CPUPerRequest = res.CPU / time.Duration(res.Requests)
		}
		if spec.Kind != IdleStreams {
			res.RSS = after.RSS
		}
		res.HWM = max(res.HWM, after.HWM)
	}
	log.Debug("workload done", "target", t.Name, "workload", spec.Name, "ok", res.Requests, "errors", res.Errors)
	return res, nil
}

// runOpen sends spec.Rate*spec.Duration requests on a fixed schedule.
func runOpen(ctx context.Context, client *http.Client, url string, spec Spec, c *counters) error {
	if spec.Rate <= 0 {
		return errors.New("open loop needs a positive rate")
	}
	total := int(spec.Rate * spec.Duration.Seconds())
	interval := time.Duration(float64(time.Second) / spec.Rate)
	sem := make(chan struct{}, spec.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			c.fail(fmt.Errorf("more than %d requests in flight", spec.MaxInFlight))
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			one(ctx, client, url, spec, c, due)
		})
	}
	return nil
}

// runClosed runs spec.Workers workers until spec.Duration has passed.
func runClosed(ctx context.Context, client *http.Client, url string, spec Spec, c *counters) {
	deadline := time.Now().Add(spec.Duration)
	var wg sync.WaitGroup
	for range max(spec.Workers, 1) {
		wg.Go(func() {
			// Bounded by the deadline; the count bound guards a broken clock.
			for i := 0; i < 10_000_000 && ctx.Err() == nil; i++ {
				now := time.Now()
				if !now.Before(deadline) {
					return
				}
				one(ctx, client, url, spec, c, now)
			}
		})
	}
	wg.Wait()
}

// one sends a single request scheduled at due and records its outcome.
func one(ctx context.Context, client *http.Client, url string, spec Spec, c *counters, due time.Time) {
	rctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	ttfc, err := send(rctx, client, url, spec, due, nil)
	if err != nil {
		c.fail(err)
		return
	}
	c.lat.Record(time.Since(due))
	if ttfc > 0 {
		c.ttfc.Record(ttfc)
	}
	c.ok.Add(1)
}

// send makes one request and reads the whole reply. For a stream it returns
// the time from due to the first data event, calling opened (if not nil)
// at that moment, and checks the stream ends with [DONE] after at least
// spec.MinEvents events.
func send(ctx context.Context, client *http.Client, url string, spec Spec, due time.Time, opened func()) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(spec.Body))
	if err != nil {
		return 0, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range spec.Header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if spec.MinEvents > 0 {
			return 0, fmt.Errorf("want a stream, got Content-Type %q", resp.Header.Get("Content-Type"))
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, fmt.Errorf("read body: %w", err)
		}
		return 0, nil
	}
	return readStream(resp.Body, spec.MinEvents, due, opened)
}

// withAuth returns a copy of h with the Authorization header set.
func withAuth(h http.Header, auth string) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	out.Set("Authorization", auth)
	return out
}
