package load

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
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
	WorkloadOpen       = "open"
	WorkloadSaturation = "saturation"
	WorkloadStream     = "stream"
	WorkloadBigBody    = "body200k"
	WorkloadIdle       = "idle"
)

// Ratios computes the targets from Compare'd results. Ratios whose
// inputs are missing are returned with a NaN value and a note.
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
	out := []Ratio{
		ratio("cpu/request @1000rps (tollgate/baseline)", WorkloadOpen, 1.25, true, cpu),
		ratio("cpu/request saturation (tollgate/baseline)", WorkloadSaturation, 1.25, true, cpu),
		ratio("saturation throughput (tollgate/baseline)", WorkloadSaturation, 0.90, false, func(t, b Result) (float64, string) {
			return div(t.RPS, b.RPS, "throughput")
		}),
		ratio("added p50 @1000rps (tollgate/baseline)", WorkloadOpen, 1.3, true, func(t, b Result) (float64, string) {
			return div(float64(t.AddedP50), float64(b.AddedP50), "added p50")
		}),
		ratio("added p99 @1000rps (tollgate/baseline)", WorkloadOpen, 1.3, true, func(t, b Result) (float64, string) {
			return div(float64(t.AddedP99), float64(b.AddedP99), "added p99")
		}),
		ratio("stream first-chunk added p50 (tollgate/baseline)", WorkloadStream, 1.3, true, func(t, b Result) (float64, string) {
			return div(float64(t.AddedFirstChunkP50), float64(b.AddedFirstChunkP50), "added first-chunk p50")
		}),
		ratio("stream first-chunk added p99 (tollgate/baseline)", WorkloadStream, 1.3, true, func(t, b Result) (float64, string) {
			return div(float64(t.AddedFirstChunkP99), float64(b.AddedFirstChunkP99), "added first-chunk p99")
		}),
	}
	idle := Ratio{Name: "idle-streams RSS, tollgate (MB)", Value: math.NaN(), Limit: 100, Max: true}
	if t, ok := get(Tollgate, WorkloadIdle); ok && t.Proc {
		idle.Value = float64(t.RSS) / (1 << 20)
	} else {
		idle.Note = "needs idle results for tollgate"
	}
	return append(out, idle)
}

// MarshalJSON writes a NaN Value as null, which encoding/json cannot do.
func (r Ratio) MarshalJSON() ([]byte, error) {
	type plain Ratio
	out := struct {
		plain
		Value *float64 `json:"value"`
		Pass  bool     `json:"pass"`
	}{plain: plain(r), Pass: r.Pass()}
	if !math.IsNaN(r.Value) {
		out.Value = &r.Value
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
	fmt.Fprintln(tw, "target check\tvalue\tlimit\tresult")
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
	Ratios  []Ratio        `json:"ratios"`
}
