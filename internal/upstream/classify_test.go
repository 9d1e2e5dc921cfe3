package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	dialRefused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	readReset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		name string
		r    Result
		want Kind
	}{
		{"200", Result{Status: 200}, KindOK},
		{"301", Result{Status: 301}, KindOK},
		{"400 is the client's", Result{Status: 400}, KindOK},
		{"401", Result{Status: 401}, KindOK},
		{"404 model", Result{Status: 404}, KindOK},
		{"413", Result{Status: 413}, KindOK},
		{"408 counts", Result{Status: 408}, KindStatus},
		{"429 cools", Result{Status: 429, RetryAfter: time.Second}, KindRateLimited},
		{"500", Result{Status: 500}, KindStatus},
		{"501 not implemented", Result{Status: 501}, KindOK},
		{"502", Result{Status: 502}, KindStatus},
		{"503", Result{Status: 503}, KindStatus},
		{"504", Result{Status: 504}, KindStatus},
		{"mid-stream reset", Result{Status: 200, Err: io.ErrUnexpectedEOF}, KindStreamBroken},
		{"500 body cut", Result{Status: 500, Err: io.ErrUnexpectedEOF}, KindStatus},
		{"client left mid-stream", Result{Status: 200, Err: context.Canceled}, KindCancelled},
		{"cancelled flag wins", Result{Status: 502, Cancelled: true}, KindCancelled},
		{"cancelled before headers", Result{Err: fmt.Errorf("send: %w", context.Canceled)}, KindCancelled},
		{"attempt timeout", Result{Err: fmt.Errorf("a: %w", ErrTimeout)}, KindTimeout},
		{"deadline", Result{Err: context.DeadlineExceeded}, KindTimeout},
		{"net timeout", Result{Err: &net.OpError{Op: "read", Err: timeoutErr{}}}, KindTimeout},
		{"connect refused", Result{Err: dialRefused}, KindConnect},
		{"dns", Result{Err: &net.DNSError{Err: "no such host", Name: "x"}}, KindConnect},
		{"tls record", Result{Err: tls.RecordHeaderError{Msg: "tls: first record does not look like a TLS handshake"}}, KindTLS},
		{"x509", Result{Err: fmt.Errorf("get: %w", x509.UnknownAuthorityError{})}, KindTLS},
		{"tls string", Result{Err: errors.New("remote error: tls: handshake failure")}, KindTLS},
		{"reset before headers", Result{Err: readReset}, KindReset},
		{"eof before headers", Result{Err: io.EOF}, KindReset},
		{"other transport", Result{Err: errors.New("malformed HTTP response")}, KindTransport},
		{"nothing at all", Result{}, KindTransport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.r); got != tt.want {
				t.Errorf("Classify(%+v) = %s; want %s", tt.r, got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestOneRequestCountsOnce: retries of one request at one target count
// once; a new plan is a new request.
func TestOneRequestCountsOnce(t *testing.T) {
	p := mustPool(t, Options{Upstreams: ups("a")})
	plan := mustPlan(t, p, "m")
	for range 3 { // the engine's 1 + max_retries attempts
		a, err := plan[0].Acquire(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		a.Done(failResult)
	}
	st := pairStatus(p, "a", "m")
	if st.ConsecutiveFailures != 1 || st.Requests != 3 {
		t.Errorf("after one request with 3 failed attempts: %+v; want 1 consecutive failure, 3 attempts", st)
	}
	for range 4 {
		a, _ := mustPlan(t, p, "m")[0].Acquire(t.Context(), 0)
		a.Done(failResult)
	}
	if got := pairState(p, "a", "m"); got != StateOpen {
		t.Errorf("after 5 failed requests State = %s; want open", got)
	}
}

// TestRateLimitCoolsDown: a 429 skips the pair for its Retry-After (5s
// default) without opening anything.
func TestRateLimitCoolsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustPool(t, Options{Upstreams: ups("a", "b"), Routing: Routing{Strategy: StrategyPriority}})
		a := p.Upstream("a")
		run(t, a, Result{Status: 429, RetryAfter: 2 * time.Second})
		st := pairStatus(p, "a", "m")
		if st.State != StateCooling || !st.CoolUntil.Equal(time.Now().Add(2*time.Second)) || st.ConsecutiveFailures != 0 {
			t.Fatalf("after 429 pair = %+v; want cooling for 2s, no failure", st)
		}
		if _, err := a.AcquireModel(t.Context(), "m", 0); !errors.Is(err, ErrCoolingDown) || !errors.Is(err, ErrCircuitOpen) {
			t.Errorf("Acquire while cooling = %v; want ErrCoolingDown", err)
		}
		plan := mustPlan(t, p, "m")
		if got := names(plan); !cmp.Equal(got, []string{"b:m", "a:m"}) || !plan[1].Open || plan[1].Panic {
			t.Errorf("Plan while cooling = %v %+v; want a last, Open, no panic", got, plan)
		}
		time.Sleep(2 * time.Second)
		if got := pairState(p, "a", "m"); got != StateClosed {
			t.Errorf("after Retry-After State = %s; want closed", got)
		}
		run(t, a, Result{Status: 429}) // no Retry-After: the default
		if got := pairStatus(p, "a", "m").CoolUntil; !got.Equal(time.Now().Add(rateLimitCoolDown)) {
			t.Errorf("default cool-down until %v; want now+%v", got, rateLimitCoolDown)
		}
		run(t, p.Upstream("b"), Result{Status: 429, RetryAfter: 24 * time.Hour})
		if got := pairStatus(p, "b", "m").CoolUntil; !got.Equal(time.Now().Add(maxRateLimitCoolDown)) {
			t.Errorf("huge Retry-After cools until %v; want capped at %v", got, maxRateLimitCoolDown)
		}
	})
}

// TestPanicWhenEverythingIsOpen: with nowhere healthy to go, the request
// goes to the target whose cool-down ends first, and its result decides.
func TestPanicWhenEverythingIsOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustPool(t, Options{Upstreams: ups("a", "b"), Routing: Routing{Strategy: StrategyPriority}})
		for range 5 {
			run(t, p.Upstream("a"), failResult)
		}
		time.Sleep(10 * time.Second)
		for range 5 {
			run(t, p.Upstream("b"), failResult) // b opened later: a's cool-down ends first
		}
		plan := mustPlan(t, p, "m")
		if got := names(plan); !cmp.Equal(got, []string{"a:m", "b:m"}) || !plan[0].Panic || plan[1].Panic || !plan[0].Open {
			t.Fatalf("Plan = %v %+v; want a first with Panic", got, plan)
		}
		if !plan[0].CoolUntil.Equal(time.Now().Add(20 * time.Second)) {
			t.Errorf("a CoolUntil = %v; want in 20s", plan[0].CoolUntil)
		}
		if _, err := plan[1].Acquire(t.Context(), 0); !errors.Is(err, ErrCircuitOpen) {
			t.Errorf("Acquire of the non-panic open target = %v; want ErrCircuitOpen", err)
		}
		time.Sleep(time.Second)
		att, err := plan[0].Acquire(t.Context(), 0)
		if err != nil {
			t.Fatalf("panic Acquire = %v; want let through", err)
		}
		att.Done(failResult) // still failing: stays open, cool-down restarts
		if st := pairStatus(p, "a", "m"); st.State != StateOpen || !st.CoolUntil.Equal(time.Now().Add(30*time.Second)) {
			t.Errorf("after failed panic attempt: %+v; want open for another 30s", st)
		}
		plan = mustPlan(t, p, "m")
		att, _ = plan[0].Acquire(t.Context(), 0) // b now ends first
		if plan[0].Upstream.Name() != "b" {
			t.Errorf("panic target = %s; want b", plan[0].Upstream.Name())
		}
		att.Done(okResult)
		if got := pairState(p, "b", "m"); got != StateClosed {
			t.Errorf("after successful panic attempt State = %s; want closed", got)
		}
	})
}

