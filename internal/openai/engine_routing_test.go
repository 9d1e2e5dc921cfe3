package openai

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/upstream"
)

// fleet is three fake upstreams behind one gateway.
type fleet struct {
	*harness
	fakes []*fakeupstream.Server
	srvs  []*httptest.Server
	pool  *upstream.Pool
}

func newFleet(t *testing.T, configure func(cfgs []upstream.Config, o *upstream.Options)) *fleet {
	t.Helper()
	f := &fleet{}
	var cfgs []upstream.Config
	for _, name := range []string{"a", "b", "c"} {
		fake := fakeupstream.New(fakeupstream.Options{Chunks: 3})
		srv := httptest.NewServer(fake)
		t.Cleanup(srv.Close)
		f.fakes = append(f.fakes, fake)
		f.srvs = append(f.srvs, srv)
		cfgs = append(cfgs, upstream.Config{Name: name, BaseURL: srv.URL + "/v1", APIKey: "sk-" + name})
	}
	f.harness = newHarness(t, func(p *proxy.Proxy, o *upstream.Options) {
		o.Upstreams = cfgs
		o.Routing = upstream.Routing{Strategy: upstream.StrategyPriority}
		if configure != nil {
			configure(o.Upstreams, o)
		}
	})
	f.pool = f.proxy.Pool().(*upstream.Pool)
	return f
}

func (f *fleet) hits() []int {
	out := make([]int, len(f.fakes))
	for i, fk := range f.fakes {
		out[i] = len(fk.Requests())
	}
	return out
}

func TestFailoverAndBreaker(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	f := newFleet(t, func(_ []upstream.Config, o *upstream.Options) {
		o.Now = clock
		o.Breaker = upstream.BreakerOptions{ConsecutiveFailures: 3, CoolDown: 10 * time.Second}
	})
	f.srvs[0].Close() // "a", the first by priority, is down

	for i := range 10 {
		status, _, body := f.post(t, "/v1/chat/completions", chatBody)
		if status != 200 {
			t.Fatalf("request %d: status %d %s; want no client-visible error", i, status, body)
		}
		rec := f.rec.next(t)
		if rec.Upstream != "b" {
			t.Errorf("request %d served by %q; want b", i, rec.Upstream)
		}
	}
	if st := f.pool.Upstream("a").State(); st != upstream.StateOpen {
		t.Fatalf("breaker of the dead upstream is %q; want open", st)
	}
	// While open, "a" is not even tried: every request is one attempt on b.
	f.post(t, "/v1/chat/completions", chatBody)
	if rec := f.rec.next(t); rec.Attempts != 1 || rec.Upstream != "b" {
		t.Errorf("with a open: attempts=%d upstream=%s; want 1 on b", rec.Attempts, rec.Upstream)
	}

	// "a" recovers: after the cool-down one probe goes to it and closes the circuit.
	f.fakes[0].Reset()
	f.srvs[0] = httptest.NewUnstartedServer(f.fakes[0])
	ln, err := netListen(strings.TrimPrefix(f.pool.Upstream("a").BaseURL(), "http://"))
	if err != nil {
		t.Skipf("cannot rebind the old port of upstream a: %v", err)
	}
	f.srvs[0].Listener = ln
	f.srvs[0].Start()
	t.Cleanup(f.srvs[0].Close)
	now = now.Add(11 * time.Second)
	status, _, _ := f.post(t, "/v1/chat/completions", chatBody)
	if rec := f.rec.next(t); status != 200 || rec.Upstream != "a" {
		t.Fatalf("probe after cool-down: status %d served by %q; want a", status, rec.Upstream)
	}
	if st := f.pool.Upstream("a").State(); st != upstream.StateClosed {
		t.Errorf("breaker after a successful probe is %q; want closed", st)
	}
}

func TestClientErrorNotRetriedElsewhere(t *testing.T) {
	f := newFleet(t, nil)
	f.fakes[0].Enqueue(fakeupstream.Fault{Status: 400})
	status, _, _ := f.post(t, "/v1/chat/completions", chatBody)
	if status != 400 {
		t.Fatalf("status %d; want the upstream's 400", status)
	}
	if got := f.hits(); got[0] != 1 || got[1] != 0 || got[2] != 0 {
		t.Errorf("requests per upstream %v; want [1 0 0]", got)
	}
}

func TestRetryableFallsBackToNextUpstream(t *testing.T) {
	f := newFleet(t, nil)
	f.fakes[0].Enqueue(fakeupstream.Fault{Status: 503})
	status, _, _ := f.post(t, "/v1/chat/completions", chatBody)
	rec := f.rec.next(t)
	if status != 200 || rec.Upstream != "b" || rec.Attempts != 2 {
		t.Errorf("status %d upstream %s attempts %d; want 200 from b after 2 attempts", status, rec.Upstream, rec.Attempts)
	}
}

func TestModelMapRenamesAtTheUpstream(t *testing.T) {
	f := newFleet(t, func(cfgs []upstream.Config, o *upstream.Options) {
		cfgs[0].ModelMap = map[string]string{"claude-sonnet-4-6": "anthropic/claude-sonnet-4.6"}
	})
	status, _, body := f.post(t, "/v1/chat/completions", `{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"x"}]}`)
	if status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	if got := gjson.GetBytes(f.fakes[0].Requests()[0].Body, "model").String(); got != "anthropic/claude-sonnet-4.6" {
		t.Errorf("upstream saw model %q; want the mapped name", got)
	}
	if rec := f.rec.next(t); rec.Model != "claude-sonnet-4-6" || rec.ModelUsed != "anthropic/claude-sonnet-4.6" {
		t.Errorf("record model=%q model_used=%q", rec.Model, rec.ModelUsed)
	}
}

