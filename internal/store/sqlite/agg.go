package sqlite

import (
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// aggKey identifies one usage_hourly or usage_daily row.
type aggKey struct {
	t                               int64 // hour or day start, unix seconds
	keyID, model, upstream, endUser string
}

// aggVals are the sums of store.AggSums followed by the histogram counts.
type aggVals []int64

// groupKey is what a row shares with every row it is counted with: its
// usage rows (the hour and day follow from the zone bucket) and its zones.
type groupKey struct {
	bucket                                   int64 // store.ZoneBucket of time_us
	keyID, model, upstream, endUser, outcome string
	status                                   int
	stream                                   bool
}

// group is a recently seen group: the sums its rows go to and how many
// rows it has had since its zones were last counted.
type group struct {
	key           groupKey
	rep           *ledger.Record // a row of the group
	n             int64
	hourly, daily aggVals
}

// recentGroups is how many groups the aggregator remembers. A batch of a
// busy gateway repeats a few groups, and a row of a remembered one costs a
// short scan instead of nine map operations (two usage rows, seven zone
// dimensions); a row of a new group costs what it did without the cache.
// A map of every group cost varied batches, where groups are as many as
// rows, about twice as much CPU.
const recentGroups = 8

// aggregator sums a batch in memory, so the aggregate tables take one
// upsert per group and batch, not one per row. Call fold before reading
// zones.
type aggregator struct {
	recent        [recentGroups]group
	nRecent, next int // slots used; the slot to reuse next
	hourly, daily map[aggKey]aggVals
	last          map[string]int64 // newest time_us per key id
	zones         store.ZoneCounts
}

func newAggregator() *aggregator {
	return &aggregator{hourly: map[aggKey]aggVals{}, daily: map[aggKey]aggVals{}, last: map[string]int64{},
		zones: store.ZoneCounts{}}
}

func (a *aggregator) add(r *ledger.Record) {
	us := r.Time.UnixMicro()
	k := groupKey{store.ZoneBucket(us), r.KeyID, r.Model, r.Upstream, r.User, string(r.Outcome), r.Status, r.Stream}
	g := a.group(k, r)
	g.n++
	for i, c := range store.AggSums {
		v := c.Of(r)
		g.hourly[i] += v
		g.daily[i] += v
	}
	h := len(store.AggSums) + store.HistBucket(r.Duration)
	g.hourly[h]++
	g.daily[h]++
	if r.KeyID != "" && us > a.last[r.KeyID] {
		a.last[r.KeyID] = us
	}
}

// group returns the remembered group k, or remembers it in place of the
// least recently added one, whose zones it counts.
func (a *aggregator) group(k groupKey, r *ledger.Record) *group {
	for i := range a.nRecent {
		if a.recent[i].key == k {
			return &a.recent[i]
		}
	}
	var g *group
	if a.nRecent < recentGroups {
		g = &a.recent[a.nRecent]
		a.nRecent++
	} else {
		g = &a.recent[a.next]
		a.next = (a.next + 1) % recentGroups
		a.zones.AddN(g.rep, g.n)
	}
	hk := aggKey{store.HourFloor(r.Time), r.KeyID, r.Model, r.Upstream, r.User}
	dk := hk
	dk.t -= dk.t % 86400
	*g = group{key: k, rep: r, hourly: sums(a.hourly, hk), daily: sums(a.daily, dk)}
	return g
}

// sums returns the sums of k in m, adding them if new.
func sums(m map[aggKey]aggVals, k aggKey) aggVals {
	v := m[k]
	if v == nil {
		v = make(aggVals, len(store.AggSums)+store.HistBuckets)
		m[k] = v
	}
	return v
}

// fold counts the zones of the remembered groups and forgets them.
func (a *aggregator) fold() {
	for i := range a.nRecent {
		a.zones.AddN(a.recent[i].rep, a.recent[i].n)
	}
	a.recent = [recentGroups]group{}
	a.nRecent, a.next = 0, 0
}
