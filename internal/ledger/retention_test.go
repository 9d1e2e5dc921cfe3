package ledger

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type fakeDeleter struct {
	mu    sync.Mutex
	old   int // rows older than any cutoff asked for
	calls []int
	err   error
}

func (d *fakeDeleter) DeleteLogsBefore(_ context.Context, _ time.Time, limit int) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return 0, d.err
	}
	n := min(limit, d.old)
	d.old -= n
	d.calls = append(d.calls, n)
	return n, nil
}

func TestRetentionPass(t *testing.T) {
	tests := []struct {
		name  string
		old   int
		calls []int
	}{
		{"nothing", 0, []int{0}},
		{"one batch", 10, []int{10}},
		{"exact batch", RetentionBatch, []int{RetentionBatch, 0}},
		{"several", 2*RetentionBatch + 7, []int{RetentionBatch, RetentionBatch, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDeleter{old: tc.old}
			n, err := retentionPass(t.Context(), d, time.Now())
			if err != nil || n != tc.old {
				t.Fatalf("retentionPass = %d, %v; want %d", n, err, tc.old)
			}
			if len(d.calls) != len(tc.calls) {
				t.Fatalf("calls = %v, want %v", d.calls, tc.calls)
			}
			for i := range tc.calls {
				if d.calls[i] != tc.calls[i] {
					t.Fatalf("calls = %v, want %v", d.calls, tc.calls)
				}
			}
		})
	}
	if _, err := retentionPass(t.Context(), &fakeDeleter{err: errors.New("x")}, time.Now()); err == nil {
		t.Error("want error")
	}
}

func TestRunRetentionStops(t *testing.T) {
	d := &fakeDeleter{old: 3 * RetentionBatch}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		RunRetention(ctx, d, time.Hour, 5*time.Millisecond, slog.New(slog.DiscardHandler))
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d.mu.Lock()
		n := len(d.calls)
		d.mu.Unlock()
		if n >= 6 { // first pass: 4 calls; then periodic passes
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("retention did not run periodically")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunRetention did not return after cancel")
	}
	RunRetention(t.Context(), d, 0, time.Millisecond, slog.New(slog.DiscardHandler)) // disabled: returns at once
}
