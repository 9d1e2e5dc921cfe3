// Package metrics holds tollgate's Prometheus collectors. Everything is
// registered on a registry passed in from main (never the global default
// registry), and the request path touches only pre-resolved counters and
// histograms, so keeping metrics on costs a few hundred nanoseconds per
// request.
//
// *Metrics implements proxy.Observer. Upstream health and ledger writer state
// are read at scrape time through the functions in Options, so nothing has to
// push them.
package metrics

import (
	"cmp"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/upstream"
)

// Label values used when a value is folded away to bound cardinality.
const (
	// Other replaces models and routes outside the known set.
	Other = "other"
	// None is the upstream label of a request that reached no upstream, and
	// the model label of one whose model was never read.
	None = "none"
)

// LatencyBuckets are the histogram buckets, in seconds, for request
// durations and time to first token: LLM calls range from a 50ms embedding
// to a multi-minute reasoning stream.
var LatencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}

// LedgerStats is the ledger writer's state, read at scrape time.
type LedgerStats struct {
	QueueDepth       int64   // records waiting to be written
	Written          uint64  // records written since start
	Spilled          uint64  // records spilled to the overflow file
	Lost             uint64  // records dropped (queue and spill both failed)
	Batches          uint64  // batches written since start
	LastBatchSeconds float64 // duration of the last batch write
}

// Options configure New. Every field is optional.
type Options struct {
	// KnownModels is the initial set of model names used as label values;
	// other models are counted as "other". Replace it on config reload with
	// SetKnownModels. When both KnownModels and IsKnownModel are empty, any
	// model is accepted until MaxModels distinct ones were seen.
	KnownModels []string
	// IsKnownModel, if set, decides instead of KnownModels whether a model
	// gets its own label value. It is called on the request path, so it must
	// be cheap and safe for concurrent use (e.g. a map lookup in the current
	// pool), which lets the set follow reloads without SetKnownModels.
	IsKnownModel func(model string) bool
	// MaxModels caps the distinct model label values, whatever the known
	// set says, so a glob upstream ("*") cannot explode cardinality.
	// Default 200.
	MaxModels int
	// Upstreams returns the upstreams' health; it is called on each scrape.
	Upstreams func() []upstream.Status
	// Ledger returns the ledger writer's state; it is called on each scrape.
	Ledger func() LedgerStats
	// Currency is the deployment currency (config currency) of
	// tollgate_cost_usd_total, carried as its constant "currency" label
	// (one value per process, so no cardinality); empty means USD.
	Currency string
}

// Metrics records tollgate's request, upstream and limiter metrics. It is
// safe for concurrent use.
type Metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	ttft         *prometheus.HistogramVec
	tokens       *prometheus.CounterVec
	cost         *prometheus.CounterVec
	retries      *prometheus.CounterVec
	rejections   *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	attemptTime  *prometheus.HistogramVec
	transitions  *prometheus.CounterVec
	backendErrs  prometheus.Counter
	unpriced     [3]prometheus.Counter // refused, allowed (by the gate), recorded (in the ledger)
	budgetWarns  prometheus.Counter
	inFlight     prometheus.Gauge
	streams      prometheus.Gauge
	rejectByKind [4]prometheus.Counter

	// endRequest and endStream are built once so Begin allocates nothing.
	endRequest, endStream func()

	known      atomic.Pointer[map[string]struct{}]
	isKnown    func(string) bool
	maxModels  int
	mu         sync.RWMutex
	models     map[string]struct{} // accepted model label values
	reqSeries  map[reqKey]*reqSeries
	upSeries   map[string]*upSeries
	maxEntries int
}

var _ proxy.Observer = (*Metrics)(nil)

