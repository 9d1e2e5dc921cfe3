package store

import (
	"context"
	"math"
	"slices"
	"strconv"
	"time"
)

// MaxExactRows is the most raw rows a usage report reads to compute exact
// percentiles. Above it (or when retention has deleted some of the range's
// rows) percentiles are estimated from the aggregates' histogram.
const MaxExactRows = 200_000

func isUTC(loc *time.Location) bool { return loc == nil || loc == time.UTC || loc.String() == "UTC" }

// SQLGroupBy is the grouping a backend runs in SQL for q: "day" in a zone
// other than UTC is summed per hour and regrouped into local days by
// BuildReportFor, since usage_daily holds UTC days.
func SQLGroupBy(q UsageQuery) string {
	if q.GroupBy == "day" && !isUTC(q.Location) {
		return "hour"
	}
	return q.GroupBy
}

// BuildReportFor is BuildReport for q: "day" groups in q.Location, day and
// hour labels in that zone, and the zone named in the report. rows come
// from grouping by SQLGroupBy(q).
func BuildReportFor(q UsageQuery, rows []UsageRow) UsageReport {
	loc := q.Location
	if isUTC(loc) {
		rep := BuildReport(q.GroupBy, rows)
		rep.Timezone = "UTC"
		return rep
	}
	if q.GroupBy == "day" {
		for i := range rows {
			h, _ := strconv.ParseInt(rows[i].Group, 10, 64)
			rows[i].Group = strconv.FormatInt(LocalDayStart(h, loc), 10)
		}
		rows = MergeRows(rows)
	}
	var keys map[string]int64 // label → unix start, to relabel after BuildReport
	if q.GroupBy == "day" || q.GroupBy == "hour" {
		keys = make(map[string]int64, len(rows))
		for _, r := range rows {
			s, _ := strconv.ParseInt(r.Group, 10, 64)
			keys[GroupLabel(q.GroupBy, s)] = s
		}
	}
	rep := BuildReport(q.GroupBy, rows)
	rep.Timezone = loc.String()
	for i := range rep.Groups {
		if s, ok := keys[rep.Groups[i].Group]; ok {
			rep.Groups[i].Group = GroupLabelIn(q.GroupBy, s, loc)
		}
	}
	return rep
}

// LocalDayStart returns the start (unix seconds) of the day in loc that
// contains the instant unix.
func LocalDayStart(unix int64, loc *time.Location) int64 {
	t := time.Unix(unix, 0).In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc).Unix()
}

// GroupLabelIn formats a day or hour start for labels in loc: "2026-01-10"
// for days, RFC 3339 with the zone's offset for hours.
func GroupLabelIn(groupBy string, unix int64, loc *time.Location) string {
	if isUTC(loc) {
		return GroupLabel(groupBy, unix)
	}
	t := time.Unix(unix, 0).In(loc)
	if groupBy == "day" {
		return t.Format(time.DateOnly)
	}
	return t.Format("2006-01-02T15:00:00-07:00")
}

// RawRow is one ledger row as exact percentiles need it.
type RawRow struct {
	Group    string // the group column's value ("" when grouping by time or not at all)
	Unix     int64  // request time, unix seconds
	Duration time.Duration
}

// RawRange is the time range [From, To) in unix seconds whose raw rows
// match the aggregates a usage query sums (whole hours), clamped to what
// both databases' time types hold.
func RawRange(q UsageQuery) (from, to int64, ok bool) {
	spans := UsageSpans(q)
	if len(spans) == 0 {
		return 0, 0, false
	}
	from, to = max(spans[0].From, 0), min(spans[len(spans)-1].To, 100_000_000_000)
	return from, to, from < to
}

// ApplyExactPercentiles replaces the estimated percentiles of rep by exact
// ones computed from raws, the range's raw rows, when they are complete
// (as many as the report counts: retention may have deleted some). It
// reports whether it did.
func ApplyExactPercentiles(rep *UsageReport, q UsageQuery, raws []RawRow) bool {
	if int64(len(raws)) != rep.Total.Requests || len(raws) == 0 {
		return false
	}
	all := make([]time.Duration, len(raws))
	by := map[string][]time.Duration{}
	for i, r := range raws {
		all[i] = r.Duration
		if q.GroupBy != "" {
			g := rawGroup(q, r)
			by[g] = append(by[g], r.Duration)
		}
	}
	setExact(&rep.Total, all)
	for i := range rep.Groups {
		g := &rep.Groups[i]
		if ds, ok := by[g.Group]; ok && int64(len(ds)) == g.Requests {
			setExact(g, ds)
		}
	}
	return true
}

// rawGroup is the report label of a raw row's group.
func rawGroup(q UsageQuery, r RawRow) string {
	switch q.GroupBy {
	case "hour":
		return GroupLabelIn("hour", r.Unix-mod(r.Unix, 3600), q.Location)
	case "day":
		if isUTC(q.Location) {
			return GroupLabel("day", r.Unix-mod(r.Unix, 86400))
		}
		return GroupLabelIn("day", LocalDayStart(r.Unix, q.Location), q.Location)
	}
	return r.Group
}

func setExact(t *UsageTotals, ds []time.Duration) {
	slices.Sort(ds)
	t.P50Ms, t.P95Ms = ExactPercentile(ds, 0.50), ExactPercentile(ds, 0.95)
	t.ExactPercentiles = true
}

// ExactPercentile is the nearest-rank q-quantile (0 < q <= 1) of sorted
// durations, in milliseconds; 0 for none.
func ExactPercentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// KeyLister is the part of KeyStore NameKeys needs.
type KeyLister interface {
	ListKeys(ctx context.Context) ([]Key, error)
}

// NameKeys fills KeyName in the groups of a report grouped by key.
func NameKeys(ctx context.Context, ks KeyLister, groupBy string, rep *UsageReport) error {
	if groupBy != "key" || len(rep.Groups) == 0 {
		return nil
	}
	keys, err := ks.ListKeys(ctx)
	if err != nil {
		return err
	}
	names := make(map[string]string, len(keys))
	for _, k := range keys {
		names[k.ID] = k.Name
	}
	for i := range rep.Groups {
		rep.Groups[i].KeyName = names[rep.Groups[i].Group]
	}
	return nil
}
