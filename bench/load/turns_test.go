package load

import (
	"testing"
	"time"
)

// TestTurnsSum: turns add up to one run of their summed length, with the
// percentiles of every turn's latencies together.
func TestTurnsSum(t *testing.T) {
	tt := NewTurns()
	spec := tt.Spec(Spec{Name: "stream", Duration: 10 * time.Second, Workers: 4}, 2*time.Second)
	if spec.Duration != 2*time.Second || spec.Latency != tt.Latency || spec.Workers != 4 || spec.Client == nil {
		t.Fatalf("turn spec %+v", spec)
	}
	if again := tt.Spec(spec, time.Second); again.Client != spec.Client {
		t.Error("each turn got its own client: connections would be opened again every turn")
	}
	defer tt.Close()
	// Two turns: 100 fast requests, then 100 slow ones.
	for range 100 {
		tt.Latency.Record(time.Millisecond)
	}
	tt.Add(Result{Target: "tollgate", Workload: "stream", Requests: 100, Elapsed: 2 * time.Second, CPU: 100 * time.Millisecond, Proc: true, HWM: 5, RSS: 5})
	for range 100 {
		tt.Latency.Record(100 * time.Millisecond)
	}
	tt.Add(Result{Target: "tollgate", Workload: "stream", Requests: 100, Errors: 1, FirstError: "boom", Elapsed: 2 * time.Second, CPU: 300 * time.Millisecond, Proc: true, HWM: 9, RSS: 7})
	r := tt.Result()
	if r.Target != "tollgate" || r.Requests != 200 || r.Errors != 1 || r.FirstError != "boom" {
		t.Errorf("counts %+v", r)
	}
	if r.RPS != 50 {
		t.Errorf("rps %v, want 50 (200 over 4 s)", r.RPS)
	}
	if r.CPUPerRequest != 2*time.Millisecond {
		t.Errorf("cpu/request %v, want 2ms (400ms over 200)", r.CPUPerRequest)
	}
	if r.HWM != 9 || r.RSS != 7 || !r.Proc {
		t.Errorf("memory %d/%d proc %v", r.HWM, r.RSS, r.Proc)
	}
	if r.Latency.P50 > 2*time.Millisecond || r.Latency.P99 < 90*time.Millisecond {
		t.Errorf("percentiles %v / %v: not over both turns", r.Latency.P50, r.Latency.P99)
	}
	tt.Add(Result{Requests: 1, Proc: false})
	if tt.Result().Proc {
		t.Error("a turn without CPU samples leaves the sum with them")
	}
}
