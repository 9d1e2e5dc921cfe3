package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/upstream"
)

func newTest(t testing.TB, opts Options) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return New(reg, opts), reg
}

func okRecord() *ledger.Record {
	return &ledger.Record{
		Endpoint: "/v1/chat/completions", Model: "gpt-4o", Upstream: "taotoken",
		Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1,
		PromptTokens: 100, CompletionTokens: 40, CachedTokens: 30, ReasoningTokens: 10, TotalTokens: 140,
		CostNanoUSD: 2_500_000, Priced: true, // 0.0025 USD
		Duration: 1200 * time.Millisecond, TTFB: 300 * time.Millisecond,
	}
}

func TestRequestCountsExactly(t *testing.T) {
	m, reg := newTest(t, Options{KnownModels: []string{"gpt-4o", "text-embedding-3-small"}})

	ok := okRecord()
	retried := okRecord()
	retried.Attempts = 3
	limited := &ledger.Record{Endpoint: "/v1/chat/completions", Model: "gpt-4o", Outcome: ledger.OutcomeRateLimited, Status: 429}
	unauth := &ledger.Record{Endpoint: "/v1/chat/completions", Model: "gpt-4o", Outcome: ledger.OutcomeUnauthorized, Status: 401}
	emb := &ledger.Record{Endpoint: "/v1/embeddings", Model: "text-embedding-3-small", Upstream: "taotoken",
		Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1, PromptTokens: 8, TotalTokens: 8}
	for _, r := range []*ledger.Record{ok, retried, limited, unauth, limited, emb} {
		m.Request(r)
	}

	want := `
# HELP tollgate_requests_total Client requests, by route, requested model, last upstream and outcome.
# TYPE tollgate_requests_total counter
tollgate_requests_total{model="gpt-4o",outcome="ok",route="/v1/chat/completions",upstream="taotoken"} 2
tollgate_requests_total{model="gpt-4o",outcome="rate_limited",route="/v1/chat/completions",upstream="none"} 2
tollgate_requests_total{model="gpt-4o",outcome="unauthorized",route="/v1/chat/completions",upstream="none"} 1
tollgate_requests_total{model="text-embedding-3-small",outcome="ok",route="/v1/embeddings",upstream="taotoken"} 1
# HELP tollgate_limit_rejections_total Requests refused by the gateway's own admission checks.
# TYPE tollgate_limit_rejections_total counter
tollgate_limit_rejections_total{reason="forbidden"} 0
tollgate_limit_rejections_total{reason="quota_exceeded"} 0
tollgate_limit_rejections_total{reason="rate_limited"} 2
tollgate_limit_rejections_total{reason="unauthorized"} 1
# HELP tollgate_upstream_retries_total Upstream attempts beyond the first, by the upstream that ended the request.
# TYPE tollgate_upstream_retries_total counter
tollgate_upstream_retries_total{upstream="none"} 0
tollgate_upstream_retries_total{upstream="taotoken"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tollgate_requests_total", "tollgate_limit_rejections_total", "tollgate_upstream_retries_total"); err != nil {
		t.Error(err)
	}

	tokens := []struct {
		model, kind string
		want        float64
	}{
		{"gpt-4o", "prompt", 200},
		{"gpt-4o", "completion", 80},
		{"gpt-4o", "cached", 60},
		{"gpt-4o", "reasoning", 20},
		{"text-embedding-3-small", "prompt", 8},
		{"text-embedding-3-small", "completion", 0},
	}
	for _, tc := range tokens {
		if got := testutil.ToFloat64(m.tokens.WithLabelValues(tc.model, tc.kind)); got != tc.want {
			t.Errorf("tokens{%s,%s} = %v, want %v", tc.model, tc.kind, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(m.cost.WithLabelValues("gpt-4o")); got != 0.005 {
		t.Errorf("cost{gpt-4o} = %v, want 0.005", got)
	}
	// Duration is observed for every request, TTFT only for successful ones with a first byte.
	if got := testutil.CollectAndCount(m.duration); got != 2 {
		t.Errorf("duration series = %d, want 2 (one per route+model)", got)
	}
	if n := histCount(t, reg, "tollgate_request_duration_seconds", "/v1/chat/completions"); n != 5 {
		t.Errorf("duration count = %d, want 5", n)
	}
	if n := histCount(t, reg, "tollgate_time_to_first_token_seconds", "/v1/chat/completions"); n != 2 {
		t.Errorf("ttft count = %d, want 2", n)
	}
}

// histCount returns the sample count of the histogram series with the given route.
func histCount(t *testing.T, reg *prometheus.Registry, name, route string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, lp := range mm.GetLabel() {
				if lp.GetName() == "route" && lp.GetValue() == route {
					return mm.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestHistogramBuckets(t *testing.T) {
	m, reg := newTest(t, Options{})
	m.Request(okRecord())
	m.Attempt("taotoken", 200, nil, 80*time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	wantBounds := []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}
	for _, name := range []string{"tollgate_request_duration_seconds", "tollgate_time_to_first_token_seconds", "tollgate_upstream_attempt_seconds"} {
		var found bool
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			found = true
			h := mf.GetMetric()[0].GetHistogram()
			var got []float64
			for _, b := range h.GetBucket() {
				got = append(got, b.GetUpperBound())
			}
			if len(got) != len(wantBounds) {
				t.Fatalf("%s buckets = %v, want %v", name, got, wantBounds)
			}
			for i := range got {
				if got[i] != wantBounds[i] {
					t.Errorf("%s bucket %d = %v, want %v", name, i, got[i], wantBounds[i])
				}
			}
		}
		if !found {
			t.Errorf("%s not gathered", name)
		}
	}
	// 1.2s lands in le=2.5 but not le=1.
	if n := bucketCount(t, reg, "tollgate_request_duration_seconds", 1); n != 0 {
		t.Errorf("le=1 count = %d, want 0", n)
	}
	if n := bucketCount(t, reg, "tollgate_request_duration_seconds", 2.5); n != 1 {
		t.Errorf("le=2.5 count = %d, want 1", n)
	}
}

func bucketCount(t *testing.T, reg *prometheus.Registry, name string, le float64) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				if b.GetUpperBound() == le {
					return b.GetCumulativeCount()
				}
			}
		}
	}
	t.Fatalf("%s le=%v not found", name, le)
	return 0
}

func TestModelFolding(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		models []string
		want   map[string]float64 // model label -> requests
	}{
		{
			name:   "known set",
			opts:   Options{KnownModels: []string{"gpt-4o"}},
			models: []string{"gpt-4o", "mystery", "another-unknown"},
			want:   map[string]float64{"gpt-4o": 1, Other: 2},
		},
		{
			name:   "predicate follows reloads",
			opts:   Options{IsKnownModel: func(m string) bool { return strings.HasPrefix(m, "deepseek") }},
			models: []string{"deepseek-chat", "gpt-4o"},
			want:   map[string]float64{"deepseek-chat": 1, Other: 1},
		},
		{
			name:   "open set capped by MaxModels",
			opts:   Options{MaxModels: 2},
			models: []string{"a", "b", "c", "a", "d"},
			want:   map[string]float64{"a": 2, "b": 1, Other: 2},
		},
		{
			name:   "missing model is none, not other",
			opts:   Options{KnownModels: []string{"gpt-4o"}, MaxModels: 1},
			models: []string{"", "gpt-4o", ""},
			want:   map[string]float64{None: 2, "gpt-4o": 1},
		},
		{
			name:   "empty known set folds everything",
			opts:   Options{KnownModels: []string{}},
			models: []string{"a", "b"},
			want:   map[string]float64{Other: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTest(t, tc.opts)
			for _, model := range tc.models {
				r := okRecord()
				r.Model = model
				m.Request(r)
			}
			if got := testutil.CollectAndCount(m.requests); got != len(tc.want) {
				t.Errorf("request series = %d, want %d", got, len(tc.want))
			}
			for model, want := range tc.want {
				c := m.requests.WithLabelValues("/v1/chat/completions", model, "taotoken", "ok")
				if got := testutil.ToFloat64(c); got != want {
					t.Errorf("requests{model=%q} = %v, want %v", model, got, want)
				}
			}
		})
	}
}

func TestSetKnownModels(t *testing.T) {
	m, _ := newTest(t, Options{KnownModels: []string{"old"}})
	r := okRecord()
	r.Model = "new"
	m.Request(r)
	m.SetKnownModels([]string{"new"})
	m.Request(r)
	for model, want := range map[string]float64{Other: 1, "new": 1} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues("/v1/chat/completions", model, "taotoken", "ok")); got != want {
			t.Errorf("requests{model=%q} = %v, want %v", model, got, want)
		}
	}
}

func TestRouteOf(t *testing.T) {
	tests := []struct{ endpoint, want string }{
		{"/v1/chat/completions", "/v1/chat/completions"},
		{"/v1/completions", "/v1/completions"},
		{"/v1/embeddings", "/v1/embeddings"},
		{"/v1/models", "/v1/models"},
		{"/api/chat", "/api/chat"},
		{"/api/chat/stream", "/api/chat/stream"},
		{"/v1/audio/speech", Other},
		{"/v1/chat/completions/extra", Other},
		{"", Other},
	}
	for _, tc := range tests {
		if got := routes[routeOf(tc.endpoint)]; got != tc.want {
			t.Errorf("routeOf(%q) = %q, want %q", tc.endpoint, got, tc.want)
		}
	}
}

func TestAttempts(t *testing.T) {
	m, _ := newTest(t, Options{})
	calls := []struct {
		up     string
		status int
		err    error
	}{
		{"a", 200, nil}, {"a", 201, nil}, {"a", 404, nil}, {"a", 429, nil},
		{"a", 503, nil}, {"a", 500, nil}, {"a", 0, errors.New("dial tcp: refused")},
		{"b", 200, nil},
	}
	for _, c := range calls {
		m.Attempt(c.up, c.status, c.err, 100*time.Millisecond)
	}
	want := map[[2]string]float64{
		{"a", "2xx"}: 2, {"a", "4xx"}: 1, {"a", "429"}: 1, {"a", "5xx"}: 2, {"a", "error"}: 1,
		{"b", "2xx"}: 1, {"b", "error"}: 0,
	}
	for k, w := range want {
		if got := testutil.ToFloat64(m.attempts.WithLabelValues(k[0], k[1])); got != w {
			t.Errorf("attempts{%s,%s} = %v, want %v", k[0], k[1], got, w)
		}
	}
}

func TestBeginInFlight(t *testing.T) {
	m, _ := newTest(t, Options{})
	endA := m.Begin(false)
	endB := m.Begin(true)
	endC := m.Begin(true)
	check := func(req, streams float64) {
		t.Helper()
		if got := testutil.ToFloat64(m.inFlight); got != req {
			t.Errorf("requests in flight = %v, want %v", got, req)
		}
		if got := testutil.ToFloat64(m.streams); got != streams {
			t.Errorf("streams in flight = %v, want %v", got, streams)
		}
	}
	check(3, 2)
	endB()
	check(2, 1)
	endA()
	endC()
	check(0, 0)
}

func TestScrapeTimeCollectors(t *testing.T) {
	var stats LedgerStats
	status := []upstream.Status{
		{Name: "taotoken", State: upstream.StateClosed, InFlight: 3, LatencyMS: 250, ErrorRatio: 0.1, Requests: 10, Failures: 1},
		{Name: "backup", State: upstream.StateOpen, ErrorRatio: 1, Requests: 5, Failures: 5},
		{Name: "probe", State: upstream.StateHalfOpen},
	}
	m, reg := newTest(t, Options{
		Upstreams: func() []upstream.Status { return status },
		Ledger:    func() LedgerStats { return stats },
	})
	m.RedisFailure()
	m.RedisFailure()
	m.OnStateChange("backup", upstream.StateClosed, upstream.StateOpen)

	stats = LedgerStats{QueueDepth: 7, Written: 1000, Spilled: 2, Lost: 1, Batches: 12, LastBatchSeconds: 0.004}
	want := `
# HELP tollgate_upstream_circuit_state Circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE tollgate_upstream_circuit_state gauge
tollgate_upstream_circuit_state{upstream="backup"} 2
tollgate_upstream_circuit_state{upstream="probe"} 1
tollgate_upstream_circuit_state{upstream="taotoken"} 0
# HELP tollgate_upstream_in_flight Attempts in flight to the upstream (streams count until they end).
# TYPE tollgate_upstream_in_flight gauge
tollgate_upstream_in_flight{upstream="backup"} 0
tollgate_upstream_in_flight{upstream="probe"} 0
tollgate_upstream_in_flight{upstream="taotoken"} 3
# HELP tollgate_upstream_latency_seconds Moving average of time to first byte of successful attempts.
# TYPE tollgate_upstream_latency_seconds gauge
tollgate_upstream_latency_seconds{upstream="backup"} 0
tollgate_upstream_latency_seconds{upstream="probe"} 0
tollgate_upstream_latency_seconds{upstream="taotoken"} 0.25
# HELP tollgate_upstream_error_ratio Failed share of attempts in the breaker window.
# TYPE tollgate_upstream_error_ratio gauge
tollgate_upstream_error_ratio{upstream="backup"} 1
tollgate_upstream_error_ratio{upstream="probe"} 0
tollgate_upstream_error_ratio{upstream="taotoken"} 0.1
# HELP tollgate_ledger_queue_depth Usage records waiting to be written.
# TYPE tollgate_ledger_queue_depth gauge
tollgate_ledger_queue_depth 7
# HELP tollgate_ledger_records_written_total Usage records written to the store.
# TYPE tollgate_ledger_records_written_total counter
tollgate_ledger_records_written_total 1000
# HELP tollgate_ledger_records_spilled_total Usage records spilled to the overflow file because the queue was full or the store failed.
# TYPE tollgate_ledger_records_spilled_total counter
tollgate_ledger_records_spilled_total 2
# HELP tollgate_ledger_records_lost_total Usage records that could not be kept at all.
# TYPE tollgate_ledger_records_lost_total counter
tollgate_ledger_records_lost_total 1
# HELP tollgate_ledger_batches_total Batches written to the store.
# TYPE tollgate_ledger_batches_total counter
tollgate_ledger_batches_total 12
# HELP tollgate_ledger_last_batch_seconds Duration of the last batch write.
# TYPE tollgate_ledger_last_batch_seconds gauge
tollgate_ledger_last_batch_seconds 0.004
# HELP tollgate_limit_backend_errors_total Failed calls to the shared limit backend (Redis).
# TYPE tollgate_limit_backend_errors_total counter
tollgate_limit_backend_errors_total 2
# HELP tollgate_upstream_circuit_transitions_total Circuit breaker state changes.
# TYPE tollgate_upstream_circuit_transitions_total counter
tollgate_upstream_circuit_transitions_total{from="closed",to="open",upstream="backup"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tollgate_upstream_circuit_state", "tollgate_upstream_in_flight", "tollgate_upstream_latency_seconds",
		"tollgate_upstream_error_ratio", "tollgate_ledger_queue_depth", "tollgate_ledger_records_written_total",
		"tollgate_ledger_records_spilled_total", "tollgate_ledger_records_lost_total", "tollgate_ledger_batches_total",
		"tollgate_ledger_last_batch_seconds", "tollgate_limit_backend_errors_total",
		"tollgate_upstream_circuit_transitions_total"); err != nil {
		t.Error(err)
	}

	// Values follow the funcs between scrapes.
	status = status[:1]
	stats.QueueDepth = 0
	if got := testutil.CollectAndCount(newUpstreamCollector(func() []upstream.Status { return status }),
		"tollgate_upstream_circuit_state"); got != 1 {
		t.Errorf("state series after shrink = %d, want 1", got)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tollgate_ledger_queue_depth Usage records waiting to be written.
# TYPE tollgate_ledger_queue_depth gauge
tollgate_ledger_queue_depth 0
`), "tollgate_ledger_queue_depth"); err != nil {
		t.Error(err)
	}
}

func TestHandlerServesText(t *testing.T) {
	reg := NewRegistry()
	m := New(reg, Options{})
	m.Request(okRecord())
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	for _, want := range []string{
		`tollgate_requests_total{model="gpt-4o",outcome="ok",route="/v1/chat/completions",upstream="taotoken"} 1`,
		"# TYPE tollgate_request_duration_seconds histogram",
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestNewRegistersOnceOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, Options{})
	defer func() {
		if recover() == nil {
			t.Error("second New on the same registry did not panic")
		}
	}()
	New(reg, Options{})
}

func TestConcurrentRequests(t *testing.T) {
	m, _ := newTest(t, Options{})
	const workers, each = 8, 200
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				r := okRecord()
				r.Model = []string{"a", "b", "c"}[(w+i)%3]
				end := m.Begin(i%2 == 0)
				m.Attempt("taotoken", 200, nil, time.Millisecond)
				m.Request(r)
				end()
			}
		}()
	}
	for range workers {
		<-done
	}
	var total float64
	for _, model := range []string{"a", "b", "c"} {
		total += testutil.ToFloat64(m.requests.WithLabelValues("/v1/chat/completions", model, "taotoken", "ok"))
	}
	if total != workers*each {
		t.Errorf("requests = %v, want %d", total, workers*each)
	}
	if got := testutil.ToFloat64(m.inFlight); got != 0 {
		t.Errorf("in flight = %v, want 0", got)
	}
}

// BenchmarkObserve is the per-request metrics cost on the proxy path: one
// Begin, one Attempt and one Request.
func BenchmarkObserve(b *testing.B) {
	m := New(prometheus.NewRegistry(), Options{KnownModels: []string{"gpt-4o"}})
	rec := okRecord()
	b.ReportAllocs()
	for b.Loop() {
		end := m.Begin(true)
		m.Attempt("taotoken", 200, nil, 250*time.Millisecond)
		m.Request(rec)
		end()
	}
}

// TestCostCurrencyLabel: the cost counter names the deployment currency
// in a constant label (USD by default), keeping its historical name.
func TestCostCurrencyLabel(t *testing.T) {
	for _, tc := range []struct{ opt, want string }{{"", "USD"}, {"cny", "CNY"}} {
		m, reg := newTest(t, Options{KnownModels: []string{"gpt-4o"}, Currency: tc.opt})
		m.Request(okRecord())
		want := `
# HELP tollgate_cost_usd_total Cost of priced requests in whole units of the deployment currency named by the currency label (USD unless configured; the name is historical).
# TYPE tollgate_cost_usd_total counter
tollgate_cost_usd_total{currency="` + tc.want + `",model="gpt-4o"} 0.0025
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tollgate_cost_usd_total"); err != nil {
			t.Errorf("currency %q: %v", tc.opt, err)
		}
	}
}
