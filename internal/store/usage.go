package store

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// UsageRow is one group as summed by a backend from usage_hourly, before the
// derived fields are filled in. Backends share BuildReport so both answer
// alike.
type UsageRow struct {
	Group  string // column value, or the hour/day start in unix seconds for "hour"/"day"
	Totals UsageTotals
	Hist   [HistBuckets]int64
}

// UsageGroupColumn maps UsageQuery.GroupBy to the aggregate column to group
// on. "day" and "hour" both return "hour": the time column of the span
// (hour or day), bucketed by the caller (t - t % 86400 for UTC days).
func UsageGroupColumn(groupBy string) (string, error) {
	switch groupBy {
	case "":
		return "", nil
	case "model":
		return "model", nil
	case "key":
		return "key_id", nil
	case "user":
		return "end_user", nil
	case "upstream":
		return "upstream", nil
	case "day", "hour":
		return "hour", nil
	}
	return "", fmt.Errorf("store: unknown group_by %q", groupBy)
}

// BuildReport turns summed rows (merged by group, see MergeRows) into a UsageReport: totals over all rows,
// labelled groups (none when groupBy is ""), percentiles from the merged
// histograms. Time groups come oldest first; the others by cost, then
// requests (both descending), then name.
func BuildReport(groupBy string, rows []UsageRow) UsageReport {
	var rep UsageReport
	var all [HistBuckets]int64
	for _, r := range rows {
		addTotals(&rep.Total, r.Totals)
		for i, c := range r.Hist {
			all[i] += c
		}
	}
	FinishTotals(&rep.Total, all)
	if groupBy == "" {
		return rep
	}
	type keyed struct {
		sortKey int64
		row     UsageRow
	}
	var ks []keyed
	for _, r := range rows {
		k := keyed{row: r}
		k.row.Totals.Group = r.Group
		if groupBy == "day" || groupBy == "hour" {
			k.sortKey, _ = strconv.ParseInt(r.Group, 10, 64)
			k.row.Totals.Group = GroupLabel(groupBy, k.sortKey)
		}
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if groupBy == "day" || groupBy == "hour" {
			return cmp.Compare(a.sortKey, b.sortKey)
		}
		return cmp.Or(
			cmp.Compare(b.row.Totals.CostNanoUSD, a.row.Totals.CostNanoUSD),
			cmp.Compare(b.row.Totals.Requests, a.row.Totals.Requests),
			cmp.Compare(a.row.Totals.Group, b.row.Totals.Group),
		)
	})
	rep.Groups = make([]UsageTotals, 0, len(ks))
	for _, k := range ks {
		t := k.row.Totals
		FinishTotals(&t, k.row.Hist)
		rep.Groups = append(rep.Groups, t)
	}
	return rep
}

func addTotals(dst *UsageTotals, s UsageTotals) {
	dst.Requests += s.Requests
	dst.Errors += s.Errors
	dst.PromptTokens += s.PromptTokens
	dst.CompletionTokens += s.CompletionTokens
	dst.CachedTokens += s.CachedTokens
	dst.ReasoningTokens += s.ReasoningTokens
	dst.CostNanoUSD += s.CostNanoUSD
	dst.Unpriced += s.Unpriced
	dst.CacheWriteTokens += s.CacheWriteTokens
	dst.Refused += s.Refused
	dst.TTFBNanos += s.TTFBNanos
	dst.TTFBCount += s.TTFBCount
}

// Unpriced reports whether r counts as unpriced in the aggregates: it used
// tokens, but its model had no price. A request refused before reaching a
// model used none and is not unpriced.
func Unpriced(r *ledger.Record) bool {
	return !r.Priced && (r.PromptTokens > 0 || r.CompletionTokens > 0 || r.TotalTokens > 0)
}

// RefusedOutcomes are the outcomes of requests the gateway refused itself.
var RefusedOutcomes = []ledger.Outcome{ledger.OutcomeUnauthorized, ledger.OutcomeForbidden,
	ledger.OutcomeRateLimited, ledger.OutcomeQuota}

// Refused reports whether the gateway itself refused r.
func Refused(r *ledger.Record) bool {
	switch r.Outcome {
	case ledger.OutcomeUnauthorized, ledger.OutcomeForbidden, ledger.OutcomeRateLimited, ledger.OutcomeQuota:
		return true
	}
	return false
}

// AggSum is one summed column of usage_hourly and usage_daily, with what a
// ledger row adds to it.
type AggSum struct {
	Name string
	Of   func(r *ledger.Record) int64
}

