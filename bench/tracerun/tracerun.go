// Package tracerun finds what holds a Go process's Ps for long stretches.
// It reads an execution trace (runtime/trace, or /debug/pprof/trace) and
// measures every uninterrupted run of a goroutine on a P. With the gateway
// pinned to one core (GOMAXPROCS=1) a run of 2 ms is 2 ms in which no request
// can be read or answered, so the longest runs, grouped by where they ended,
// name the source of a latency tail.
package tracerun

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// Group is the runs at or above the threshold that ended at the same stack.
type Group struct {
	End   string // the goroutine's new state and its innermost frames
	Runs  int
	Total time.Duration
	Max   time.Duration
}

// Report summarises a trace's goroutine runs.
type Report struct {
	Span    time.Duration // wall time the trace covers
	Runs    int
	Running time.Duration // sum of all runs
	// Quantiles of run length: p50, p90, p99, p99.9, max.
	Quantiles [5]time.Duration
	Long      []Group // runs >= threshold, longest total first
	// Waits are how long goroutines stayed runnable before they ran
	// (p50, p90, p99, p99.9, max): the scheduling delay requests saw.
	Waits [5]time.Duration
	// Syscalls are the system calls of at least threshold, grouped by
	// stack. With one P, a blocking call (an fsync) keeps the P until the
	// runtime's monitor takes it back, so nothing else runs meanwhile.
	Syscalls []Group
	// Kinds are the goroutines grouped by the function they run, most
	// running time first: how many runs a request costs, and how long its
	// goroutines waited to run.
	Kinds []Kind
}

// Kind is the goroutines that run one function (the outermost frame of
// their stack outside the runtime).
type Kind struct {
	Func       string
	Goroutines int
	Runs       int
	Running    time.Duration
	Waited     time.Duration // runnable, not yet running
}

// frames is how many innermost frames name a group.
const frames = 6

// Analyze reads a trace and groups the runs of at least threshold.
func Analyze(r io.Reader, threshold time.Duration) (Report, error) {
	tr, err := trace.NewReader(r)
	if err != nil {
		return Report{}, fmt.Errorf("tracerun: %w", err)
	}
	var rep Report
	running := map[trace.GoID]trace.Time{}
	runnable := map[trace.GoID]trace.Time{}
	insys := map[trace.GoID]trace.Time{}
	sysStack := map[trace.GoID]string{}
	groups, sysGroups := map[string]*Group{}, map[string]*Group{}
	gos := map[trace.GoID]*goStats{}
	var durs, waits []time.Duration
	var first, last trace.Time
	for {
		ev, err := tr.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Report{}, fmt.Errorf("tracerun: %w", err)
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		from, to := st.Goroutine()
		k := gos[id]
		if k == nil {
			k = &goStats{}
			gos[id] = k
		}
		if k.Func == "" {
			k.Func = nameOf(st, ev, from)
		}
		if s, ok := insys[id]; ok && from == trace.GoSyscall {
			if d := ev.Time().Sub(s); d >= threshold {
				add(sysGroups, sysStack[id], d)
			}
			delete(insys, id)
		}
		switch to {
		case trace.GoRunnable:
			runnable[id] = ev.Time()
		case trace.GoSyscall:
			// The runtime's own sleeps (signals, the profiler) give
			// their P up at once; they are not what requests wait for.
			if k := stackKey(st.Stack); !strings.HasPrefix(k, "runtime.notetsleepg") {
				insys[id], sysStack[id] = ev.Time(), k
			}
		}
		if to == trace.GoRunning {
			if s, ok := runnable[id]; ok {
				waits = append(waits, ev.Time().Sub(s))
				k.Waited += ev.Time().Sub(s)
				delete(runnable, id)
			}
			k.Runs++
			running[id] = ev.Time()
			continue
		}
		start, ok := running[id]
		if from != trace.GoRunning || !ok {
			continue
		}
		delete(running, id)
		d := ev.Time().Sub(start)
		durs = append(durs, d)
		rep.Running += d
		k.Running += d
		if d < threshold {
			continue
		}
		add(groups, to.String()+": "+stackKey(st.Stack), d)
	}
	rep.Span = last.Sub(first)
	rep.Runs = len(durs)
	rep.Quantiles = quantiles(durs)
	rep.Waits = quantiles(waits)
	rep.Long = sorted(groups)
	rep.Syscalls = sorted(sysGroups)
	rep.Kinds = byFunc(gos)
	return rep, nil
}

// goStats is one goroutine's share of a Kind.
type goStats Kind

