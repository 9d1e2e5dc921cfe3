package gcpace

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	p := &Pacer{}
	tests := []struct {
		live uint64
		want int
	}{
		{0, 200},        // nothing known yet
		{10 * mib, 200}, // 20 MiB of garbage allowed: under 64
		{32 * mib, 200}, // exactly 64
		{64 * mib, 100}, // 64 of garbage on 64 live
		{128 * mib, 50}, // 64 on 128
		{512 * mib, 50}, // floor
		{40 * mib, 160}, // 64 / 40
	}
	for _, tc := range tests {
		if got := p.percentFor(tc.live); got != tc.want {
			t.Errorf("live %d MiB: GOGC %d, want %d", tc.live/mib, got, tc.want)
		}
	}
	custom := &Pacer{Percent: 100, Min: 80, Max: 10 * mib}
	if got := custom.percentFor(100 * mib); got != 80 {
		t.Errorf("custom floor: %d, want 80", got)
	}
}

// TestRun: the pacer follows the live heap, ignores small moves, and puts
// the base percent back when it stops.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const mib = 1 << 20
		var mu sync.Mutex
		live := uint64(10 * mib)
		var sets []int
		p := &Pacer{
			Quiet: -1, // TestQuietCollection's; here no collection runs
			Live:  func() uint64 { mu.Lock(); defer mu.Unlock(); return live },
			Set:   func(n int) int { mu.Lock(); defer mu.Unlock(); sets = append(sets, n); return 0 },
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		step := func(l uint64) {
			mu.Lock()
			live = l
			mu.Unlock()
			time.Sleep(time.Second)
			synctest.Wait()
		}
		step(10 * mib)  // 200: no change
		step(128 * mib) // 50
		step(124 * mib) // 51: under a tenth, kept at 50
		step(20 * mib)  // 200
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		want := []int{200, 50, 200, 200}
		if len(sets) != len(want) {
			t.Fatalf("sets %v, want %v", sets, want)
		}
		for i := range want {
			if sets[i] != want[i] {
				t.Fatalf("sets %v, want %v", sets, want)
			}
		}
	})
}

// TestQuietCollection: a paced heap that goes without a collection gets
// one after Quiet, then after twice as long each time, until the heap
// collects on its own again; a heap small enough for Percent never does.
func TestQuietCollection(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		live    uint64
		natural []int // seconds at which the heap collects on its own
		want    []int // seconds at which the pacer collects
	}{
		{"paced, quiet", 128 * mib, nil, []int{5, 15, 35}},
		// The collection after second 12 is seen at the tick of 13.
		{"paced, a natural collection resets the wait", 128 * mib, []int{12}, []int{5, 18, 28}},
		{"small heap", 10 * mib, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var cycles uint64
				var got []int
				start := time.Now()
				p := &Pacer{
					Live:   func() uint64 { return tt.live },
					Set:    func(int) int { return 0 },
					Cycles: func() uint64 { mu.Lock(); defer mu.Unlock(); return cycles },
					Collect: func() {
						mu.Lock()
						defer mu.Unlock()
						cycles++
						got = append(got, int(time.Since(start).Round(time.Second)/time.Second))
					},
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { p.Run(ctx); close(done) }()
				for s := 1; s <= 40; s++ {
					time.Sleep(time.Second)
					synctest.Wait()
					for _, n := range tt.natural {
						if n == s {
							mu.Lock()
							cycles++
							mu.Unlock()
						}
					}
				}
				cancel()
				<-done
				mu.Lock()
				defer mu.Unlock()
				if len(got) != len(tt.want) {
					t.Fatalf("collected at %v s, want %v", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("collected at %v s, want %v", got, tt.want)
					}
				}
			})
		})
	}
}

// TestRuntimeMetrics: the metric names the pacer reads exist, so it does
// not pace on zeros.
func TestRuntimeMetrics(t *testing.T) {
	before := gcCycles()
	keep := make([]byte, 1<<20)
	runtime.GC()
	if after := gcCycles(); after <= before {
		t.Errorf("collections %d after runtime.GC, %d before", after, before)
	}
	if live := liveHeap(); live < 1<<20 {
		t.Errorf("live heap %d bytes with 1 MiB kept", live)
	}
	runtime.KeepAlive(keep)
}