func TestAliasFallsBackInOrder(t *testing.T) {
	f := newFleet(t, func(cfgs []upstream.Config, o *upstream.Options) {
		cfgs[0].Models = []string{"gpt-4o-mini"}
		cfgs[1].Models = []string{"qwen-turbo"}
		cfgs[2].Models = []string{"deepseek-chat"}
		o.Aliases = map[string]upstream.Alias{"fast": {Targets: []string{"gpt-4o-mini", "qwen-turbo", "deepseek-chat"}}}
	})
	f.fakes[0].Enqueue(fakeupstream.Fault{Status: 500})
	f.fakes[1].Enqueue(fakeupstream.Fault{Status: 502})
	status, _, body := f.post(t, "/v1/chat/completions", `{"model":"fast","messages":[{"role":"user","content":"x"}]}`)
	if status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	var models []string
	for _, fk := range f.fakes {
		for _, r := range fk.Requests() {
			models = append(models, gjson.GetBytes(r.Body, "model").String())
		}
	}
	if strings.Join(models, ",") != "gpt-4o-mini,qwen-turbo,deepseek-chat" {
		t.Errorf("attempts went to %v; want the alias targets in order", models)
	}
	if rec := f.rec.next(t); rec.ModelUsed != "deepseek-chat" || rec.Attempts != 3 {
		t.Errorf("record model_used=%q attempts=%d", rec.ModelUsed, rec.Attempts)
	}
}

func TestLowestLatencyMovesTraffic(t *testing.T) {
	f := newFleet(t, func(_ []upstream.Config, o *upstream.Options) {
		o.Routing = upstream.Routing{Strategy: upstream.StrategyLowestLatency}
	})
	slow := fakeupstream.Fault{DelayHeaders: 30 * time.Millisecond}
	for range 200 {
		f.fakes[0].Enqueue(slow)
		f.fakes[2].Enqueue(slow)
	}
	for range 60 {
		if status, _, _ := f.post(t, "/v1/chat/completions", chatBody); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	got := f.hits()
	// After every upstream has a latency sample, the fast one (b) takes the
	// bulk; exploration keeps a small share on the others.
	if got[1] < 40 {
		t.Errorf("requests per upstream %v; want most on the fast upstream b", got)
	}
}

func netListen(addr string) (net.Listener, error) {
	addr = strings.TrimSuffix(addr, "/v1")
	return net.Listen("tcp", addr)
}

func TestSaturatedUpstreamsAnswer429(t *testing.T) {
	f := newFleet(t, func(cfgs []upstream.Config, o *upstream.Options) {
		o.Upstreams = cfgs[:1]
		o.Upstreams[0].MaxParallel = 1
	})
	f.proxy.SaturationWait = 100 * time.Millisecond
	f.fakes[0].Enqueue(fakeupstream.Fault{DelayHeaders: 2 * time.Second})
	first := make(chan int, 1)
	go func() {
		status, _, _ := f.post(t, "/v1/chat/completions", chatBody)
		first <- status
	}()
	// Wait until the slow request holds the only slot.
	deadline := time.Now().Add(2 * time.Second)
	for len(f.fakes[0].Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	status, hdr, body := f.post(t, "/v1/chat/completions", chatBody)
	if status != 429 || hdr.Get("Retry-After") == "" || gjson.GetBytes(body, "error.code").String() != "upstream_saturated" {
		t.Errorf("second request: %d (Retry-After %q) %s; want 429 upstream_saturated with Retry-After", status, hdr.Get("Retry-After"), body)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("answered after %v; want a brief wait for a slot first", waited)
	}
	if s := <-first; s != 200 {
		t.Errorf("the request holding the slot got %d", s)
	}
}

func TestModelsUnionAndErrors(t *testing.T) {
	f := newFleet(t, func(cfgs []upstream.Config, o *upstream.Options) {
		cfgs[0].Models = []string{"gpt-4o", "gpt-4o-mini"}
		cfgs[1].Models = []string{"gpt-4o", "qwen-plus"}
		o.Upstreams = cfgs[:2]
		o.Aliases = map[string]upstream.Alias{"fast": {Targets: []string{"gpt-4o-mini", "qwen-plus"}}}
	})
	m := &Models{Pool: func() *upstream.Pool { return f.pool }, Transport: proxy.NewTransport()}
	srv := httptest.NewServer(m)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Data []struct{ ID string } `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ids []string
	for _, d := range out.Data {
		ids = append(ids, d.ID)
	}
	if got := strings.Join(ids, ","); got != "fast,gpt-4o,gpt-4o-mini,qwen-plus" {
		t.Errorf("models = %s; want the union of what each upstream serves plus the alias, once each", got)
	}
	// Cached: the upstreams are not asked again within the TTL.
	before := len(f.fakes[0].Requests())
	if _, err := m.List(t.Context()); err != nil || len(f.fakes[0].Requests()) != before {
		t.Errorf("second list asked the upstream again (err %v)", err)
	}

	// With every upstream down and nothing cached: an OpenAI-shaped 502.
	f.srvs[0].Close()
	f.srvs[1].Close()
	m2 := &Models{Pool: func() *upstream.Pool { return f.pool }, Transport: proxy.NewTransport()}
	rec := httptest.NewRecorder()
	m2.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/models", nil))
	if rec.Code != 502 || gjson.Get(rec.Body.String(), "error.code").String() != "upstream_unreachable" {
		t.Errorf("upstreams down: %d %s; want 502 upstream_unreachable", rec.Code, rec.Body)
	}
}
