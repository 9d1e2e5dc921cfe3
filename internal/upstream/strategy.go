package upstream

import "time"

// explore is the share of lowest_latency plans that use a weighted random
// order instead, so a slow upstream gets fresh samples and can win traffic
// back once it recovers.
const explore = 0.1

// cand carries the sort keys of one candidate, parallel to a Target slice.
type cand struct {
	tier   uint8   // see snapshot.tier
	key    float64 // strategy key, lower first
	weight float64
	cool   time.Time // see snapshot.coolUntil
}

// order sorts seg in place by strategy s. cs is scratch space of the same
// length. Ties on the strategy key are broken by a weighted random shuffle,
// so equal upstreams share load by weight.
func (p *Pool) order(s strategy, seg []Target, cs []cand, now time.Time) {
	for i := range seg {
		u := seg[i].Upstream
		snap := u.snapshot(seg[i].Model, now)
		cs[i] = cand{tier: snap.tier, weight: u.weight, cool: snap.coolUntil}
		switch s {
		case stratLowestLatency:
			cs[i].key = snap.latency // -1 (no samples) sorts first: try it
		case stratLowestCost:
			cs[i].key = u.price(seg[i].Model)
		case stratLeastBusy:
			cs[i].key = float64(snap.inFlight)
		}
	}
	if s != stratPriority && len(seg) > 1 {
		p.weightedShuffle(seg, cs)
	}
	if s == stratLowestLatency && p.env.rand() < explore {
		for i := range cs {
			cs[i].key = min(cs[i].key, 0) // random order, untried ones still first
		}
	}
	insertionSort(seg, cs)
}

// weightedShuffle permutes seg (with cs) so that each position is drawn at
// random in proportion to weight among the candidates not yet placed; the
// first element is thus upstream i with probability w_i / Σw, and fallbacks
// are weight-ordered too.
func (p *Pool) weightedShuffle(seg []Target, cs []cand) {
	total := 0.0
	for i := range cs {
		total += cs[i].weight
	}
	for i := 0; i < len(seg)-1; i++ {
		r := p.env.rand() * total
		j := i
		for ; j < len(seg)-1; j++ {
			r -= cs[j].weight
			if r < 0 {
				break
			}
		}
		seg[i], seg[j] = seg[j], seg[i]
		cs[i], cs[j] = cs[j], cs[i]
		total -= cs[i].weight
	}
}

// insertionSort is a stable sort by (tier, key). Segments are a handful of
// upstreams, where it beats sort.Stable and allocates nothing.
func insertionSort(seg []Target, cs []cand) {
	for i := 1; i < len(seg); i++ {
		for j := i; j > 0 && less(&cs[j], &cs[j-1]); j-- {
			seg[j], seg[j-1] = seg[j-1], seg[j]
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func less(a, b *cand) bool {
	if a.tier != b.tier {
		return a.tier < b.tier
	}
	return a.key < b.key
}

// sinkRejecting moves candidates whose circuit refuses attempts (tier 2) to
// the end of the whole plan, keeping the relative order of the rest, so an
// alias falls back to its next target's healthy upstreams before coming
// back to a cooling-down one. The refusing ones are ordered by when their
// cool-down ends, soonest first. When every candidate refuses, the first
// is marked Panic: the request goes there anyway (Envoy's panic threshold),
// so the client gets the upstream's real answer, not a synthesized one.
func sinkRejecting(out []Target, cs []cand) {
	n := 0
	for i := range out {
		if cs[i].tier == 2 {
			n++
		}
	}
	if n == 0 {
		return
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && cs[j].tier != 2 && cs[j-1].tier == 2; j-- {
			out[j], out[j-1] = out[j-1], out[j]
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
	tail, tailC := out[len(out)-n:], cs[len(out)-n:]
	for i := 1; i < len(tail); i++ {
		for j := i; j > 0 && tailC[j].cool.Before(tailC[j-1].cool); j-- {
			tail[j], tail[j-1] = tail[j-1], tail[j]
			tailC[j], tailC[j-1] = tailC[j-1], tailC[j]
		}
	}
	for i := range tail {
		tail[i].Open, tail[i].CoolUntil = true, tailC[i].cool
	}
	if n == len(out) {
		out[0].Panic = true
	}
}
