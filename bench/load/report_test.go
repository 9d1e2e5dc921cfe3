package load

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func res(target, workload string, rps float64, p50, p99, fc50, fc99, cpu time.Duration) Result {
	return Result{
		Target: target, Workload: workload, Kind: ClosedLoop, RPS: rps, Requests: 100,
		Latency:    Summary{Count: 100, P50: p50, P99: p99},
		FirstChunk: Summary{Count: 100, P50: fc50, P99: fc99},
		Proc:       target != Direct, CPUPerRequest: cpu, RSS: 50 << 20, HWM: 60 << 20,
	}
}

func TestCompareAndRatios(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	results := []Result{
		res(Direct, WorkloadOpen, 1000, 1*ms, 2*ms, 0, 0, 0),
		res(Baseline, WorkloadOpen, 1000, 1*ms+100*us, 3*ms, 0, 0, 100*us),
		res(Tollgate, WorkloadOpen, 1000, 1*ms+200*us, 3900*us, 0, 0, 120*us),
		res(Baseline, WorkloadOpenHigh, 2000, 1*ms, 4*ms, 0, 0, 90*us),
		res(Tollgate, WorkloadOpenHigh, 2000, 1200*us, 6*ms, 0, 0, 90*us),
		res(Direct, WorkloadSaturation, 9000, 5*ms, 9*ms, 0, 0, 0),
		res(Baseline, WorkloadSaturation, 5000, 6*ms, 10*ms, 0, 0, 80*us),
		res(Tollgate, WorkloadSaturation, 4000, 7*ms, 12*ms, 0, 0, 120*us),
		res(Direct, WorkloadStream, 500, 110*ms, 120*ms, 1*ms, 2*ms, 0),
		res(Baseline, WorkloadStream, 500, 111*ms, 122*ms, 2*ms, 4*ms, 600*us),
		res(Tollgate, WorkloadStream, 500, 111*ms, 122*ms, 2*ms, 4*ms, 630*us),
		res(Baseline, WorkloadBigBody, 400, 30*ms, 90*ms, 0, 0, 400*us),
		res(Tollgate, WorkloadBigBody, 400, 30*ms, 90*ms, 0, 0, 560*us),
		res(Tollgate, WorkloadIdle, 0, 0, 0, 0, 0, 0),
	}
	results[3].Rate, results[4].Rate = 2000, 2000
	results[4].RSS = 70 << 20
	idle := &results[len(results)-1]
	idle.RSS, idle.Streams = 80<<20, 1000
	Compare(results)
	if !results[1].HasAdded || results[1].AddedP50 != 100*us || results[1].AddedP99 != ms {
		t.Errorf("baseline open added = %v/%v, want 100µs/1ms", results[1].AddedP50, results[1].AddedP99)
	}
	if idle.HasAdded {
		t.Error("idle has no direct result, yet got added latency")
	}
	want := map[string]struct {
		v     float64
		limit float64
		pass  bool
	}{
		"p50 open (tollgate/baseline)":               {1.2 / 1.1, 1.1, true},
		"p99 open (tollgate/baseline)":               {1.3, 1.3, true},
		"p50 @2000rps (tollgate/baseline)":           {1.2, 1.1, false},
		"p99 @2000rps (tollgate/baseline)":           {1.5, 1.3, false},
		"saturation throughput (tollgate/baseline)":  {0.8, 1.0, false},
		"cpu/request saturation (tollgate/baseline)": {1.5, 1.0, false},
		"cpu/request 200KB body (tollgate/baseline)": {1.4, 1.3, false},
		"cpu/stream (tollgate/baseline)":             {1.05, 1.1, true},
		"RSS with 1000 idle streams, tollgate (MB)":  {80, 84, true},
		"steady-state RSS @2000rps, tollgate (MB)":   {70, 60, false},
	}
	ratios := Ratios(results)
	if len(ratios) != len(want) {
		t.Fatalf("got %d ratios, want %d: %+v", len(ratios), len(want), ratios)
	}
	for _, r := range ratios {
		w, ok := want[r.Name]
		if !ok {
			t.Errorf("unexpected ratio %q", r.Name)
			continue
		}
		if math.Abs(r.Value-w.v) > 1e-9 || r.Limit != w.limit || r.Pass() != w.pass {
			t.Errorf("%s = %v (limit %v, pass %v), want %v (limit %v, pass %v)", r.Name, r.Value, r.Limit, r.Pass(), w.v, w.limit, w.pass)
		}
	}

	var buf bytes.Buffer
	if err := WriteTable(&buf, results); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"saturation", "+0.10ms", "120µs", "50.0", "60.0", "2.00ms"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, buf.String())
		}
	}
	buf.Reset()
	if err := WriteRatios(&buf, ratios); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "PASS"); got != 4 {
		t.Errorf("%d PASS lines, want 4:\n%s", got, buf.String())
	}
}

