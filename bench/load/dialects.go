package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// API is an inbound API a workload speaks: where its requests go and how its
// streams end. Run always speaks chat completions; RunAPI speaks any of
// these, so the cost of one API can be compared with another's.
type API struct {
	Name string
	// Path is appended to Target.BaseURL ("/chat/completions").
	Path string
	// End marks the last event of a stream: a data line containing it ends
	// the stream successfully.
	End string
}

// The APIs tollgate serves.
var (
	APIChat      = API{Name: "chat", Path: "/chat/completions", End: "[DONE]"}
	APIMessages  = API{Name: "messages", Path: "/messages", End: `"type":"message_stop"`}
	APIResponses = API{Name: "responses", Path: "/responses", End: `"type":"response.completed"`}
)

// RunAPI runs a closed loop (spec.Kind ClosedLoop or Streams) of spec.Body
// posted to api.Path on t, and measures it as Run does: throughput, latency
// and, when t.PID is set, the target's CPU time per request from /proc.
func RunAPI(ctx context.Context, log *slog.Logger, t Target, spec Spec, api API) (Result, error) {
	res := Result{Target: t.Name, Workload: spec.Name, Kind: spec.Kind}
	if spec.Kind != ClosedLoop && spec.Kind != Streams {
		return res, fmt.Errorf("RunAPI: %s is not a closed-loop kind", spec.Kind)
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 30 * time.Second
	}
	client := NewClient(spec.Workers)
	defer client.CloseIdleConnections()
	url := strings.TrimSuffix(t.BaseURL, "/") + api.Path

	var before ProcSample
	if t.PID > 0 {
		var err error
		if before, err = ReadProc(t.PID); err != nil {
			return res, fmt.Errorf("sample %s before %s: %w", t.Name, spec.Name, err)
		}
	}
	c := newCounters()
	start := time.Now()
	deadline := start.Add(spec.Duration)
	var wg sync.WaitGroup
	for range max(spec.Workers, 1) {
		wg.Go(func() {
			// Bounded by the deadline; the count bound guards a broken clock.
			for i := 0; i < 10_000_000 && ctx.Err() == nil && time.Now().Before(deadline); i++ {
				due := time.Now()
				rctx, cancel := context.WithTimeout(ctx, spec.Timeout)
				ttfc, err := sendAPI(rctx, client, url, spec, api, due)
				cancel()
				if err != nil {
					c.fail(err)
					continue
				}
				c.lat.Record(time.Since(due))
				if ttfc > 0 {
					c.ttfc.Record(ttfc)
				}
				c.ok.Add(1)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("%s on %s: %w", spec.Name, t.Name, err)
	}
	res.Requests, res.Errors, res.FirstError = c.ok.Load(), c.errs.Load(), c.first
	res.RPS = float64(res.Requests) / res.Elapsed.Seconds()
	res.Latency, res.FirstChunk = c.lat.Summary(), c.ttfc.Summary()
	if t.PID > 0 {
		sleepCtx(ctx, spec.Settle)
		after, err := ReadProc(t.PID)
		if err != nil {
			return res, fmt.Errorf("sample %s after %s: %w", t.Name, spec.Name, err)
		}
		res.Proc, res.CPU, res.RSS, res.HWM = true, after.CPU-before.CPU, after.RSS, after.HWM
		if res.Requests > 0 {
			res.CPUPerRequest = res.CPU / time.Duration(res.Requests)
		}
	}
	log.Debug("workload done", "target", t.Name, "workload", spec.Name, "api", api.Name, "ok", res.Requests, "errors", res.Errors)
	return res, nil
}

// sendAPI makes one request and reads the whole reply; a stream must end
// with api.End after at least spec.MinEvents data events. It returns the
// time from due to the first data event of a stream.
func sendAPI(ctx context.Context, client *http.Client, url string, spec Spec, api API, due time.Time) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(spec.Body))
	if err != nil {
		return 0, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-bench-client")
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
	return readAPIStream(resp.Body, spec.MinEvents, []byte(api.End), due)
}

// readAPIStream reads SSE lines until a data line containing end.
func readAPIStream(body io.Reader, minEvents int, end []byte, due time.Time) (time.Duration, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	var first time.Duration
	events := 0
	for {
		line, err := br.ReadSlice('\n')
		isData := bytes.HasPrefix(line, []byte("data:"))
		isEnd := isData && bytes.Contains(line, end)
		// A line longer than the buffer: skip its rest. line must not be
		// used after this, the reads reuse its memory.
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		if isData {
			if events++; events == 1 {
				first = time.Since(due)
			}
			if isEnd {
				if events < minEvents {
					return first, fmt.Errorf("stream ended after %d events, want at least %d", events, minEvents)
				}
				if _, err := io.Copy(io.Discard, br); err != nil {
					return first, fmt.Errorf("drain stream: %w", err)
				}
				return first, nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return first, fmt.Errorf("stream ended without %s after %d events", end, events)
			}
			return first, fmt.Errorf("read stream: %w", err)
		}
	}
}
