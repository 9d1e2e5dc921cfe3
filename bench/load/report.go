package load

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Target names the report compares by.
const (
	Direct   = "direct"
	Baseline = "baseline"
	Tollgate = "tollgate"
)

// Compare fills the Added* fields of every result that has a result for the
// same workload on the direct target.
func Compare(results []Result) {
	direct := map[string]Result{}
	for _, r := range results {
		if r.Target == Direct {
			direct[r.Workload] = r
		}
	}
	for i := range results {
		d, ok := direct[results[i].Workload]
		if !ok {
			continue
		}
		r := &results[i]
		r.HasAdded = true
		r.AddedP50 = r.Latency.P50 - d.Latency.P50
		r.AddedP99 = r.Latency.P99 - d.Latency.P99
		r.AddedFirstChunkP50 = r.FirstChunk.P50 - d.FirstChunk.P50
		r.AddedFirstChunkP99 = r.FirstChunk.P99 - d.FirstChunk.P99
	}
}

// WriteTable prints results as an aligned text table, grouped by workload.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\ttarget\treq/s\tp50\tp99\t+p50\t+p99\t1st-chunk p50\tp99\t+p50\t+p99\tcpu/req\trss MB\thwm MB\terrors\t")
	for _, r := range results {
		// Idle streams are held, not completed: rate and CPU per request
		// mean nothing there, and the latency is the time to open.
		idle := r.Kind == IdleStreams
		rps := fmt.Sprintf("%.0f", r.RPS)
		if idle {
			rps = fmt.Sprintf("%d open", r.Requests)
		}
		cells := []string{r.Workload, r.Target, rps, ms(r.Latency.P50), ms(r.Latency.P99)}
		cells = append(cells, added(r.HasAdded, r.AddedP50), added(r.HasAdded, r.AddedP99))
		if r.FirstChunk.Count > 0 {
			cells = append(cells, ms(r.FirstChunk.P50), ms(r.FirstChunk.P99),
				added(r.HasAdded, r.AddedFirstChunkP50), added(r.HasAdded, r.AddedFirstChunkP99))
		} else {
			cells = append(cells, "-", "-", "-", "-")
		}
		if r.Proc {
			cpu := us(r.CPUPerRequest)
			if idle {
				cpu = "-"
			}
			cells = append(cells, cpu, mb(r.RSS), mb(r.HWM))
		} else {
			cells = append(cells, "-", "-", "-")
		}
		cells = append(cells, fmt.Sprint(r.Errors))
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "first error, %s on %s (%d errors): %s\n", r.Workload, r.Target, r.Errors, r.FirstError)
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }
func mb(b int64) string         { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func added(ok bool, d time.Duration) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%+.2fms", float64(d)/float64(time.Millisecond))
}

// Ratio is one of the targets for tollgate against the bare proxy.
type Ratio struct {
	Name string `json:"name"`
	// Value is the measured ratio (or megabytes, for the RSS check); NaN
	// when it could not be computed.
	Value float64 `json:"value"`
	// Limit is the target; Max says whether Value must be at most (true)
	// or at least (false) Limit.
	Limit float64 `json:"limit"`
	Max   bool    `json:"max"`
	// Note explains a missing value.
	Note string `json:"note,omitempty"`
	// Rounds holds each round's value when Value is their median
	// (MedianRatios).
	Rounds []float64 `json:"rounds,omitempty"`
}

// MedianRatios merges the checks of several rounds into one per check: its
// Value is the median of the rounds' values (NaN ones left out), and Rounds
// keeps them all. On a shared machine a neighbour's burst lands on one
// target's phase of one round; a median over rounds run in alternating
// target order does not let that one phase decide a check.
func MedianRatios(rounds [][]Ratio) []Ratio {
	if len(rounds) == 0 {
		return nil
	}
	out := make([]Ratio, len(rounds[0]))
	for i, first := range rounds[0] {
		r := Ratio{Name: first.Name, Limit: first.Limit, Max: first.Max, Value: math.NaN()}
		var vals []float64
		for _, round := range rounds {
			if i >= len(round) || round[i].Name != first.Name {
				continue
			}
			r.Rounds = append(r.Rounds, round[i].Value)
			if math.IsNaN(round[i].Value) {
				r.Note = round[i].Note
				continue
			}
			vals = append(vals, round[i].Value)
		}
		if n := len(vals); n > 0 {
			slices.Sort(vals)
			r.Value, r.Note = vals[n/2], ""
			if n%2 == 0 {
				r.Value = (vals[n/2-1] + vals[n/2]) / 2
			}
		}
		out[i] = r
	}
	return out
}