// TestUpstreamSickness: connect errors open the upstream for every model;
// resets open it only when they span several models; any answer closes it.
func TestUpstreamSickness(t *testing.T) {
	refused := Result{Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	reset := Result{Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}
	t.Run("connect errors", func(t *testing.T) {
		clk := newFakeClock()
		p := mustPool(t, Options{Upstreams: ups("a", "b"), Now: clk.Now, Routing: Routing{Strategy: StrategyPriority}})
		for i := range 5 {
			runModel(t, p.Upstream("a"), fmt.Sprint("m", i), refused)
		}
		if got := p.Upstream("a").State(); got != StateOpen {
			t.Fatalf("after 5 connect errors upstream State = %s; want open", got)
		}
		if got := names(mustPlan(t, p, "fresh")); !cmp.Equal(got, []string{"b:fresh", "a:fresh"}) {
			t.Errorf("Plan for an unrelated model = %v; want a last", got)
		}
		clk.Advance(30 * time.Second)
		runModel(t, p.Upstream("a"), "x", Result{Status: 500}) // it answers: reachable again
		if got := p.Upstream("a").State(); got != StateClosed {
			t.Errorf("after an answer upstream State = %s; want closed", got)
		}
	})
	t.Run("resets on one model", func(t *testing.T) {
		p := mustPool(t, Options{Upstreams: ups("a")})
		for range 5 {
			run(t, p.Upstream("a"), reset)
		}
		if got := p.Upstream("a").State(); got != StateClosed {
			t.Errorf("resets on one model: upstream State = %s; want closed", got)
		}
		if got := pairState(p, "a", "m"); got != StateOpen {
			t.Errorf("resets on one model: pair State = %s; want open", got)
		}
	})
	t.Run("resets across models", func(t *testing.T) {
		p := mustPool(t, Options{Upstreams: ups("a")})
		for i := range 7 {
			runModel(t, p.Upstream("a"), fmt.Sprint("m", i%3), reset)
		}
		if got := p.Upstream("a").State(); got != StateOpen {
			t.Errorf("resets across 3 models: upstream State = %s; want open", got)
		}
	})
}

func TestPairsBounded(t *testing.T) {
	p := mustPool(t, Options{Upstreams: ups("a")})
	a := p.Upstream("a")
	held, _ := a.AcquireModel(t.Context(), "busy", 0)
	for i := range maxPairs + 50 {
		runModel(t, a, fmt.Sprint("m", i), okResult)
	}
	n := len(p.Status()[0].ModelHealth)
	if n > maxPairs {
		t.Errorf("tracked pairs = %d; want at most %d", n, maxPairs)
	}
	if got := pairStatus(p, "a", "busy"); got.InFlight != 1 {
		t.Errorf("in-flight pair was forgotten: %+v", got)
	}
	held.Done(okResult)
}

func TestUpstreamAPIConfig(t *testing.T) {
	cfg := ups("a", "b")
	cfg[1].API, cfg[1].Responses = APIAnthropic, "native"
	p := mustPool(t, Options{Upstreams: cfg})
	if a := p.Upstream("a"); a.API() != APIOpenAI || a.NativeResponses() {
		t.Errorf("a: API %q native %v; want openai, false", a.API(), a.NativeResponses())
	}
	if b := p.Upstream("b"); b.API() != APIAnthropic || !b.NativeResponses() {
		t.Errorf("b: API %q native %v; want anthropic, true", b.API(), b.NativeResponses())
	}
	for _, bad := range []Config{{API: "grpc"}, {Responses: "yes"}} {
		c := ups("x")[0]
		c.API, c.Responses = bad.API, bad.Responses
		if _, err := NewPool(Options{Upstreams: []Config{c}}, nil); err == nil {
			t.Errorf("NewPool accepted api %q responses %q", bad.API, bad.Responses)
		}
	}
}

// TestLastResortAtAttempt: a request that retries its only target after a
// 429 or a circuit-opening 500 still reaches the upstream; with a healthy
// alternative in the plan it is refused.
func TestLastResortAtAttempt(t *testing.T) {
	p := mustPool(t, Options{Upstreams: ups("a")})
	plan := mustPlan(t, p, "m")
	a1, _ := plan[0].Acquire(t.Context(), 0)
	a1.Done(Result{Status: 429})
	a2, err := plan[0].Acquire(t.Context(), 0)
	if err != nil {
		t.Fatalf("retry of the only target after 429 = %v; want let through", err)
	}
	a2.Done(okResult)

	p2 := mustPool(t, Options{Upstreams: ups("a", "b"), Routing: Routing{Strategy: StrategyPriority}})
	plan = mustPlan(t, p2, "m")
	a1, _ = plan[0].Acquire(t.Context(), 0)
	a1.Done(Result{Status: 429})
	if _, err := plan[0].Acquire(t.Context(), 0); !errors.Is(err, ErrCoolingDown) {
		t.Errorf("retry of a cooling target with b healthy = %v; want ErrCoolingDown", err)
	}
}