// NewRegistry returns a registry with the Go runtime and process collectors,
// for main to pass to New and Handler.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves the metrics gathered from g in the Prometheus text format
// (or OpenMetrics when the scraper asks for it). A failing collector does not
// fail the whole scrape.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// New creates the collectors and registers them on reg. It panics if they
// are already registered there (a wiring bug). A nil reg keeps the metrics
// unexposed, which suits tests and benchmarks.
func New(reg prometheus.Registerer, opts Options) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_requests_total",
			Help: "Client requests, by route, requested model, last upstream and outcome.",
		}, []string{"route", "model", "upstream", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_request_duration_seconds",
			Help:    "Time from request arrival to the last byte sent.",
			Buckets: LatencyBuckets,
		}, []string{"route", "model"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_time_to_first_token_seconds",
			Help:    "Time from request arrival to the first byte sent to the client, for successful requests.",
			Buckets: LatencyBuckets,
		}, []string{"route", "model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tokens_total",
			Help: "Tokens used, by model and kind (cached is part of prompt, reasoning part of completion).",
		}, []string{"model", "kind"}),
		// The name predates the currency setting and is kept so dashboards
		// and alerts keep working; the unit is the currency label's.
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "tollgate_cost_usd_total",
			Help:        "Cost of priced requests in whole units of the deployment currency named by the currency label (USD unless configured; the name is historical).",
			ConstLabels: prometheus.Labels{"currency": cmp.Or(strings.ToUpper(opts.Currency), "USD")},
		}, []string{"model"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_upstream_retries_total",
			Help: "Upstream attempts beyond the first, by the upstream that ended the request.",
		}, []string{"upstream"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_limit_rejections_total",
			Help: "Requests refused by the gateway's own admission checks.",
		}, []string{"reason"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_upstream_attempts_total",
			Help: "Upstream attempts by status class (2xx, 4xx, 429, 5xx) or error (no response).",
		}, []string{"upstream", "status"}),
		attemptTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_upstream_attempt_seconds",
			Help:    "Time from sending an upstream attempt to its response headers (or failure).",
			Buckets: LatencyBuckets,
		}, []string{"upstream"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_upstream_circuit_transitions_total",
			Help: "Circuit breaker state changes.",
		}, []string{"upstream", "from", "to"}),
		backendErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_limit_backend_errors_total",
			Help: "Failed calls to the shared limit backend (Redis).",
		}),
		budgetWarns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_budget_warnings_total",
			Help: "Keys whose spend reached limits.budget_warn of their budget (once per key and period).",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_requests_in_flight",
			Help: "Proxied requests being served now.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_streams_in_flight",
			Help: "Streaming requests being served now.",
		}),
		isKnown:    opts.IsKnownModel,
		maxModels:  opts.MaxModels,
		models:     make(map[string]struct{}),
		reqSeries:  make(map[reqKey]*reqSeries),
		upSeries:   make(map[string]*upSeries),
		maxEntries: 10000,
	}
	if m.maxModels <= 0 {
		m.maxModels = 200
	}
	if opts.KnownModels != nil {
		m.SetKnownModels(opts.KnownModels)
	}
	for i, reason := range rejectReasons {
		m.rejectByKind[i] = m.rejections.WithLabelValues(reason)
	}
	unpriced := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_unpriced_requests_total",
		Help: "Calls of models without a price: refused or allowed for keys with a budget (limits.unpriced), and recorded with tokens but no cost.",
	}, []string{"action"})
	for i, a := range []string{"refused", "allowed", "recorded"} {
		m.unpriced[i] = unpriced.WithLabelValues(a)
	}
	reg.MustRegister(unpriced, m.budgetWarns)
	m.endRequest = m.inFlight.Dec
	m.endStream = func() { m.streams.Dec(); m.inFlight.Dec() }
	reg.MustRegister(m.requests, m.duration, m.ttft, m.tokens, m.cost, m.retries,
		m.rejections, m.attempts, m.attemptTime, m.transitions, m.backendErrs, m.inFlight, m.streams)
	if opts.Upstreams != nil {
		reg.MustRegister(newUpstreamCollector(opts.Upstreams))
	}
	if opts.Ledger != nil {
		reg.MustRegister(newLedgerCollector(opts.Ledger))
	}
	return m
}

// SetKnownModels replaces the set of models that get their own label value,
// e.g. after a config reload. Models already counted keep their series.
func (m *Metrics) SetKnownModels(models []string) {
	set := make(map[string]struct{}, len(models))
	for _, s := range models {
		set[s] = struct{}{}
	}
	m.known.Store(&set)
}

// Begin implements proxy.Observer: it counts the request (and stream) in
// flight until the returned func is called.
func (m *Metrics) Begin(stream bool) (end func()) {
	m.inFlight.Inc()
	if stream {
		m.streams.Inc()
		return m.endStream
	}
	return m.endRequest
}

