package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestResultFailed(t *testing.T) {
	tests := []struct {
		r    Result
		want bool
	}{
		{Result{Status: 200}, false},
		{Result{Status: 400}, false},
		{Result{Status: 401}, false},
		{Result{Status: 404}, false},
		{Result{Status: 429}, false}, // cools down instead
		{Result{Status: 408}, true},
		{Result{Status: 501}, false},
		{Result{Status: 500}, true},
		{Result{Status: 503}, true},
		{Result{Err: errors.New("connection reset")}, true},
		{Result{Err: context.DeadlineExceeded}, true},
	}
	for _, tt := range tests {
		if got := tt.r.Failed(); got != tt.want {
			t.Errorf("%+v.Failed() = %v; want %v", tt.r, got, tt.want)
		}
	}
}

func TestBreakerConsecutiveFailures(t *testing.T) {
	clk := newFakeClock()
	var changes []string
	p := mustPool(t, Options{
		Upstreams: ups("a", "b"),
		Routing:   Routing{Strategy: StrategyPriority},
		Now:       clk.Now,
		OnStateChange: func(name string, from, to State) {
			changes = append(changes, fmt.Sprintf("%s:%s->%s", name, from, to))
		},
	})
	a := p.Upstream("a")
	// 4 failures, a success (resets the run), then 4 more: still closed.
	for range 4 {
		run(t, a, failResult)
	}
	run(t, a, Result{Status: 404}) // client's fault: counts as success
	for range 4 {
		run(t, a, failResult)
	}
	run(t, a, Result{Status: 429, RetryAfter: time.Nanosecond}) // neither failure nor success
	clk.Advance(time.Millisecond)
	if got := pairState(p, "a", "m"); got != StateClosed {
		t.Fatalf("after 4 consecutive failures State = %s; want closed", got)
	}
	run(t, a, Result{Status: 502})
	if got := pairState(p, "a", "m"); got != StateOpen {
		t.Fatalf("after 5 consecutive failures State = %s; want open", got)
	}
	// Only the pair is open: the upstream and its other models are fine.
	if got := a.State(); got != StateClosed {
		t.Errorf("upstream State = %s; want closed (one model failing)", got)
	}
	runModel(t, a, "other", okResult) // would be refused if the upstream were open
	if _, err := a.AcquireModel(t.Context(), "m", time.Second); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Acquire on open circuit = %v; want ErrCircuitOpen", err)
	}
	if got := names(mustPlan(t, p, "m")); !cmp.Equal(got, []string{"b:m", "a:m"}) {
		t.Errorf("Plan with (a,m) open = %v; want a last", got)
	}
	if got := names(mustPlan(t, p, "other")); !cmp.Equal(got, []string{"a:other", "b:other"}) {
		t.Errorf("Plan for another model = %v; want a first (priority)", got)
	}

	clk.Advance(29 * time.Second)
	if _, err := a.AcquireModel(t.Context(), "m", 0); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Acquire during cool-down = %v; want ErrCircuitOpen", err)
	}
	clk.Advance(time.Second)
	if got := pairState(p, "a", "m"); got != StateHalfOpen {
		t.Fatalf("after cool-down State = %s; want half_open", got)
	}
	if got := names(mustPlan(t, p, "m")); !cmp.Equal(got, []string{"a:m", "b:m"}) {
		t.Errorf("Plan with a half-open = %v; want a back in priority place for its probe", got)
	}
	probe, err := a.AcquireModel(t.Context(), "m", 0)
	if err != nil {
		t.Fatalf("probe Acquire = %v", err)
	}
	if _, err := a.AcquireModel(t.Context(), "m", 0); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("second Acquire while probing = %v; want ErrCircuitOpen", err)
	}
	probe.Done(failResult)
	if got := pairState(p, "a", "m"); got != StateOpen {
		t.Fatalf("after failed probe State = %s; want open", got)
	}
	clk.Advance(30 * time.Second)
	run(t, a, okResult) // the probe succeeds
	if got := pairState(p, "a", "m"); got != StateClosed {
		t.Fatalf("after successful probe State = %s; want closed", got)
	}
	if len(changes) != 0 {
		t.Errorf("upstream-level state changes %v; want none (only the pair changed)", changes)
	}
}

func mustPlan(t *testing.T, p *Pool, model string) []Target {
	t.Helper()
	plan, err := p.Plan(model)
	if err != nil {
		t.Fatalf("Plan(%q): %v", model, err)
	}
	return plan
}

