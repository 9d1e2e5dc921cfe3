package storetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// sums are the totals a report must equal, computed from rows.
type sums struct {
	req, errs, refused, unpriced                 int64
	prompt, compl, cached, written, reason, cost int64
	ttfbNs, ttfbN                                int64 // over rows with a time to first token
}

func (s *sums) add(r ledger.Record) {
	s.req++
	if r.Outcome != ledger.OutcomeOK {
		s.errs++
	}
	if store.Refused(&r) {
		s.refused++
	}
	if store.Unpriced(&r) {
		s.unpriced++
	}
	s.prompt += r.PromptTokens
	s.compl += r.CompletionTokens
	s.cached += r.CachedTokens
	s.written += r.CacheWriteTokens
	s.reason += r.ReasoningTokens
	s.cost += r.CostNanoUSD
	if r.TTFB > 0 {
		s.ttfbNs += int64(r.TTFB)
		s.ttfbN++
	}
}

func sumsOf(t store.UsageTotals) sums {
	return sums{t.Requests, t.Errors, t.Refused, t.Unpriced, t.PromptTokens, t.CompletionTokens,
		t.CachedTokens, t.CacheWriteTokens, t.ReasoningTokens, t.CostNanoUSD, t.TTFBNanos, t.TTFBCount}
}

// checkTTFTAvg: the mean time to first token is nil without a sample and
// the mean of the samples otherwise.
func checkTTFTAvg(t *testing.T, what string, tot store.UsageTotals) {
	t.Helper()
	switch {
	case tot.TTFBCount == 0 && tot.TTFTMsAvg != nil:
		t.Errorf("%s: ttft_ms_avg %v without a sample; want null", what, *tot.TTFTMsAvg)
	case tot.TTFBCount > 0 && (tot.TTFTMsAvg == nil ||
		math.Abs(*tot.TTFTMsAvg-float64(tot.TTFBNanos)/float64(tot.TTFBCount)/1e6) > 1e-9):
		t.Errorf("%s: ttft_ms_avg %v; want %d ns / %d", what, tot.TTFTMsAvg, tot.TTFBNanos, tot.TTFBCount)
	}
}

// randomRecords are n records over three days with awkward costs (odd
// nano-units, some near a billion), every outcome, priced and not.
func randomRecords(n int, seed uint64) []ledger.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	outcomes := []ledger.Outcome{ledger.OutcomeOK, ledger.OutcomeOK, ledger.OutcomeOK, ledger.OutcomeUpstreamError,
		ledger.OutcomeUnauthorized, ledger.OutcomeForbidden, ledger.OutcomeRateLimited, ledger.OutcomeQuota, ledger.OutcomeCancelled}
	models := []string{"gpt-4o", "claude-sonnet-4-6", "mystery", "deepseek-chat"}
	var out []ledger.Record
	for i := range n {
		r := Rec(fmt.Sprintf("m%04d", i), base().Add(time.Duration(rng.Int64N(int64(72*time.Hour)))))
		r.KeyID = fmt.Sprintf("k%d", rng.IntN(3))
		r.Model = models[rng.IntN(len(models))]
		r.Outcome = outcomes[rng.IntN(len(outcomes))]
		r.Duration = time.Duration(rng.Int64N(int64(10 * time.Second)))
		switch {
		case store.Refused(&ledger.Record{Outcome: r.Outcome}):
			r.PromptTokens, r.CompletionTokens, r.CachedTokens, r.CacheWriteTokens, r.ReasoningTokens, r.TotalTokens = 0, 0, 0, 0, 0, 0
			r.CostNanoUSD, r.Priced = 0, false
		case r.Model == "mystery":
			r.CostNanoUSD, r.Priced = 0, false
		default:
			r.PromptTokens = rng.Int64N(200_000)
			r.CachedTokens = rng.Int64N(r.PromptTokens + 1)
			r.CacheWriteTokens = rng.Int64N(r.PromptTokens - r.CachedTokens + 1)
			r.CompletionTokens = rng.Int64N(10_000)
			r.ReasoningTokens = rng.Int64N(r.CompletionTokens + 1)
			r.TotalTokens = r.PromptTokens + r.CompletionTokens
			r.CostNanoUSD = rng.Int64N(999_999_999) + 1
		}
		// Time to first token: none for refused requests and one in four
		// others (the aggregates count only the requests that have one).
		r.TTFB = 0
		if !store.Refused(&r) && rng.IntN(4) != 0 {
			r.TTFB = time.Duration(rng.Int64N(int64(r.Duration)+1)) + time.Nanosecond
		}
		out = append(out, r)
	}
	return out
}