// Request implements proxy.Observer. It is called exactly once per client
// request with the final record.
func (m *Metrics) Request(rec *ledger.Record) {
	up := rec.Upstream
	if up == "" {
		up = None
	}
	model := rec.Model
	if model == "" { // refused or malformed before the model was read
		model = None
	}
	k := reqKey{route: routeOf(rec.Endpoint), model: model, upstream: up, outcome: rec.Outcome}
	s := m.series(k)
	s.requests.Inc()
	s.duration.Observe(rec.Duration.Seconds())
	if rec.Outcome == ledger.OutcomeOK && rec.TTFB > 0 {
		s.ttft.Observe(rec.TTFB.Seconds())
	}
	if rec.Attempts > 1 {
		s.retries.Add(float64(rec.Attempts - 1))
	}
	if s.reject != nil {
		s.reject.Inc()
	}
	addTokens(s.prompt, rec.PromptTokens)
	addTokens(s.completion, rec.CompletionTokens)
	addTokens(s.cached, rec.CachedTokens)
	addTokens(s.reasoning, rec.ReasoningTokens)
	if rec.CostNanoUSD > 0 {
		s.cost.Add(float64(rec.CostNanoUSD) / 1e9)
	}
	if !rec.Priced && rec.TotalTokens > 0 {
		m.unpriced[2].Inc()
	}
}

func addTokens(c prometheus.Counter, n int64) {
	if n > 0 {
		c.Add(float64(n))
	}
}

// Attempt implements proxy.Observer: one count per upstream attempt, by
// status class, and its time to headers.
func (m *Metrics) Attempt(upstreamName string, status int, err error, d time.Duration) {
	s := m.upstream(upstreamName)
	s.byClass[classOf(status, err)].Inc()
	s.latency.Observe(d.Seconds())
}

// OnStateChange counts a circuit breaker transition. Its signature matches
// upstream.Options.OnStateChange.
func (m *Metrics) OnStateChange(upstreamName string, from, to upstream.State) {
	m.transitions.WithLabelValues(upstreamName, string(from), string(to)).Inc()
}

// RedisFailure counts one failed call to the shared limit backend.
func (m *Metrics) RedisFailure() { m.backendErrs.Inc() }

// Unpriced counts a call of a model without a price by a key with a budget.
func (m *Metrics) Unpriced(refused bool) {
	if refused {
		m.unpriced[0].Inc()
		return
	}
	m.unpriced[1].Inc()
}

// BudgetWarning counts a key reaching its budget warning threshold.
func (m *Metrics) BudgetWarning() { m.budgetWarns.Inc() }

// rejectReasons are the outcomes counted as limit rejections, in rejectByKind order.
var rejectReasons = [4]string{
	string(ledger.OutcomeRateLimited), string(ledger.OutcomeQuota),
	string(ledger.OutcomeUnauthorized), string(ledger.OutcomeForbidden),
}

func rejectIndex(o ledger.Outcome) int {
	switch o {
	case ledger.OutcomeRateLimited:
		return 0
	case ledger.OutcomeQuota:
		return 1
	case ledger.OutcomeUnauthorized:
		return 2
	case ledger.OutcomeForbidden:
		return 3
	}
	return -1
}

// Routes that get their own label value; everything else is "other".
var routes = [...]string{
	"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models",
	"/api/chat", "/api/chat/stream", Other,
}

func routeOf(endpoint string) uint8 {
	for i, r := range routes[:len(routes)-1] {
		if endpoint == r {
			return uint8(i)
		}
	}
	return uint8(len(routes) - 1)
}

// Status classes for tollgate_upstream_attempts_total, indexing upSeries.byClass.
// Failed attempts are all "error": the proxy reports a client disconnect and
// an attempt timeout alike as context.Canceled, so telling them apart here
// would mislabel one of them.
var classes = [...]string{"error", "1xx", "2xx", "3xx", "4xx", "429", "5xx", Other}

func classOf(status int, err error) int {
	switch {
	case err != nil:
		return 0
	case status == http.StatusTooManyRequests:
		return 5
	case status >= 100 && status < 500:
		return status / 100
	case status >= 500 && status < 600:
		return 6
	}
	return len(classes) - 1
}

// outcomeLabel bounds the outcome label to the ledger's known values.
func outcomeLabel(o ledger.Outcome) string {
	switch o {
	case ledger.OutcomeOK, ledger.OutcomeClientError, ledger.OutcomeUpstreamError, ledger.OutcomeTimeout,
		ledger.OutcomeCancelled, ledger.OutcomeRateLimited, ledger.OutcomeUnauthorized,
		ledger.OutcomeForbidden, ledger.OutcomeQuota:
		return string(o)
	}
	return Other
}