func TestBreakerErrorRatio(t *testing.T) {
	// Consecutive failures never trip here (every failure is followed by a
	// success); only the ratio over the window can.
	tests := []struct {
		name     string
		pairs    int           // fail+success pairs
		gap      time.Duration // clock advance between pairs
		ratio    float64
		wantOpen bool
	}{
		{"50% of 20 trips", 10, 0, 0, true},
		{"50% of 18 is below min_requests", 9, 0, 0, false},
		{"old results age out of the window", 10, 4 * time.Second, 0, false},
		{"ratio 0.6 not reached", 10, 0, 0.6, false},
		{"ratio trigger disabled", 20, 0, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := mustPool(t, Options{Upstreams: ups("a"), Now: clk.Now,
				Breaker: BreakerOptions{FailureRatio: tt.ratio, Window: 10 * time.Second}})
			a := p.Upstream("a")
			for range tt.pairs {
				// Success first, so the pair ends on a failure where the
				// ratio is judged.
				run(t, a, okResult)
				run(t, a, failResult)
				clk.Advance(tt.gap)
			}
			if got := pairState(p, "a", "m") == StateOpen; got != tt.wantOpen {
				t.Errorf("open = %v; want %v (status %+v)", got, tt.wantOpen, p.Status()[0])
			}
		})
	}
}

func TestCancelledResultsDoNotCount(t *testing.T) {
	clk := newFakeClock()
	p := mustPool(t, Options{Upstreams: ups("a"), Now: clk.Now})
	a := p.Upstream("a")
	for i := range 20 {
		r := Result{Cancelled: true, Status: 502}
		if i%2 == 1 {
			r = Result{Err: fmt.Errorf("read body: %w", context.Canceled)}
		}
		run(t, a, r)
	}
	st := p.Status()[0]
	if st.State != StateClosed || st.Requests != 0 || st.Failures != 0 || st.InFlight != 0 || st.LastError != "" {
		t.Errorf("after cancelled attempts Status = %+v; want untouched and closed", st)
	}
	if ps := pairStatus(p, "a", "m"); ps.State != StateClosed || ps.Requests != 0 {
		t.Errorf("after cancelled attempts pair = %+v; want untouched", ps)
	}
	// A cancelled probe frees the probe slot without deciding anything.
	for range 5 {
		run(t, a, failResult)
	}
	clk.Advance(time.Minute)
	run(t, a, Result{Cancelled: true})
	if got := pairState(p, "a", "m"); got != StateHalfOpen {
		t.Fatalf("after cancelled probe State = %s; want half_open", got)
	}
	run(t, a, okResult)
	if got := pairState(p, "a", "m"); got != StateClosed {
		t.Errorf("after successful probe State = %s; want closed", got)
	}
}

func TestStaleResultsIgnoredByBreaker(t *testing.T) {
	clk := newFakeClock()
	p := mustPool(t, Options{Upstreams: ups("a"), Now: clk.Now})
	a := p.Upstream("a")
	long, err := a.AcquireModel(t.Context(), "m", 0) // e.g. a stream started while healthy
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		run(t, a, failResult)
	}
	long.Done(okResult) // must not close the circuit it predates
	long.Done(okResult) // second Done is a no-op
	st := pairStatus(p, "a", "m")
	if st.State != StateOpen || st.InFlight != 0 || st.Requests != 6 {
		t.Errorf("Status = %+v; want open, 0 in flight, 6 requests", st)
	}
}

func TestMaxParallel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := ups("a")
		cfg[0].MaxParallel = 1
		p := mustPool(t, Options{Upstreams: cfg})
		u := p.Upstream("a")
		held, err := u.Acquire(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Acquire(t.Context(), 0); !errors.Is(err, ErrSaturated) {
			t.Fatalf("Acquire(wait 0) when full = %v; want ErrSaturated", err)
		}
		start := time.Now()
		if _, err := u.Acquire(t.Context(), 100*time.Millisecond); !errors.Is(err, ErrSaturated) {
			t.Fatalf("Acquire(wait 100ms) when full = %v; want ErrSaturated", err)
		}
		if waited := time.Since(start); waited != 100*time.Millisecond {
			t.Errorf("Acquire waited %v; want 100ms", waited)
		}

		// A waiter gets the slot as soon as it frees.
		got := make(chan error, 1)
		go func() {
			a, err := u.Acquire(t.Context(), time.Second)
			if err == nil {
				// Release before reporting: the test takes the slot again next.
				a.Done(okResult)
			}
			got <- err
		}()
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if p.Status()[0].InFlight != 1 {
			t.Fatalf("in flight = %d; want 1 while the waiter waits", p.Status()[0].InFlight)
		}
		start = time.Now()
		held.Done(okResult)
		if err := <-got; err != nil {
			t.Fatalf("waiting Acquire = %v; want a slot", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("waiter took %v after the slot freed; want at once", d)
		}

		// A full upstream sorts after one with room.
		p2 := mustPool(t, Options{Upstreams: []Config{
			{Name: "full", BaseURL: "http://127.0.0.1:9", MaxParallel: 1},
			{Name: "free", BaseURL: "http://127.0.0.1:9"},
		}, Routing: Routing{Strategy: StrategyPriority}})
		h, _ := p2.Upstream("full").Acquire(t.Context(), 0)
		if got := names(mustPlan(t, p2, "m")); !cmp.Equal(got, []string{"free:m", "full:m"}) {
			t.Errorf("Plan = %v; want the full upstream second", got)
		}
		h.Done(okResult)

		// The caller's context ends the wait.
		if held, err = u.Acquire(t.Context(), 0); err != nil {
			t.Fatalf("Acquire after every slot was released = %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		if _, err := u.Acquire(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Acquire with expiring ctx = %v; want DeadlineExceeded", err)
		}
		held.Done(okResult)
	})
}