// testUsageEqualsRows: report totals, whole and per group, equal the sum of
// the ledger rows to the last nano-unit, whether read from hourly or daily
// aggregates, in UTC or in another zone.
func testUsageEqualsRows(t *testing.T, s store.Store) {
	recs := randomRecords(400, 7)
	for lo := 0; lo < len(recs); lo += 37 { // uneven batches: aggregates are created and updated
		insert(t, s, recs[lo:min(lo+37, len(recs))]...)
	}
	var rows []ledger.Record
	f := store.LogFilter{Limit: 1000}
	for {
		page, next, err := s.ListLogs(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if len(rows) != len(recs) {
		t.Fatalf("ListLogs returned %d rows, want %d", len(rows), len(recs))
	}
	var want sums
	byModel := map[string]*sums{}
	for _, r := range rows {
		want.add(r)
		if byModel[r.Model] == nil {
			byModel[r.Model] = &sums{}
		}
		byModel[r.Model].add(r)
	}
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.UsageQuery{
		{Since: base(), Until: base().Add(72 * time.Hour)},
		{Since: base().Add(-time.Hour), Until: base().Add(80 * time.Hour), GroupBy: "model"},
		{GroupBy: "day"},
		{GroupBy: "day", Location: sh},
		{GroupBy: "hour", Location: sh},
		{GroupBy: "key"},
	} {
		rep, err := s.Usage(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if got := sumsOf(rep.Total); got != want {
			t.Errorf("%+v: total %+v; want the sum of rows %+v", q, got, want)
		}
		checkTTFTAvg(t, fmt.Sprintf("%+v total", q), rep.Total)
		var groups sums
		for _, g := range rep.Groups {
			gs := sumsOf(g)
			checkTTFTAvg(t, fmt.Sprintf("%+v group %s", q, g.Group), g)
			groups.ttfbNs += gs.ttfbNs
			groups.ttfbN += gs.ttfbN
			groups.req += gs.req
			groups.cost += gs.cost
			groups.written += gs.written
			if q.GroupBy == "model" && gs != *byModel[g.Group] {
				t.Errorf("model %s: %+v; want %+v", g.Group, gs, *byModel[g.Group])
			}
		}
		if q.GroupBy != "" && (groups.req != want.req || groups.cost != want.cost || groups.written != want.written ||
			groups.ttfbNs != want.ttfbNs || groups.ttfbN != want.ttfbN) {
			t.Errorf("%+v: groups add up to %+v; want %d requests, %d cost, %d cache writes, %d/%d ttfb",
				q, groups, want.req, want.cost, want.written, want.ttfbNs, want.ttfbN)
		}
	}
}

// testUsageTimezone: days in Asia/Shanghai start at 16:00 UTC.
func testUsageTimezone(t *testing.T, s store.Store) {
	a := Rec("tz1", base().Add(15*time.Hour+30*time.Minute)) // 23:30 in Shanghai, Jan 10
	b := Rec("tz2", base().Add(16*time.Hour+30*time.Minute)) // 00:30 in Shanghai, Jan 11
	insert(t, s, a, b)
	sh, _ := time.LoadLocation("Asia/Shanghai")
	rep, err := s.Usage(t.Context(), store.UsageQuery{GroupBy: "day", Location: sh})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 2 || rep.Groups[0].Group != "2026-01-10" || rep.Groups[1].Group != "2026-01-11" ||
		rep.Groups[0].Requests != 1 || rep.Timezone != "Asia/Shanghai" {
		t.Errorf("Shanghai days = %+v (zone %q); want 2026-01-10 and 2026-01-11 with one request each", rep.Groups, rep.Timezone)
	}
	rep, err = s.Usage(t.Context(), store.UsageQuery{GroupBy: "day"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 1 || rep.Groups[0].Group != "2026-01-10" || rep.Timezone != "UTC" {
		t.Errorf("UTC days = %+v; want one day", rep.Groups)
	}
	rep, err = s.Usage(t.Context(), store.UsageQuery{GroupBy: "hour", Location: sh})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 2 || rep.Groups[0].Group != "2026-01-10T23:00:00+08:00" {
		t.Errorf("Shanghai hours = %+v", rep.Groups)
	}
}

// testPercentiles: p50 and p95 within 5% of the truth for known
// distributions from 1 ms to 10 min (the report computes them exactly from
// raw rows when it can).
func testPercentiles(t *testing.T, s store.Store) {
	rng := rand.New(rand.NewPCG(3, 3))
	dists := []struct {
		model string
		draw  func() time.Duration
	}{
		{"fast", func() time.Duration { return time.Millisecond + time.Duration(rng.Int64N(int64(time.Millisecond))) }},
		{"point", func() time.Duration { return 1500 * time.Microsecond }},
		{"lognormal", func() time.Duration {
			return time.Duration(math.Exp(math.Log(float64(2*time.Second))+1.5*rng.NormFloat64())) + time.Millisecond
		}},
		{"slow", func() time.Duration { return time.Minute + time.Duration(rng.Int64N(int64(9*time.Minute))) }},
	}
	var recs []ledger.Record
	truth := map[string][]time.Duration{}
	for _, d := range dists {
		for i := range 500 {
			r := Rec(fmt.Sprintf("%s-%d", d.model, i), base().Add(time.Duration(i)*time.Second))
			r.Model, r.Duration = d.model, d.draw()
			truth[d.model] = append(truth[d.model], r.Duration)
			recs = append(recs, r)
		}
	}
	insert(t, s, recs...)
	rep, err := s.Usage(t.Context(), store.UsageQuery{Since: base(), Until: base().Add(time.Hour), GroupBy: "model"})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rep.Groups {
		ds := truth[g.Group]
		slices.Sort(ds)
		for _, c := range []struct {
			q   float64
			got float64
		}{{0.5, g.P50Ms}, {0.95, g.P95Ms}} {
			want := store.ExactPercentile(ds, c.q)
			if math.Abs(c.got-want) > 0.05*want || !g.ExactPercentiles {
				t.Errorf("%s p%.0f = %.3f ms (exact %v); want %.3f ms within 5%%", g.Group, c.q*100, c.got, g.ExactPercentiles, want)
			}
		}
	}
}
