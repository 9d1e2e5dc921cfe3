package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/internal/upstream"
)

// upstreamCollector reads the pool's health at scrape time, so the values are
// exactly what GET /admin/upstreams would show and nothing is pushed on the
// request path.
type upstreamCollector struct {
	status                               func() []upstream.Status
	state, inFlight, latency, errorRatio *prometheus.Desc
	requests, failures                   *prometheus.Desc
}

func newUpstreamCollector(status func() []upstream.Status) *upstreamCollector {
	l := []string{"upstream"}
	return &upstreamCollector{
		status: status,
		state: prometheus.NewDesc("tollgate_upstream_circuit_state",
			"Circuit breaker state: 0 closed, 1 half-open, 2 open.", l, nil),
		inFlight: prometheus.NewDesc("tollgate_upstream_in_flight",
			"Attempts in flight to the upstream (streams count until they end).", l, nil),
		latency: prometheus.NewDesc("tollgate_upstream_latency_seconds",
			"Moving average of time to first byte of successful attempts.", l, nil),
		errorRatio: prometheus.NewDesc("tollgate_upstream_error_ratio",
			"Failed share of attempts in the breaker window.", l, nil),
		requests: prometheus.NewDesc("tollgate_upstream_health_requests_total",
			"Attempts seen by the health tracker (cancelled ones excluded), carried over reloads.", l, nil),
		failures: prometheus.NewDesc("tollgate_upstream_health_failures_total",
			"Attempts the health tracker counted as failures.", l, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.inFlight, c.latency, c.errorRatio, c.requests, c.failures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.status() {
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, stateValue(s.State), s.Name)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(s.InFlight), s.Name)
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, s.LatencyMS/1000, s.Name)
		ch <- prometheus.MustNewConstMetric(c.errorRatio, prometheus.GaugeValue, s.ErrorRatio, s.Name)
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(s.Requests), s.Name)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(s.Failures), s.Name)
	}
}

// stateValue maps a circuit state to the gauge value; unknown states read as
// open, the state an alert should look at.
func stateValue(s upstream.State) float64 {
	switch s {
	case upstream.StateClosed:
		return 0
	case upstream.StateHalfOpen:
		return 1
	}
	return 2
}

// ledgerCollector reads the ledger writer's counters at scrape time.
type ledgerCollector struct {
	stats                                        func() LedgerStats
	queue, written, spilled, lost, batches, last *prometheus.Desc
}

func newLedgerCollector(stats func() LedgerStats) *ledgerCollector {
	return &ledgerCollector{
		stats: stats,
		queue: prometheus.NewDesc("tollgate_ledger_queue_depth",
			"Usage records waiting to be written.", nil, nil),
		written: prometheus.NewDesc("tollgate_ledger_records_written_total",
			"Usage records written to the store.", nil, nil),
		spilled: prometheus.NewDesc("tollgate_ledger_records_spilled_total",
			"Usage records spilled to the overflow file because the queue was full or the store failed.", nil, nil),
		lost: prometheus.NewDesc("tollgate_ledger_records_lost_total",
			"Usage records that could not be kept at all.", nil, nil),
		batches: prometheus.NewDesc("tollgate_ledger_batches_total",
			"Batches written to the store.", nil, nil),
		last: prometheus.NewDesc("tollgate_ledger_last_batch_seconds",
			"Duration of the last batch write.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queue, c.written, c.spilled, c.lost, c.batches, c.last} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(s.QueueDepth))
	ch <- prometheus.MustNewConstMetric(c.written, prometheus.CounterValue, float64(s.Written))
	ch <- prometheus.MustNewConstMetric(c.spilled, prometheus.CounterValue, float64(s.Spilled))
	ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(s.Lost))
	ch <- prometheus.MustNewConstMetric(c.batches, prometheus.CounterValue, float64(s.Batches))
	ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, s.LastBatchSeconds)
}
