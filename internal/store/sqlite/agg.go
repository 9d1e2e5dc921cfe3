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

// aggVals are the sums of sumCols followed by the histogram counts.
type aggVals []int64

// groupKey is what a row shares with every row it is summed with: its
// usage row (the hour and day follow from the zone bucket) and its zones.
// Rows are summed per group first, so a row costs one map operation, not
// one per usage table and zone dimension (nine).
type groupKey struct {
	bucket                                   int64 // store.ZoneBucket of time_us
	keyID, model, upstream, endUser, outcome string
	status                                   int
	stream                                   bool
}

type group struct {
	rep  *ledger.Record // a row of the group
	n    int64
	vals aggVals
}

// aggregator sums a batch in memory, so the aggregate tables take one
// upsert per group and batch, not one per row. add sums rows into groups;
// fold turns the groups into hourly, daily, last and zones.
type aggregator struct {
	groups        map[groupKey]*group
	hourly, daily map[aggKey]aggVals
	last          map[string]int64 // newest time_us per key id
	zones         store.ZoneCounts
}

func newAggregator() *aggregator {
	return &aggregator{groups: map[groupKey]*group{}, hourly: map[aggKey]aggVals{}, daily: map[aggKey]aggVals{},
		last: map[string]int64{}, zones: store.ZoneCounts{}}
}

func (a *aggregator) add(r *ledger.Record) {
	us := r.Time.UnixMicro()
	k := groupKey{store.ZoneBucket(us), r.KeyID, r.Model, r.Upstream, r.User, string(r.Outcome), r.Status, r.Stream}
	g := a.groups[k]
	if g == nil {
		g = &group{rep: r, vals: make(aggVals, len(sumCols)+store.HistBuckets)}
		a.groups[k] = g
	}
	g.n++
	for i, c := range sumCols {
		g.vals[i] += c.val(r)
	}
	g.vals[len(sumCols)+store.HistBucket(r.Duration)]++
	if r.KeyID != "" && us > a.last[r.KeyID] {
		a.last[r.KeyID] = us
	}
}

// fold adds the groups to hourly, daily and zones, and empties them.
func (a *aggregator) fold() {
	for _, g := range a.groups {
		r := g.rep
		k := aggKey{store.HourFloor(r.Time), r.KeyID, r.Model, r.Upstream, r.User}
		addTo(a.hourly, k, g.vals)
		k.t -= k.t % 86400
		addTo(a.daily, k, g.vals)
		a.zones.AddN(r, g.n)
	}
	clear(a.groups)
}

func addTo(m map[aggKey]aggVals, k aggKey, vals aggVals) {
	v := m[k]
	if v == nil {
		v = make(aggVals, len(vals))
		m[k] = v
	}
	for i, x := range vals {
		v[i] += x
	}
}
