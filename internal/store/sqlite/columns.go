package sqlite

import (
	"github.com/tollgate/tollgate/internal/ledger"
)

// reqCol is one requests column that InsertRecords fills, with its value in
// a record. Values are driver.Value types (int64, not int) so database/sql
// passes them on without reflection.
type reqCol struct {
	name string
	val  func(r *ledger.Record) any
	// same, set on the low-cardinality columns, reports whether two
	// records agree on the column; a shaped statement binds such a column
	// once per distinct value set (shape.go), not once per row.
	same func(a, b *ledger.Record) bool
	// varied marks a shaped column that may take many values at once.
	varied bool
	// unset, set on the columns most rows leave at their DEFAULT (0 or
	// NULL), reports whether r does: a family of shaped statements leaves
	// them out, which saves binding them per row (shape.go).
	unset func(r *ledger.Record) bool
}

// reqCols are the requests columns in insert order. Adding a column (say
// cache_write_tokens) is one line here plus its migration.
var reqCols = []reqCol{
	{name: "id", val: func(r *ledger.Record) any { return r.ID }},
	{name: "time_us", val: func(r *ledger.Record) any { return r.Time.UnixMicro() }},
	{name: "key_id", val: func(r *ledger.Record) any { return r.KeyID },
		same: func(a, b *ledger.Record) bool { return a.KeyID == b.KeyID }},
	{name: "key_name", val: func(r *ledger.Record) any { return r.KeyName },
		same: func(a, b *ledger.Record) bool { return a.KeyName == b.KeyName }},
	{name: "end_user", val: func(r *ledger.Record) any { return r.User },
		same: func(a, b *ledger.Record) bool { return a.User == b.User }, varied: true},
	{name: "endpoint", val: func(r *ledger.Record) any { return r.Endpoint },
		same: func(a, b *ledger.Record) bool { return a.Endpoint == b.Endpoint }},
	{name: "model", val: func(r *ledger.Record) any { return r.Model },
		same: func(a, b *ledger.Record) bool { return a.Model == b.Model }},
	{name: "model_used", val: func(r *ledger.Record) any { return r.ModelUsed },
		same: func(a, b *ledger.Record) bool { return a.ModelUsed == b.ModelUsed }},
	{name: "upstream", val: func(r *ledger.Record) any { return r.Upstream },
		same: func(a, b *ledger.Record) bool { return a.Upstream == b.Upstream }},
	{name: "stream", val: func(r *ledger.Record) any { return r.Stream },
		same: func(a, b *ledger.Record) bool { return a.Stream == b.Stream }},
	{name: "outcome", val: func(r *ledger.Record) any { return string(r.Outcome) },
		same: func(a, b *ledger.Record) bool { return a.Outcome == b.Outcome }},
	{name: "status", val: func(r *ledger.Record) any { return int64(r.Status) },
		same: func(a, b *ledger.Record) bool { return a.Status == b.Status }},
	{name: "attempts", val: func(r *ledger.Record) any { return int64(r.Attempts) },
		same: func(a, b *ledger.Record) bool { return a.Attempts == b.Attempts }},
	{name: "prompt_tokens", val: func(r *ledger.Record) any { return r.PromptTokens }},
	{name: "completion_tokens", val: func(r *ledger.Record) any { return r.CompletionTokens }},
	{name: "cached_tokens", val: func(r *ledger.Record) any { return r.CachedTokens },
		unset: func(r *ledger.Record) bool { return r.CachedTokens == 0 }},
	{name: "reasoning_tokens", val: func(r *ledger.Record) any { return r.ReasoningTokens },
		unset: func(r *ledger.Record) bool { return r.ReasoningTokens == 0 }},
	{name: "total_tokens", val: func(r *ledger.Record) any { return r.TotalTokens }},
	{name: "estimated", val: func(r *ledger.Record) any { return r.Estimated },
		same: func(a, b *ledger.Record) bool { return a.Estimated == b.Estimated }},
	{name: "cost_nano", val: func(r *ledger.Record) any { return r.CostNanoUSD }},
	{name: "priced", val: func(r *ledger.Record) any { return r.Priced },
		same: func(a, b *ledger.Record) bool { return a.Priced == b.Priced }},
	{name: "duration_ns", val: func(r *ledger.Record) any { return int64(r.Duration) }},
	{name: "ttfb_ns", val: func(r *ledger.Record) any { return int64(r.TTFB) }},
	{name: "client_ip", val: func(r *ledger.Record) any { return r.ClientIP },
		same: func(a, b *ledger.Record) bool { return a.ClientIP == b.ClientIP }, varied: true},
	{name: "error", val: func(r *ledger.Record) any { return r.Error },
		same: func(a, b *ledger.Record) bool { return a.Error == b.Error }},
	{name: "request_body", val: func(r *ledger.Record) any { return nullBytes(r.RequestBody) },
		unset: func(r *ledger.Record) bool { return r.RequestBody == nil }},
	{name: "response_body", val: func(r *ledger.Record) any { return nullBytes(r.ResponseBody) },
		unset: func(r *ledger.Record) bool { return r.ResponseBody == nil }},
	{name: "cache_write_tokens", val: func(r *ledger.Record) any { return r.CacheWriteTokens },
		unset: func(r *ledger.Record) bool { return r.CacheWriteTokens == 0 }},
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}
