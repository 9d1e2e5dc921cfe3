package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/internal/ledger"
)

// reqKey identifies the label combination of one request. The model is
// already folded, so the cache holds at most MaxModels models' worth of keys.
type reqKey struct {
	route    uint8
	model    string
	upstream string
	outcome  ledger.Outcome
}

// reqSeries are the children a request with one reqKey touches, resolved
// once: WithLabelValues hashes every label and allocates its variadic slice,
// which is most of the cost of a naive Request.
type reqSeries struct {
	requests                              prometheus.Counter
	duration, ttft                        prometheus.Observer
	retries                               prometheus.Counter
	reject                                prometheus.Counter // nil unless the outcome is a limit rejection
	prompt, completion, cached, reasoning prometheus.Counter
	cost                                  prometheus.Counter
}

// upSeries are one upstream's attempt children.
type upSeries struct {
	byClass [len(classes)]prometheus.Counter
	latency prometheus.Observer
}

// known reports whether model may have its own label value (before the
// MaxModels cap).
func (m *Metrics) knownModel(model string) bool {
	if m.isKnown != nil {
		return m.isKnown(model)
	}
	if set := m.known.Load(); set != nil {
		_, ok := (*set)[model]
		return ok
	}
	return true
}

// series returns the children for k, creating them on first use.
func (m *Metrics) series(k reqKey) *reqSeries {
	if k.model != None && !m.knownModel(k.model) {
		k.model = Other
	}
	m.mu.RLock()
	s := m.reqSeries[k]
	m.mu.RUnlock()
	if s != nil {
		return s
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.reqSeries[k]; s != nil {
		return s
	}
	if _, seen := m.models[k.model]; !seen && k.model != Other && k.model != None {
		if len(m.models) >= m.maxModels {
			k.model = Other
			if s = m.reqSeries[k]; s != nil {
				return s
			}
		} else {
			m.models[k.model] = struct{}{}
		}
	}
	route, upstreamName, outcome := routes[k.route], k.upstream, outcomeLabel(k.outcome)
	s = &reqSeries{
		requests:   m.requests.WithLabelValues(route, k.model, upstreamName, outcome),
		duration:   m.duration.WithLabelValues(route, k.model),
		ttft:       m.ttft.WithLabelValues(route, k.model),
		retries:    m.retries.WithLabelValues(upstreamName),
		prompt:     m.tokens.WithLabelValues(k.model, "prompt"),
		completion: m.tokens.WithLabelValues(k.model, "completion"),
		cached:     m.tokens.WithLabelValues(k.model, "cached"),
		reasoning:  m.tokens.WithLabelValues(k.model, "reasoning"),
		cost:       m.cost.WithLabelValues(k.model),
	}
	if i := rejectIndex(k.outcome); i >= 0 {
		s.reject = m.rejectByKind[i]
	}
	// Past the cap (only reachable with many upstreams or odd outcomes) the
	// children still count correctly; they are just resolved every time.
	if len(m.reqSeries) < m.maxEntries {
		m.reqSeries[k] = s
	}
	return s
}

// upstream returns the attempt children for the named upstream.
func (m *Metrics) upstream(name string) *upSeries {
	m.mu.RLock()
	s := m.upSeries[name]
	m.mu.RUnlock()
	if s != nil {
		return s
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.upSeries[name]; s != nil {
		return s
	}
	label := name
	if len(m.upSeries) >= m.maxEntries/10 {
		label = Other // upstream names come from config; this only guards a runaway
	}
	s = &upSeries{latency: m.attemptTime.WithLabelValues(label)}
	for i, c := range classes {
		s.byClass[i] = m.attempts.WithLabelValues(label, c)
	}
	if label == name {
		m.upSeries[name] = s
	}
	return s
}