func TestIdleRSSLimit(t *testing.T) {
	tests := []struct {
		streams int
		want    float64
	}{
		{10000, 300}, {9000, 276}, {1000, 84}, {200, 64.8}, {0, 60},
	}
	for _, tt := range tests {
		if got := IdleRSSLimit(tt.streams); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("IdleRSSLimit(%d) = %v, want %v", tt.streams, got, tt.want)
		}
	}
}

func TestRatiosMissingInputs(t *testing.T) {
	// Only direct and baseline ran: every ratio is n/a, and the report
	// still encodes to JSON (NaN becomes null).
	results := []Result{res(Direct, WorkloadOpen, 1, 1, 1, 0, 0, 0), res(Baseline, WorkloadOpen, 1, 2, 2, 0, 0, 0)}
	Compare(results)
	ratios := Ratios(results)
	for _, r := range ratios {
		if !math.IsNaN(r.Value) || r.Note == "" || r.Pass() {
			t.Errorf("%s = %v note %q, want NaN with a note", r.Name, r.Value, r.Note)
		}
	}
	b, err := json.Marshal(Report{Results: results, Ratios: ratios})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"value":null`) {
		t.Errorf("NaN not encoded as null: %s", b)
	}
}

func TestMedianRatios(t *testing.T) {
	nan := math.NaN()
	round := func(vals ...float64) []Ratio {
		out := make([]Ratio, len(vals))
		for i, v := range vals {
			out[i] = Ratio{Name: string(rune('a' + i)), Value: v, Limit: 1.3, Max: true}
			if math.IsNaN(v) {
				out[i].Note = "missing"
			}
		}
		return out
	}
	tests := []struct {
		name   string
		rounds [][]Ratio
		want   []float64 // per check; NaN = no value
	}{
		{"one round", [][]Ratio{round(1.2, 0.9)}, []float64{1.2, 0.9}},
		{"odd count picks the middle", [][]Ratio{round(1.5, 1), round(1.1, 3), round(1.2, 2)}, []float64{1.2, 2}},
		{"even count averages the middle two", [][]Ratio{round(1.0), round(2.0), round(1.4), round(1.2)}, []float64{1.3}},
		{"NaN rounds are left out", [][]Ratio{round(nan), round(1.4), round(1.0)}, []float64{1.2}},
		{"all NaN stays NaN with its note", [][]Ratio{round(nan), round(nan)}, []float64{nan}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MedianRatios(tc.rounds)
			if len(got) != len(tc.want) {
				t.Fatalf("%d checks, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if math.IsNaN(w) != math.IsNaN(g.Value) || !math.IsNaN(w) && math.Abs(g.Value-w) > 1e-9 {
					t.Errorf("check %d: median %v, want %v", i, g.Value, w)
				}
				if math.IsNaN(w) && g.Note == "" {
					t.Errorf("check %d: no note for a missing value", i)
				}
				if len(g.Rounds) != len(tc.rounds) || g.Limit != 1.3 || !g.Max {
					t.Errorf("check %d: rounds %v limit %v max %v", i, g.Rounds, g.Limit, g.Max)
				}
			}
		})
	}
}

func TestWriteRatiosWithRounds(t *testing.T) {
	med := MedianRatios([][]Ratio{
		{{Name: "p99", Value: 1.5, Limit: 1.3, Max: true}},
		{{Name: "p99", Value: 1.1, Limit: 1.3, Max: true}},
		{{Name: "p99", Value: 1.2, Limit: 1.3, Max: true}},
	})
	var buf bytes.Buffer
	if err := WriteRatios(&buf, med); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"median", "rounds", "1.20", "1.50 1.10 1.20", "PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