// nameOf names a goroutine from a transition, or "" if this one cannot: a
// new goroutine by its start stack, one that existed before the trace began
// by its own stack when it stops running (an event another goroutine caused
// carries that one's stack).
func nameOf(st trace.StateTransition, ev trace.Event, from trace.GoState) string {
	switch from {
	case trace.GoNotExist:
		return outermost(st.Stack)
	case trace.GoRunning:
		return outermost(ev.Stack())
	}
	return ""
}

// byFunc sums the goroutines by function, most running time first.
func byFunc(gos map[trace.GoID]*goStats) []Kind {
	kinds := map[string]*Kind{}
	for _, g := range gos {
		name := g.Func
		if name == "" {
			name = "(no stack seen)"
		}
		k := kinds[name]
		if k == nil {
			k = &Kind{Func: name}
			kinds[name] = k
		}
		k.Goroutines++
		k.Runs += g.Runs
		k.Running += g.Running
		k.Waited += g.Waited
	}
	return sortedBy(kinds, func(k Kind) time.Duration { return k.Running })
}

func outermost(s trace.Stack) string {
	name := ""
	for f := range s.Frames() {
		if !strings.HasPrefix(f.Func, "runtime.") {
			name = f.Func
		}
	}
	return name
}

func add(groups map[string]*Group, key string, d time.Duration) {
	g := groups[key]
	if g == nil {
		g = &Group{End: key}
		groups[key] = g
	}
	g.Runs++
	g.Total += d
	g.Max = max(g.Max, d)
}

func quantiles(ds []time.Duration) (q [5]time.Duration) {
	if len(ds) == 0 {
		return q
	}
	slices.Sort(ds)
	for i, f := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		q[i] = ds[int(f*float64(len(ds)-1))]
	}
	return q
}

func sorted(groups map[string]*Group) []Group {
	return sortedBy(groups, func(g Group) time.Duration { return g.Total })
}

// sortedBy lists m's values, largest by first.
func sortedBy[T any](m map[string]*T, by func(T) time.Duration) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(by(b), by(a)) })
	return out
}

func stackKey(s trace.Stack) string {
	var parts []string
	for f := range s.Frames() {
		if len(parts) == frames {
			break
		}
		fn := f.Func
		if i := strings.LastIndexByte(fn, '/'); i >= 0 {
			fn = fn[i+1:]
		}
		parts = append(parts, fn)
	}
	if len(parts) == 0 {
		return "(no stack)"
	}
	return strings.Join(parts, " < ")
}

// Print writes the report as text, at most limit groups.
func (r Report) Print(w io.Writer, threshold time.Duration, limit int) {
	fmt.Fprintf(w, "trace %v: %d goroutine runs, %v running (%.0f%% of one P)\n",
		r.Span.Round(time.Millisecond), r.Runs, r.Running.Round(time.Millisecond),
		100*float64(r.Running)/float64(max(r.Span, 1)))
	fmt.Fprintf(w, "run length p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
		r.Quantiles[0], r.Quantiles[1], r.Quantiles[2], r.Quantiles[3], r.Quantiles[4])
	fmt.Fprintf(w, "runnable before running p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
		r.Waits[0], r.Waits[1], r.Waits[2], r.Waits[3], r.Waits[4])
	fmt.Fprintf(w, "runs >= %v, by how they ended (state: innermost frames):\n", threshold)
	printGroups(w, r.Long, limit, "runs")
	fmt.Fprintf(w, "system calls >= %v, by stack:\n", threshold)
	printGroups(w, r.Syscalls, limit, "calls")
	fmt.Fprintln(w, "goroutines by function (runs per goroutine: divide by requests for runs per request):")
	for i, k := range r.Kinds {
		if i == limit {
			fmt.Fprintf(w, "  ... %d more\n", len(r.Kinds)-limit)
			break
		}
		fmt.Fprintf(w, "  %6d goroutines %7d runs  running %9v  waited %9v  %s\n", k.Goroutines, k.Runs,
			k.Running.Round(time.Microsecond), k.Waited.Round(time.Microsecond), k.Func)
	}
}

func printGroups(w io.Writer, gs []Group, limit int, unit string) {
	for i, g := range gs {
		if i == limit {
			fmt.Fprintf(w, "  ... %d more\n", len(gs)-limit)
			break
		}
		fmt.Fprintf(w, "  %5d %-5s total %9v  max %9v  %s\n", g.Runs, unit,
			g.Total.Round(time.Microsecond), g.Max.Round(time.Microsecond), g.End)
	}
}
