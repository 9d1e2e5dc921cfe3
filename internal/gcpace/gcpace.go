// Package gcpace bounds the garbage the Go heap may grow by between
// collections, in bytes rather than as a share of the live heap.
//
// GOGC sets the heap goal as a multiple of the live heap: tollgate's 200
// lets the heap reach 3× what is live. A gateway's garbage comes from
// requests (~10 KB each), so its rate does not grow with what is live; what
// is live grows with open streams. At 10,000 open streams (~130 MB live)
// GOGC=200 allowed ~260 MB of garbage on top, and the process's memory was
// the peak heap of the last cycle. Pacing GOGC so that the headroom is at
// most Max bytes keeps the collector's cycles as rare as before while the
// live heap is small, and bounds memory when it is large.
package gcpace

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Pacer adjusts GOGC to the live heap. Its zero fields take the defaults.
type Pacer struct {
	Percent int           // GOGC while the live heap is small; default 200
	Min     int           // lowest GOGC it sets; default 50
	Max     uint64        // most garbage allowed above the live heap; default 64 MiB
	Every   time.Duration // how often the live heap is read; default 1 s
	// Live reads the live heap in bytes; nil reads runtime/metrics.
	Live func() uint64
	// Set applies a GOGC; nil is debug.SetGCPercent.
	Set func(int) int
}

// percentFor returns the GOGC for a live heap of live bytes: p.Percent until
// that would allow more than p.Max of garbage, then less, down to p.Min.
func (p *Pacer) percentFor(live uint64) int {
	pct, lo, limit := p.defaults()
	if live == 0 || live*uint64(pct)/100 <= limit {
		return pct
	}
	return int(max(uint64(lo), limit*100/live))
}

func (p *Pacer) defaults() (pct, lo int, limit uint64) {
	pct, lo, limit = p.Percent, p.Min, p.Max
	if pct <= 0 {
		pct = 200
	}
	if lo <= 0 {
		lo = 50
	}
	if limit == 0 {
		limit = 64 << 20
	}
	return pct, min(lo, pct), limit
}

// Run paces GOGC until ctx ends, then restores p.Percent.
func (p *Pacer) Run(ctx context.Context) {
	live, set := p.Live, p.Set
	if live == nil {
		live = liveHeap
	}
	if set == nil {
		set = debug.SetGCPercent
	}
	every := p.Every
	if every <= 0 {
		every = time.Second
	}
	pct, _, _ := p.defaults()
	cur := pct
	set(cur)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			set(pct)
			return
		case <-t.C:
		}
		// Only changes of a tenth or more: each applies at once, and a
		// jittering goal would move the next cycle back and forth.
		if n := p.percentFor(live()); n*10 < cur*9 || n*10 > cur*11 {
			cur = n
			set(cur)
		}
	}
}

// liveHeap is the heap the last collection marked live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
