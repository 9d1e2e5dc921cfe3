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
//
// A large live heap that stops growing (streams opened in a burst, then
// quiet) also keeps what the burst's garbage took until a collection runs,
// and with nothing allocating the runtime forces one only after two
// minutes. The pacer runs one sooner (Quiet): after it the scavenger hands
// back to the system what the heap no longer uses (10,000 idle streams
// over HTTP/2, 15 s after they opened: 335 -> 319 MB, docs/perf.md).
package gcpace

import (
	"context"
	"runtime"
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
	// Quiet is how long a paced heap (one too large for Percent) may go
	// without a collection before the pacer runs one; each such collection
	// doubles the wait until the heap collects on its own again (the
	// runtime forces one every 2 minutes anyway). Default 5 s; negative
	// turns it off.
	Quiet time.Duration
	// Live reads the live heap in bytes; nil reads runtime/metrics.
	Live func() uint64
	// Set applies a GOGC; nil is debug.SetGCPercent.
	Set func(int) int
	// Cycles reads how many collections have completed; nil reads
	// runtime/metrics. Collect runs one; nil is runtime.GC.
	Cycles  func() uint64
	Collect func()
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
	q := p.quiet()
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
		n := p.percentFor(live())
		if n*10 < cur*9 || n*10 > cur*11 {
			cur = n
			set(cur)
		}
		q.tick(time.Now(), n < pct)
	}
}

// quietGC runs a collection when a paced heap has gone without one for
// wait, doubling wait after each it runs.
type quietGC struct {
	base, wait time.Duration // wait 0: off
	cycles     func() uint64
	collect    func()
	last       uint64    // collections completed when last seen
	since      time.Time // when last changed, or the pacer's own ran
}

func (p *Pacer) quiet() *quietGC {
	q := &quietGC{base: p.Quiet, cycles: p.Cycles, collect: p.Collect, since: time.Now()}
	if q.base == 0 {
		q.base = 5 * time.Second
	}
	if q.base < 0 {
		q.base = 0
	}
	if q.cycles == nil {
		q.cycles = gcCycles
	}
	if q.collect == nil {
		q.collect = runtime.GC
	}
	q.wait = q.base
	q.last = q.cycles()
	return q
}

func (q *quietGC) tick(now time.Time, paced bool) {
	if q.wait == 0 {
		return
	}
	if c := q.cycles(); c != q.last {
		q.last, q.since, q.wait = c, now, q.base // the heap collected on its own
		return
	}
	if !paced || now.Sub(q.since) < q.wait {
		return
	}
	q.collect()
	q.last, q.since = q.cycles(), now
	q.wait = min(2*q.wait, 2*time.Minute)
}

// gcCycles is how many collections have completed.
func gcCycles() uint64 { return readUint64("/gc/cycles/total:gc-cycles") }

// liveHeap is the heap the last collection marked live.
func liveHeap() uint64 { return readUint64("/gc/heap/live:bytes") }

// readUint64 reads one runtime/metrics counter, 0 if the runtime has none.
func readUint64(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
