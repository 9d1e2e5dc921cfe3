// Package storetest is the conformance suite every store.Store
// implementation must pass. The sqlite and postgres packages run it against
// real databases.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// base is the day-aligned time the suite's records start at.
const t0Unix = 1768003200 // 2026-01-10T00:00:00Z

func base() time.Time { return time.Unix(t0Unix, 0).UTC() }

// Run runs every conformance test, or only the named ones. open must return
// a fresh, empty store; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store, only ...string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"InsertIdempotent", testInsertIdempotent},
		{"UsageMath", testUsageMath},
		{"UsageEqualsRows", testUsageEqualsRows},
		{"UsageTimezone", testUsageTimezone},
		{"UsageDailyEqualsHourly", testUsageDailyEqualsHourly},
		{"UsageCacheLateRows", testUsageCacheLateRows},
		{"Percentiles", testPercentiles},
		{"ListLogsPaging", testListLogsPaging},
		{"ListLogsConcurrentInserts", testListLogsConcurrent},
		{"ListLogsZones", testListLogsZones},
		{"DeleteLogsZones", testDeleteLogsZones},
		{"GetLogNotFound", testGetLogNotFound},
		{"DeleteLogsBefore", testDeleteLogsBefore},
		{"Keys", testKeys},
		{"KeySpendAndLastUsed", testKeySpendLastUsed},
		{"Conversations", testConversations},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ConcurrentInserts", testConcurrentInserts},
		{"Ping", func(t *testing.T, s store.Store) {
			if err := s.Ping(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		if len(only) > 0 && !slices.Contains(only, tc.name) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// Rec builds a plausible record; the suite and benchmarks share it.
func Rec(id string, at time.Time) ledger.Record {
	return ledger.Record{
		ID: id, Time: at.UTC().Truncate(time.Microsecond), KeyID: "k1", KeyName: "key one", User: "alice",
		Endpoint: "/v1/chat/completions", Model: "gpt-4o", ModelUsed: "openai/gpt-4o", Upstream: "main",
		Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1,
		PromptTokens: 100, CompletionTokens: 50, CachedTokens: 10, CacheWriteTokens: 20, ReasoningTokens: 5, TotalTokens: 150,
		CostNanoUSD: 1_000_000, Priced: true, Duration: 800 * time.Millisecond, TTFB: 120 * time.Millisecond,
		ClientIP: "127.0.0.1",
	}
}

func insert(t *testing.T, s store.Store, recs ...ledger.Record) {
	t.Helper()
	if err := s.InsertRecords(t.Context(), recs); err != nil {
		t.Fatalf("InsertRecords: %v", err)
	}
}

func testInsertIdempotent(t *testing.T, s store.Store) {
	full := Rec("r1", base().Add(90*time.Second+123456*time.Nanosecond))
	full.Stream, full.Estimated = true, true
	full.Error = "boom"
	full.RequestBody, full.ResponseBody = []byte(`{"a":1}`), []byte{0, 1, 2}
	r2, r3 := Rec("r2", base().Add(time.Minute)), Rec("r3", base().Add(2*time.Minute))
	r3.Outcome, r3.Status, r3.Priced, r3.CostNanoUSD = ledger.OutcomeUpstreamError, 502, false, 0
	insert(t, s, full, r2, r3)
	// Replay with one new row: only r4 may count.
	insert(t, s, full, r2, r3, Rec("r4", base().Add(3*time.Minute)))
	insert(t, s) // empty batch is fine

	got, err := s.GetLog(t.Context(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	want := full
	want.Time = full.Time.Truncate(time.Microsecond)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GetLog mismatch (-want +got):\n%s", d)
	}
	// A client may reuse its X-Request-Id: a later request with the same id
	// is a new row, not a replay, and the newest is what GetLog returns.
	again := Rec("r1", base().Add(5*time.Minute))
	again.Status = 201
	insert(t, s, again)
	if got, err := s.GetLog(t.Context(), "r1"); err != nil || got.Status != 201 {
		t.Errorf("GetLog(r1) after a reused id = %+v, %v; want the newer row (status 201)", got.Status, err)
	}
	// An hour (usage_hourly) and a whole day (usage_daily) must agree.
	for _, until := range []time.Time{base().Add(time.Hour), base().Add(24 * time.Hour)} {
		rep, err := s.Usage(t.Context(), store.UsageQuery{Since: base(), Until: until})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Total.Requests != 5 || rep.Total.Errors != 1 || rep.Total.Unpriced != 1 ||
			rep.Total.PromptTokens != 500 || rep.Total.CostNanoUSD != 4_000_000 {
			t.Errorf("until %v: after replay totals = %+v, want 5 requests, 1 error, 1 unpriced, 500 prompt, 4e6 nano", until, rep.Total)
		}
	}
}

func testUsageMath(t *testing.T, s store.Store) {
	type row struct {
		key, user, model, up string
		hour                 int
		outcome              ledger.Outcome
		prompt, compl, cost  int64
		priced               bool
		dur                  time.Duration
	}
	rows := []row{
		{"k1", "alice", "gpt-4o", "a", 0, ledger.OutcomeOK, 100, 10, 7, true, 100 * time.Millisecond},
		{"k1", "alice", "gpt-4o", "a", 0, ledger.OutcomeOK, 200, 20, 11, true, 200 * time.Millisecond},
		{"k1", "bob", "qwen-plus", "b", 1, ledger.OutcomeUpstreamError, 0, 0, 0, true, 5 * time.Second},
		{"k2", "carol", "gpt-4o", "a", 25, ledger.OutcomeOK, 1000, 100, 1_000_000_007, true, 2 * time.Second},
		{"k2", "carol", "mystery", "b", 26, ledger.OutcomeOK, 5, 5, 0, false, 30 * time.Millisecond},
		{"k2", "carol", "mystery", "b", 49, ledger.OutcomeOK, 9, 9, 0, false, time.Second}, // outside range below
	}
	var recs []ledger.Record
	for i, r := range rows {
		rec := Rec(fmt.Sprintf("u%d", i), base().Add(time.Duration(r.hour)*time.Hour+time.Duration(i)*time.Minute))
		rec.KeyID, rec.User, rec.Model, rec.Upstream, rec.Outcome = r.key, r.user, r.model, r.up, r.outcome
		rec.PromptTokens, rec.CompletionTokens, rec.CostNanoUSD, rec.Priced, rec.Duration = r.prompt, r.compl, r.cost, r.priced, r.dur
		rec.CachedTokens, rec.ReasoningTokens = int64(i), int64(2*i)
		recs = append(recs, rec)
	}
	// Two batches so aggregates are also updated, not only created.
	insert(t, s, recs[:2]...)
	insert(t, s, recs[2:]...)

	type g struct {
		group         string
		req, errs     int64
		prompt, compl int64
		cost, unpr    int64
	}
	tests := []struct {
		groupBy string
		keyID   string
		total   g
		groups  []g
	}{
		{"", "", g{"", 5, 1, 1305, 135, 1_000_000_025, 1}, nil},
		{"model", "", g{"", 5, 1, 1305, 135, 1_000_000_025, 1}, []g{
			{"gpt-4o", 3, 0, 1300, 130, 1_000_000_025, 0}, {"mystery", 1, 0, 5, 5, 0, 1}, {"qwen-plus", 1, 1, 0, 0, 0, 0}}},
		{"key", "", g{"", 5, 1, 1305, 135, 1_000_000_025, 1}, []g{
			{"k2", 2, 0, 1005, 105, 1_000_000_007, 1}, {"k1", 3, 1, 300, 30, 18, 0}}},
		{"user", "k1", g{"", 3, 1, 300, 30, 18, 0}, []g{
			{"alice", 2, 0, 300, 30, 18, 0}, {"bob", 1, 1, 0, 0, 0, 0}}},
		{"upstream", "", g{"", 5, 1, 1305, 135, 1_000_000_025, 1}, []g{
			{"a", 3, 0, 1300, 130, 1_000_000_025, 0}, {"b", 2, 1, 5, 5, 0, 1}}},
		{"day", "", g{"", 5, 1, 1305, 135, 1_000_000_025, 1}, []g{
			{"2026-01-10", 3, 1, 300, 30, 18, 0}, {"2026-01-11", 2, 0, 1005, 105, 1_000_000_007, 1}}},
		{"hour", "k2", g{"", 2, 0, 1005, 105, 1_000_000_007, 1}, []g{
			{"2026-01-11T01:00:00Z", 1, 0, 1000, 100, 1_000_000_007, 0}, {"2026-01-11T02:00:00Z", 1, 0, 5, 5, 0, 1}}},
	}
	conv := func(u store.UsageTotals) g {
		return g{u.Group, u.Requests, u.Errors, u.PromptTokens, u.CompletionTokens, u.CostNanoUSD, u.Unpriced}
	}
	for _, tc := range tests {
		t.Run("group="+tc.groupBy, func(t *testing.T) {
			rep, err := s.Usage(t.Context(), store.UsageQuery{Since: base(), Until: base().Add(48 * time.Hour), GroupBy: tc.groupBy, KeyID: tc.keyID})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.total, conv(rep.Total), cmp.AllowUnexported(g{})); d != "" {
				t.Errorf("total (-want +got):\n%s", d)
			}
			var got []g
			for _, u := range rep.Groups {
				got = append(got, conv(u))
			}
			if d := cmp.Diff(tc.groups, got, cmp.AllowUnexported(g{}), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("groups (-want +got):\n%s", d)
			}
		})
	}
	rep, err := s.Usage(t.Context(), store.UsageQuery{Since: base(), Until: base().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.CachedTokens != 0+1+2+3+4 || rep.Total.ReasoningTokens != 2*(0+1+2+3+4) {
		t.Errorf("cached/reasoning = %d/%d, want 10/20", rep.Total.CachedTokens, rep.Total.ReasoningTokens)
	}
	if rep.Total.CostUSD != 1.000000025 {
		t.Errorf("CostUSD = %v", rep.Total.CostUSD)
	}
	// Durations: 30ms, 100ms, 200ms, 2s, 5s → p50 near 200ms, p95 in the 5s bucket.
	if rep.Total.P50Ms < 200/store.HistRatio || rep.Total.P50Ms > 200*store.HistRatio {
		t.Errorf("p50 = %vms, want about 200", rep.Total.P50Ms)
	}
	if rep.Total.P95Ms < 5000/store.HistRatio || rep.Total.P95Ms > 5000*store.HistRatio {
		t.Errorf("p95 = %vms, want about 5000", rep.Total.P95Ms)
	}
	if _, err := s.Usage(t.Context(), store.UsageQuery{GroupBy: "nonsense"}); err == nil {
		t.Error("unknown group_by: want error")
	}
	empty, err := s.Usage(t.Context(), store.UsageQuery{Since: base().Add(-72 * time.Hour), Until: base().Add(-48 * time.Hour), GroupBy: "model"})
	if err != nil || empty.Total.Requests != 0 || len(empty.Groups) != 0 {
		t.Errorf("empty range = %+v, %v", empty, err)
	}
}

// pageAll pages through ListLogs and fails on duplicates.
func pageAll(t *testing.T, s store.Store, f store.LogFilter) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	for range 1000 {
		recs, next, err := s.ListLogs(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > store.ClampLimit(f.Limit) {
			t.Fatalf("page of %d rows, limit %d", len(recs), f.Limit)
		}
		for _, r := range recs {
			if seen[r.ID] {
				t.Fatalf("duplicate %s across pages", r.ID)
			}
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
		if next == "" {
			return ids
		}
		f.Cursor = next
	}
	t.Fatal("paging did not end")
	return nil
}

func testListLogsPaging(t *testing.T, s store.Store) {
	var recs []ledger.Record
	for i := range 120 {
		// Groups of three share a timestamp so the id tie-break matters.
		r := Rec(fmt.Sprintf("p%03d", i), base().Add(time.Duration(i/3)*time.Second))
		r.Model = []string{"gpt-4o", "qwen-plus"}[i%2]
		r.KeyID = []string{"k1", "k2", "k3"}[i%3]
		r.User = []string{"alice", "bob", "carol", "dave"}[i%4]
		if i%5 == 0 {
			r.Outcome = ledger.OutcomeTimeout
		}
		r.Upstream = []string{"up-a", "up-b"}[i%7/6] // one in seven on up-b
		r.Stream = i%3 == 1
		if i%11 == 0 {
			r.Status = 429
		}
		recs = append(recs, r)
	}
	insert(t, s, recs...)
	streamed, notStreamed := true, false
	tests := []struct {
		name string
		f    store.LogFilter
		keep func(r ledger.Record) bool
	}{
		{"all", store.LogFilter{Limit: 7}, func(ledger.Record) bool { return true }},
		{"default limit", store.LogFilter{}, func(ledger.Record) bool { return true }},
		{"model", store.LogFilter{Model: "qwen-plus", Limit: 5}, func(r ledger.Record) bool { return r.Model == "qwen-plus" }},
		{"key+user", store.LogFilter{KeyID: "k2", User: "bob", Limit: 3}, func(r ledger.Record) bool { return r.KeyID == "k2" && r.User == "bob" }},
		{"outcome", store.LogFilter{Outcome: "timeout", Limit: 4}, func(r ledger.Record) bool { return r.Outcome == ledger.OutcomeTimeout }},
		{"range", store.LogFilter{Since: base().Add(10 * time.Second), Until: base().Add(20 * time.Second), Limit: 4},
			func(r ledger.Record) bool {
				return !r.Time.Before(base().Add(10*time.Second)) && r.Time.Before(base().Add(20*time.Second))
			}},
		{"no match", store.LogFilter{Model: "none"}, func(ledger.Record) bool { return false }},
		{"upstream", store.LogFilter{Upstream: "up-b", Limit: 4}, func(r ledger.Record) bool { return r.Upstream == "up-b" }},
		{"status", store.LogFilter{Status: 429, Limit: 4}, func(r ledger.Record) bool { return r.Status == 429 }},
		{"streamed", store.LogFilter{Stream: &streamed, Limit: 9}, func(r ledger.Record) bool { return r.Stream }},
		{"not streamed", store.LogFilter{Stream: &notStreamed, Limit: 9}, func(r ledger.Record) bool { return !r.Stream }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for i := len(recs) - 1; i >= 0; i-- {
				if tc.keep(recs[i]) {
					want = append(want, recs[i].ID)
				}
			}
			// Same second: ids descending, which the reverse walk above yields.
			got := pageAll(t, s, tc.f)
			if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
		})
	}
	if _, _, err := s.ListLogs(t.Context(), store.LogFilter{Cursor: "!!not-a-cursor"}); err == nil {
		t.Error("bad cursor: want error")
	}
}

func testListLogsConcurrent(t *testing.T, s store.Store) {
	var recs []ledger.Record
	for i := range 50 {
		recs = append(recs, Rec(fmt.Sprintf("c%03d", i), base().Add(time.Duration(i)*time.Second)))
	}
	insert(t, s, recs...)
	f := store.LogFilter{Limit: 10}
	var got []string
	for page := 0; ; page++ {
		rs, next, err := s.ListLogs(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			got = append(got, r.ID)
		}
		// Newer rows arrive between pages; they must not shift the pages.
		insert(t, s, Rec(fmt.Sprintf("n%03d", page), base().Add(time.Hour+time.Duration(page)*time.Second)))
		if next == "" {
			break
		}
		f.Cursor = next
	}
	var want []string
	for i := 49; i >= 0; i-- {
		want = append(want, recs[i].ID)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("pages under inserts (-want +got):\n%s", d)
	}
}

func testGetLogNotFound(t *testing.T, s store.Store) {
	if _, err := s.GetLog(t.Context(), "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetLog(missing) = %v, want ErrNotFound", err)
	}
}

func testDeleteLogsBefore(t *testing.T, s store.Store) {
	var recs []ledger.Record
	for i := range 25 {
		recs = append(recs, Rec(fmt.Sprintf("d%02d", i), base().Add(time.Duration(i)*time.Minute)))
	}
	insert(t, s, recs...)
	cut := base().Add(20 * time.Minute) // d00..d19 are older
	var batches []int
	for range 10 {
		n, err := s.DeleteLogsBefore(t.Context(), cut, 8)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, n)
		if n == 0 {
			break
		}
	}
	if d := cmp.Diff([]int{8, 8, 4, 0}, batches); d != "" {
		t.Errorf("batches (-want +got):\n%s", d)
	}
	ids := pageAll(t, s, store.LogFilter{Limit: 100})
	if d := cmp.Diff([]string{"d24", "d23", "d22", "d21", "d20"}, ids); d != "" {
		t.Errorf("remaining (-want +got):\n%s", d)
	}
	// Aggregates outlive raw rows.
	rep, err := s.Usage(t.Context(), store.UsageQuery{Since: base(), Until: base().Add(time.Hour)})
	if err != nil || rep.Total.Requests != 25 {
		t.Errorf("usage after delete = %d, %v; want 25", rep.Total.Requests, err)
	}
}

func testKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := base().Truncate(time.Microsecond)
	k1 := store.Key{ID: "k1", Name: "one", Prefix: "tg_AB12", Hash: "h1", Models: []string{"gpt-4o", "qwen-*"},
		RPM: 60, TPM: 1000, MaxParallel: 4, BudgetNano: 5e9, BudgetPeriod: "month",
		ExpiresAt: t0.Add(48 * time.Hour), CreatedAt: t0, UpdatedAt: t0}
	k2 := store.Key{ID: "k2", Name: "two", Prefix: "tg_CD34", Hash: "h2", CreatedAt: t0.Add(time.Second), UpdatedAt: t0.Add(time.Second)}
	for _, k := range []store.Key{k2, k1} {
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateKey(ctx, store.Key{ID: "k3", Hash: "h1"}); err == nil {
		t.Error("duplicate hash: want error")
	}
	got, err := s.GetKey(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(k1, got); d != "" {
		t.Errorf("GetKey (-want +got):\n%s", d)
	}
	list, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]store.Key{k1, k2}, list); d != "" {
		t.Errorf("ListKeys oldest first (-want +got):\n%s", d)
	}
	upd := k1
	upd.Name, upd.Models, upd.RPM, upd.RevokedAt = "renamed", nil, 0, t0.Add(time.Hour)
	if err := s.UpdateKey(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetKey(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.UpdatedAt.After(k1.UpdatedAt) {
		t.Errorf("UpdatedAt not bumped: %v", got.UpdatedAt)
	}
	upd.UpdatedAt = got.UpdatedAt
	if d := cmp.Diff(upd, got); d != "" {
		t.Errorf("after UpdateKey (-want +got):\n%s", d)
	}
	if err := s.UpdateKey(ctx, store.Key{ID: "nope", Hash: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateKey(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetKey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetKey(missing) = %v, want ErrNotFound", err)
	}
}

func testKeySpendLastUsed(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(id, key string, at time.Time, cost int64) ledger.Record {
		r := Rec(id, at)
		r.KeyID, r.CostNanoUSD = key, cost
		return r
	}
	insert(t, s,
		mk("s1", "k1", base().Add(-25*time.Hour), 100),
		mk("s2", "k1", base().Add(10*time.Minute), 20),
		mk("s3", "k1", base().Add(2*time.Hour+5*time.Second), 3),
		mk("s4", "k2", base().Add(time.Hour), 4000),
		mk("s5", "", base().Add(3*time.Hour), 1))
	insert(t, s, mk("s2", "k1", base().Add(10*time.Minute), 20)) // replay must not double
	tests := []struct {
		key   string
		since time.Time
		want  int64
	}{
		{"k1", base().Add(-48 * time.Hour), 123},
		{"k1", base(), 23},
		{"k1", base().Add(2 * time.Hour), 3},
		{"k2", base(), 4000},
		{"k9", base(), 0},
	}
	for _, tc := range tests {
		got, err := s.KeySpend(ctx, tc.key, tc.since)
		if err != nil || got != tc.want {
			t.Errorf("KeySpend(%s, %v) = %d, %v; want %d", tc.key, tc.since, got, err, tc.want)
		}
	}
	last, err := s.KeysLastUsed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"k1": base().Add(2*time.Hour + 5*time.Second), "k2": base().Add(time.Hour)}
	if d := cmp.Diff(want, last); d != "" {
		t.Errorf("KeysLastUsed (-want +got):\n%s", d)
	}
	// An older row must not move last-used backwards.
	insert(t, s, mk("s6", "k2", base().Add(-time.Hour), 1))
	last, _ = s.KeysLastUsed(ctx)
	if !last["k2"].Equal(base().Add(time.Hour)) {
		t.Errorf("k2 last used moved to %v", last["k2"])
	}
}

// testConcurrentInserts runs writers (as replicas would) whose batches hit
// the same aggregate rows in different orders: no deadlock, exact sums.
func testConcurrentInserts(t *testing.T, s store.Store) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const writers, batches, per = 4, 5, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				var recs []ledger.Record
				for i := range per {
					r := Rec(fmt.Sprintf("w%d-b%d-%02d", w, b, i), base().Add(time.Duration(i%7)*time.Hour))
					r.KeyID = []string{"k1", "k2", "k3"}[(i+w)%3]
					r.Model = []string{"gpt-4o", "qwen-plus"}[(i/3+w)%2]
					recs = append(recs, r)
				}
				if w%2 == 1 {
					slices.Reverse(recs)
				}
				if err := s.InsertRecords(ctx, recs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep, err := s.Usage(ctx, store.UsageQuery{Since: base(), Until: base().Add(24 * time.Hour), GroupBy: "key"})
	if err != nil {
		t.Fatal(err)
	}
	const n = writers * batches * per
	if rep.Total.Requests != n || rep.Total.PromptTokens != n*100 || rep.Total.CostNanoUSD != n*1_000_000 {
		t.Errorf("totals = %+v, want %d requests", rep.Total, n)
	}
	hourly, err := s.Usage(ctx, store.UsageQuery{Since: base(), Until: base().Add(24 * time.Hour), GroupBy: "hour"})
	if err != nil || hourly.Total.Requests != n || len(hourly.Groups) != 7 {
		t.Errorf("hourly = %d requests in %d groups, %v; want %d in 7", hourly.Total.Requests, len(hourly.Groups), err, n)
	}
}
