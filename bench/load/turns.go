package load

import (
	"net/http"
	"time"
)

// Turns sums the runs of one workload on one target taken in turns
// (tollgate-bench --interleave): counts, time and CPU add up, and the
// latencies go to histograms shared by every turn (Spec.Latency,
// Spec.FirstChunk), so the result reads as one run of the summed length.
type Turns struct {
	Latency, FirstChunk *Histogram
	client              *http.Client // made by the first Spec, shared by every turn
	sum                 Result
	n                   int
}

// NewTurns returns an empty sum.
func NewTurns() *Turns {
	return &Turns{Latency: NewHistogram(), FirstChunk: NewHistogram()}
}

// Spec returns spec for one turn of the given length, collecting into t,
// on one client for every turn (its connections stay open between turns,
// as in a run of the whole length).
func (t *Turns) Spec(spec Spec, turn time.Duration) Spec {
	if t.client == nil {
		t.client = ClientFor(spec)
	}
	spec.Duration = turn
	spec.Latency, spec.FirstChunk, spec.Client = t.Latency, t.FirstChunk, t.client
	return spec
}

// Close closes the turns' idle connections.
func (t *Turns) Close() {
	if t.client != nil {
		t.client.CloseIdleConnections()
	}
}

// Add counts one turn's result.
func (t *Turns) Add(r Result) {
	s := &t.sum
	if t.n == 0 {
		*s = r
	} else {
		s.Requests += r.Requests
		s.Errors += r.Errors
		s.Elapsed += r.Elapsed
		s.CPU += r.CPU
		s.Proc = s.Proc && r.Proc
		s.RSS = r.RSS
		s.HWM = max(s.HWM, r.HWM)
		if s.FirstError == "" {
			s.FirstError = r.FirstError
		}
	}
	t.n++
}

// Result is the sum of the turns added: rate over the summed time, CPU per
// request over the summed requests, percentiles over every turn's requests.
func (t *Turns) Result() Result {
	r := t.sum
	r.RPS, r.CPUPerRequest = 0, 0
	if r.Elapsed > 0 {
		r.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	}
	if r.Requests > 0 {
		r.CPUPerRequest = r.CPU / time.Duration(r.Requests)
	}
	r.Latency, r.FirstChunk = t.Latency.Summary(), t.FirstChunk.Summary()
	return r
}
