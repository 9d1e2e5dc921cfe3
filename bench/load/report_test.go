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
	ms := time.Millisecond
	results := []Result{
		res(Direct, WorkloadOpen, 1000, 1*ms, 2*ms, 0, 0, 0),
		res(Baseline, WorkloadOpen, 1000, 1*ms+100*time.Microsecond, 3*ms, 0, 0, 100*time.Microsecond),
		res(Tollgate, WorkloadOpen, 1000, 1*ms+120*time.Microsecond, 4*ms, 0, 0, 120*time.Microsecond),
		res(Direct, WorkloadSaturation, 9000, 5*ms, 9*ms, 0, 0, 0),
		res(Baseline, WorkloadSaturation, 5000, 6*ms, 10*ms, 0, 0, 80*time.Microsecond),
		res(Tollgate, WorkloadSaturation, 4000, 7*ms, 12*ms, 0, 0, 120*time.Microsecond),
		res(Direct, WorkloadStream, 500, 110*ms, 120*ms, 1*ms, 2*ms, 0),
		res(Baseline, WorkloadStream, 500, 111*ms, 122*ms, 2*ms, 4*ms, 0),
		res(Tollgate, WorkloadStream, 500, 111*ms, 122*ms, 2*ms, 4*ms, 0),
		res(Tollgate, WorkloadIdle, 0, 0, 0, 0, 0, 0),
	}
	results[len(results)-1].RSS = 80 << 20
	Compare(results)
	if !results[1].HasAdded || results[1].AddedP50 != 100*time.Microsecond || results[1].AddedP99 != ms {
		t.Errorf("baseline open added = %v/%v, want 100µs/1ms", results[1].AddedP50, results[1].AddedP99)
	}
	if results[9].HasAdded {
		t.Error("idle has no direct result, yet got added latency")
	}
	want := map[string]struct {
		v    float64
		pass bool
	}{
		"cpu/request @1000rps (tollgate/baseline)":         {1.2, true},
		"cpu/request saturation (tollgate/baseline)":       {1.5, false},
		"saturation throughput (tollgate/baseline)":        {0.8, false},
		"added p50 @1000rps (tollgate/baseline)":           {1.2, true},
		"added p99 @1000rps (tollgate/baseline)":           {2, false},
		"stream first-chunk added p50 (tollgate/baseline)": {1, true},
		"stream first-chunk added p99 (tollgate/baseline)": {1, true},
		"idle-streams RSS, tollgate (MB)":                  {80, true},
	}
	ratios := Ratios(results)
	if len(ratios) != len(want) {
		t.Fatalf("got %d ratios, want %d", len(ratios), len(want))
	}
	for _, r := range ratios {
		w, ok := want[r.Name]
		if !ok {
			t.Errorf("unexpected ratio %q", r.Name)
			continue
		}
		if math.Abs(r.Value-w.v) > 1e-9 || r.Pass() != w.pass {
			t.Errorf("%s = %v (pass %v), want %v (pass %v)", r.Name, r.Value, r.Pass(), w.v, w.pass)
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
	if got := strings.Count(buf.String(), "PASS"); got != 5 {
		t.Errorf("%d PASS lines, want 5:\n%s", got, buf.String())
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
