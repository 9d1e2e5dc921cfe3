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
	"sync"
	"sync/atomic"
	"time"
)

// readStream reads SSE lines until "data: [DONE]" and counts data events.
// It returns the time from due to the first data event.
func readStream(body io.Reader, minEvents int, due time.Time, opened func()) (time.Duration, error) {
	br := bufio.NewReaderSize(body, 16<<10)
	var first time.Duration
	events := 0
	for {
		line, err := br.ReadSlice('\n')
		isData := bytes.HasPrefix(line, []byte("data:"))
		isDone := isData && bytes.Equal(bytes.TrimSpace(line[len("data:"):]), []byte("[DONE]"))
		// A line longer than the buffer: skip its rest (it is not [DONE]).
		// line must not be used after this, the reads reuse its memory.
		for errors.Is(err, bufio.ErrBufferFull) {
			isDone = false
			_, err = br.ReadSlice('\n')
		}
		if isData {
			events++
			if events == 1 {
				first = time.Since(due)
				if opened != nil {
					opened()
				}
			}
			if isDone {
				if events < minEvents {
					return first, fmt.Errorf("stream ended after %d events, want at least %d", events, minEvents)
				}
				// Drain so the connection can be reused.
				if _, err := io.Copy(io.Discard, br); err != nil {
					return first, fmt.Errorf("drain stream: %w", err)
				}
				return first, nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return first, fmt.Errorf("stream ended without [DONE] after %d events", events)
			}
			return first, fmt.Errorf("read stream: %w", err)
		}
	}
}

// runIdle opens spec.Workers streams, waits for all of them to deliver a
// first event (at most spec.Timeout), holds them spec.Hold, samples pid's
// memory and then cancels every stream. A stream counts as a success if it
// opened and was still open when sampled.
func runIdle(ctx context.Context, log *slog.Logger, client *http.Client, url string, spec Spec, pid int, c *counters) (ProcSample, error) {
	n := max(spec.Workers, 1)
	hold, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		opened, failed, finished atomic.Int64
		all                      = make(chan struct{})
		allOnce                  sync.Once
		wg                       sync.WaitGroup
	)
	// all closes once every stream has opened or failed to open.
	settle := func(o, f int64) {
		if o+f >= int64(n) {
			allOnce.Do(func() { close(all) })
		}
	}
	// Stream outcomes are only known after the sample, so they are kept
	// here and tallied once the streams are cancelled.
	errs := make([]error, n)
	// At most idleOpening streams are being opened at a time: thousands of
	// simultaneous dials overflow the proxy's accept backlog and time out,
	// which measured the kernel, not the proxy's memory per stream.
	opening := make(chan struct{}, idleOpening)
	for i := range n {
		wg.Go(func() {
			select {
			case opening <- struct{}{}:
			case <-hold.Done():
				errs[i] = hold.Err()
				finished.Add(1)
				settle(opened.Load(), failed.Add(1))
				return
			}
			released := false
			release := func() {
				if !released {
					released = true
					<-opening
				}
			}
			defer release()
			due := time.Now()
			ttfc, err := send(hold, client, url, spec, due, func() {
				release()
				settle(opened.Add(1), failed.Load())
			})
			if ttfc > 0 {
				c.ttfc.Record(ttfc)
				c.lat.Record(ttfc)
			}
			errs[i] = err
			finished.Add(1)
			if ttfc == 0 && err != nil {
				// A stream that never opened must not keep the others waiting.
				settle(opened.Load(), failed.Add(1))
			}
		})
	}
	t := time.NewTimer(spec.Timeout)
	defer t.Stop()
	select {
	case <-all:
	case <-t.C:
		log.Warn("idle streams: not all opened in time", "opened", opened.Load(), "want", n)
	case <-ctx.Done():
	}
	if ctx.Err() == nil && spec.Hold > 0 {
		sleepCtx(ctx, spec.Hold)
	}
	var mem ProcSample
	var sampleErr error
	if pid > 0 {
		mem, sampleErr = ReadProc(pid)
	}
	stillOpen := int64(n) - finished.Load()
	cancel()
	wg.Wait()
	for _, err := range errs {
		// Errors caused by our own cancel are the expected end of a held
		// stream, not failures.
		if err != nil && !errors.Is(err, context.Canceled) {
			c.fail(err)
		}
	}
	c.ok.Add(uint64(max(stillOpen, 0)))
	if sampleErr != nil {
		return mem, fmt.Errorf("sample while streams open: %w", sampleErr)
	}
	return mem, ctx.Err()
}

// idleOpening bounds the streams runIdle opens at once.
const idleOpening = 256

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