// Pass reports whether the ratio meets its target.
func (r Ratio) Pass() bool {
	if math.IsNaN(r.Value) {
		return false
	}
	if r.Max {
		return r.Value <= r.Limit
	}
	return r.Value >= r.Limit
}

// Workload names the ratios look for; the tool names its workloads so.
const (
	WorkloadOpen       = "open"      // open loop at the base rate (1000 req/s)
	WorkloadOpenHigh   = "open-high" // open loop at the high rate (2000 req/s)
	WorkloadSaturation = "saturation"
	WorkloadStream     = "stream"
	WorkloadBigBody    = "body200k"
	WorkloadIdle       = "idle"
)

// Memory targets of issue 14, in MB (2^20 bytes).
const (
	// SteadyRSSLimit bounds tollgate's RSS at the end of the high-rate
	// open loop (2000 req/s).
	SteadyRSSLimit = 60
	// IdleRSSAt10k is the idle-streams target: 10,000 open streams in
	// less than 300 MB. For other stream counts it scales as a fixed base
	// (SteadyRSSLimit) plus the rest per stream: 24 KiB or so each.
	IdleRSSAt10k = 300
)

// IdleRSSLimit is the idle-streams RSS target for n open streams:
// SteadyRSSLimit + (IdleRSSAt10k-SteadyRSSLimit)·n/10000 MB, so 84 MB at
// 1000 streams, 276 MB at 9000 and 300 MB at 10,000.
func IdleRSSLimit(n int) float64 {
	return SteadyRSSLimit + float64(IdleRSSAt10k-SteadyRSSLimit)*float64(n)/10000
}

// Ratios computes issue 14's targets from the results: tollgate against
// the bare proxy for latency (p50 ≤ 1.1×, p99 ≤ 1.3× at the base and the
// high rate), saturation throughput (≥ 1.0×) and CPU per request (≤ 1.0×),
// the 200 KB body (CPU ≤ 1.3×) and streams (CPU ≤ 1.1×); and tollgate's
// own RSS with idle streams open and at the high rate. Ratios whose inputs
// are missing are returned with a NaN value and a note.
func Ratios(results []Result) []Ratio {
	get := func(target, workload string) (Result, bool) {
		for _, r := range results {
			if r.Target == target && r.Workload == workload {
				return r, true
			}
		}
		return Result{}, false
	}
	ratio := func(name, workload string, limit float64, isMax bool, f func(t, b Result) (float64, string)) Ratio {
		out := Ratio{Name: name, Value: math.NaN(), Limit: limit, Max: isMax}
		t, ok1 := get(Tollgate, workload)
		b, ok2 := get(Baseline, workload)
		if !ok1 || !ok2 {
			out.Note = "needs " + workload + " results for tollgate and baseline"
			return out
		}
		out.Value, out.Note = f(t, b)
		return out
	}
	div := func(a, b float64, what string) (float64, string) {
		if b <= 0 {
			return math.NaN(), "baseline " + what + " is not positive"
		}
		return a / b, ""
	}
	cpu := func(t, b Result) (float64, string) {
		if !t.Proc || !b.Proc {
			return math.NaN(), "no CPU samples"
		}
		return div(float64(t.CPUPerRequest), float64(b.CPUPerRequest), "CPU per request")
	}
	p50 := func(t, b Result) (float64, string) {
		return div(float64(t.Latency.P50), float64(b.Latency.P50), "p50")
	}
	p99 := func(t, b Result) (float64, string) {
		return div(float64(t.Latency.P99), float64(b.Latency.P99), "p99")
	}
	rate := func(workload, fallback string) string {
		if r, ok := get(Tollgate, workload); ok && r.Rate > 0 {
			return fmt.Sprintf("@%.0frps", r.Rate)
		}
		return fallback
	}
	base, high := rate(WorkloadOpen, "open"), rate(WorkloadOpenHigh, "open-high")
	out := []Ratio{
		ratio("p50 "+base+" (tollgate/baseline)", WorkloadOpen, 1.1, true, p50),
		ratio("p99 "+base+" (tollgate/baseline)", WorkloadOpen, 1.3, true, p99),
		ratio("p50 "+high+" (tollgate/baseline)", WorkloadOpenHigh, 1.1, true, p50),
		ratio("p99 "+high+" (tollgate/baseline)", WorkloadOpenHigh, 1.3, true, p99),
		ratio("saturation throughput (tollgate/baseline)", WorkloadSaturation, 1.0, false, func(t, b Result) (float64, string) {
			return div(t.RPS, b.RPS, "throughput")
		}),
		ratio("cpu/request saturation (tollgate/baseline)", WorkloadSaturation, 1.0, true, cpu),
		ratio("cpu/request 200KB body (tollgate/baseline)", WorkloadBigBody, 1.3, true, cpu),
		ratio("cpu/stream (tollgate/baseline)", WorkloadStream, 1.1, true, cpu),
	}
	idle := Ratio{Name: "idle-streams RSS, tollgate (MB)", Value: math.NaN(), Limit: IdleRSSLimit(10000), Max: true}
	if t, ok := get(Tollgate, WorkloadIdle); ok && t.Proc {
		n := cmp.Or(t.Streams, int(t.Requests))
		idle.Name = fmt.Sprintf("RSS with %d idle streams, tollgate (MB)", n)
		idle.Value, idle.Limit = float64(t.RSS)/(1<<20), IdleRSSLimit(n)
	} else {
		idle.Note = "needs idle results for tollgate"
	}
	steady := Ratio{Name: "steady-state RSS " + high + ", tollgate (MB)", Value: math.NaN(), Limit: SteadyRSSLimit, Max: true}
	if t, ok := get(Tollgate, WorkloadOpenHigh); ok && t.Proc {
		steady.Value = float64(t.RSS) / (1 << 20)
	} else {
		steady.Note = "needs open-high results for tollgate"
	}
	return append(out, idle, steady)
}