// AggSums are the summed columns of usage_hourly and usage_daily before the
// histogram (h00..h23), in the order of UsageTotals' ScanDest. Both backends
// sum a batch with them; adding a column is one line here plus migrations.
var AggSums = []AggSum{
	{"requests", func(*ledger.Record) int64 { return 1 }},
	{"errors", func(r *ledger.Record) int64 { return b2i(r.Outcome != ledger.OutcomeOK) }},
	{"prompt_tokens", func(r *ledger.Record) int64 { return r.PromptTokens }},
	{"completion_tokens", func(r *ledger.Record) int64 { return r.CompletionTokens }},
	{"cached_tokens", func(r *ledger.Record) int64 { return r.CachedTokens }},
	{"reasoning_tokens", func(r *ledger.Record) int64 { return r.ReasoningTokens }},
	{"cost_nano", func(r *ledger.Record) int64 { return r.CostNanoUSD }},
	{"unpriced", func(r *ledger.Record) int64 { return b2i(Unpriced(r)) }},
	{"cache_write_tokens", func(r *ledger.Record) int64 { return r.CacheWriteTokens }},
	{"refused", func(r *ledger.Record) int64 { return b2i(Refused(r)) }},
	{"ttfb_ns", func(r *ledger.Record) int64 { return max(0, int64(r.TTFB)) }},
	{"ttfb_n", func(r *ledger.Record) int64 { return b2i(r.TTFB > 0) }},
}

// AggSumColumns are the names of AggSums.
var AggSumColumns = func() []string {
	names := make([]string, len(AggSums))
	for i, c := range AggSums {
		names[i] = c.Name
	}
	return names
}()

// AggColumns are every summed column of usage_hourly and usage_daily: the
// AggSums, then the duration histogram h00..h23.
func AggColumns() []string {
	cols := slices.Clone(AggSumColumns)
	for i := range HistBuckets {
		cols = append(cols, fmt.Sprintf("h%02d", i))
	}
	return cols
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// UsageSumColumns is the SELECT list (after the group column) both backends
// use over usage_hourly; ScanDest matches it. cast is appended to every sum
// (PostgreSQL needs "::bigint" because SUM(bigint) is numeric).
func UsageSumColumns(cast string) string {
	s := ""
	for i, c := range AggColumns() {
		if i > 0 {
			s += ", "
		}
		s += "COALESCE(SUM(" + c + "), 0)" + cast
	}
	return s
}

// ScanDest returns scan destinations for the group column followed by UsageSumColumns.
func (r *UsageRow) ScanDest() []any {
	t := &r.Totals
	d := []any{&r.Group, &t.Requests, &t.Errors, &t.PromptTokens, &t.CompletionTokens,
		&t.CachedTokens, &t.ReasoningTokens, &t.CostNanoUSD, &t.Unpriced, &t.CacheWriteTokens, &t.Refused,
		&t.TTFBNanos, &t.TTFBCount}
	for i := range r.Hist {
		d = append(d, &r.Hist[i])
	}
	return d
}

// Span is one part of a usage range, read from one aggregate table:
// [From, To) in unix seconds on column Col of Table.
type Span struct {
	Table, Col string
	From, To   int64
}

// unbounded stands in for a missing Since or Until; it is a multiple of a
// day so that it splits cleanly.
const unbounded = int64(1<<40) * 86400

// SplitRange splits the hours overlapping [since, until) (zero = unbounded)
// into whole UTC days, read from usage_daily, and the partial days at either
// end, read hour by hour from usage_hourly. Results equal a pure hourly sum.
func SplitRange(since, until time.Time) []Span {
	lo, hi := -unbounded, unbounded
	if !since.IsZero() {
		lo = HourFloor(since)
	}
	if !until.IsZero() {
		hi = HourCeil(until)
	}
	if lo >= hi {
		return nil
	}
	dayLo := lo + mod(-lo, 86400) // first day boundary at or after lo
	dayHi := hi - mod(hi, 86400)  // last day boundary at or before hi
	if dayLo >= dayHi {
		return []Span{{"usage_hourly", "hour", lo, hi}}
	}
	var out []Span
	if lo < dayLo {
		out = append(out, Span{"usage_hourly", "hour", lo, dayLo})
	}
	out = append(out, Span{"usage_daily", "day", dayLo, dayHi})
	if dayHi < hi {
		out = append(out, Span{"usage_hourly", "hour", dayHi, hi})
	}
	return out
}

// UsageSpans is SplitRange for q, except that GroupBy "hour" (and "day" in
// a zone other than UTC) needs hourly rows throughout.
func UsageSpans(q UsageQuery) []Span {
	spans := SplitRange(q.Since, q.Until)
	if SQLGroupBy(q) != "hour" || len(spans) == 0 {
		return spans
	}
	return []Span{{"usage_hourly", "hour", spans[0].From, spans[len(spans)-1].To}}
}

// MergeRows sums rows with the same Group (from different spans).
func MergeRows(rows []UsageRow) []UsageRow {
	idx := make(map[string]int, len(rows))
	var out []UsageRow
	for _, r := range rows {
		i, ok := idx[r.Group]
		if !ok {
			idx[r.Group] = len(out)
			out = append(out, r)
			continue
		}
		addTotals(&out[i].Totals, r.Totals)
		for b, c := range r.Hist {
			out[i].Hist[b] += c
		}
	}
	return out
}