func TestReloadCarriesState(t *testing.T) {
	clk := newFakeClock()
	cfg := ups("a", "b")
	opts := Options{Upstreams: cfg, Now: clk.Now}
	p1 := mustPool(t, opts)
	for range 5 {
		run(t, p1.Upstream("a"), failResult)
	}
	inflight, err := p1.Upstream("b").Acquire(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	run(t, p1.Upstream("b"), Result{Status: 200, TTFB: 40 * time.Millisecond})

	cfg2 := ups("a", "b", "c")
	cfg2[1].Weight = 5 // same name and URL, new weight: state carries over
	p2, err := NewPool(Options{Upstreams: cfg2, Now: clk.Now}, p1)
	if err != nil {
		t.Fatal(err)
	}
	st := p2.Status()
	if ps := pairStatus(p2, "a", "m"); ps.State != StateOpen || st[0].Failures != 5 {
		t.Errorf("reloaded a = %+v; want open with 5 failures", st[0])
	}
	if st[1].InFlight != 1 || st[1].LatencyMS != 40 || st[1].Weight != 5 {
		t.Errorf("reloaded b = %+v; want 1 in flight, 40ms, weight 5", st[1])
	}
	inflight.Done(okResult) // an attempt from the old pool releases the shared slot
	if got := p2.Status()[1].InFlight; got != 0 {
		t.Errorf("after old attempt Done, in flight = %d; want 0", got)
	}
	if st[2].State != StateClosed || st[2].Requests != 0 {
		t.Errorf("new upstream c = %+v; want fresh", st[2])
	}

	// A changed base URL is a different endpoint: fresh state.
	cfg3 := ups("a", "b")
	cfg3[0].BaseURL = "http://127.0.0.1:9/fixed"
	p3, err := NewPool(Options{Upstreams: cfg3, Now: clk.Now}, p2)
	if err != nil {
		t.Fatal(err)
	}
	if got := p3.Status()[0]; got.State != StateClosed || got.Failures != 0 || len(got.ModelHealth) != 0 {
		t.Errorf("a with new base_url = %+v; want fresh", got)
	}
}

func TestReady(t *testing.T) {
	clk := newFakeClock()
	p := mustPool(t, Options{Upstreams: ups("a", "b"), Now: clk.Now})
	refused := Result{Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, name := range []string{"a", "b"} {
		for range 5 {
			run(t, p.Upstream(name), refused)
		}
	}
	if p.Ready() {
		t.Errorf("Ready() = true with every upstream's circuit open")
	}
	clk.Advance(30 * time.Second)
	if !p.Ready() {
		t.Errorf("Ready() = false after the cool-down (half-open)")
	}
}

// TestConcurrentUse exercises Plan, Acquire and Done from many goroutines;
// its value is under -race.
func TestConcurrentUse(t *testing.T) {
	cfg := ups("a", "b", "c")
	cfg[0].MaxParallel = 2
	p := mustPool(t, Options{Upstreams: cfg, Routing: Routing{Strategy: StrategyLeastBusy},
		Aliases: map[string]Alias{"x": {Targets: []string{"m1", "m2"}}}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				plan, err := p.Plan([]string{"m1", "x", fmt.Sprint("m", i%50)}[i%3])
				if err != nil {
					t.Error(err)
					return
				}
				for _, tg := range plan {
					a, err := tg.Acquire(t.Context(), time.Millisecond)
					if err != nil {
						continue
					}
					r := okResult
					if (g+i)%7 == 0 {
						r = failResult
					}
					a.Done(r)
					break
				}
				_ = p.Status()
			}
		})
	}
	wg.Wait()
	for _, st := range p.Status() {
		if st.InFlight != 0 {
			t.Errorf("%s in flight = %d after all attempts ended", st.Name, st.InFlight)
		}
	}
}