// MarshalJSON writes a NaN Value as null, which encoding/json cannot do.
func (r Ratio) MarshalJSON() ([]byte, error) {
	type plain Ratio
	out := struct {
		plain
		Value  *float64   `json:"value"`
		Pass   bool       `json:"pass"`
		Rounds []*float64 `json:"rounds,omitempty"` // null where a round had no value
	}{plain: plain(r), Pass: r.Pass()}
	if !math.IsNaN(r.Value) {
		out.Value = &r.Value
	}
	for i := range r.Rounds {
		var v *float64
		if !math.IsNaN(r.Rounds[i]) {
			v = &r.Rounds[i]
		}
		out.Rounds = append(out.Rounds, v)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("marshal ratio: %w", err)
	}
	return b, nil
}

// WriteRatios prints the ratios with PASS/FAIL against their targets.
func WriteRatios(w io.Writer, ratios []Ratio) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rounds := slices.ContainsFunc(ratios, func(r Ratio) bool { return len(r.Rounds) > 0 })
	if rounds {
		fmt.Fprintln(tw, "target check\tmedian\trounds\tlimit\tresult")
	} else {
		fmt.Fprintln(tw, "target check\tvalue\tlimit\tresult")
	}
	for _, r := range ratios {
		op := ">="
		if r.Max {
			op = "<="
		}
		val, verdict := fmt.Sprintf("%.2f", r.Value), "FAIL"
		if math.IsNaN(r.Value) {
			val, verdict = "n/a", "n/a ("+r.Note+")"
		} else if r.Pass() {
			verdict = "PASS"
		}
		if rounds {
			each := make([]string, len(r.Rounds))
			for i, v := range r.Rounds {
				each[i] = fmt.Sprintf("%.2f", v)
			}
			val += "\t" + strings.Join(each, " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %.2f\t%s\n", r.Name, val, op, r.Limit, verdict)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write ratios: %w", err)
	}
	return nil
}

// Report is the --json output.
type Report struct {
	Started time.Time      `json:"started"`
	Config  map[string]any `json:"config"`
	Results []Result       `json:"results"`
	// Ratios are the checks, or with more than one round their medians;
	// RoundRatios then holds each round's.
	Ratios      []Ratio   `json:"ratios"`
	RoundRatios [][]Ratio `json:"round_ratios,omitempty"`
}
