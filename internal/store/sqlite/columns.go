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
	// shape marks the columns stored in request_shapes, not in
	// request_rows (shape.go); shapeKey has a field for each.
	shape bool
	// unset, set on the columns most rows leave at their DEFAULT ('', 0
	// or NULL), reports whether r does: a chunk in which every row does
	// takes statements that leave the column out, which saves binding it
	// per row (rows.go).
	unset func(r *ledger.Record) bool
}

// reqCols are the columns of the requests view in insert order. Adding a
// row column (say cache_write_tokens) is one line here plus its migration;
// a shape column also needs its shapeKey field.
var reqCols = []reqCol{
	{name: "id", val: func(r *ledger.Record) any { return r.ID }},
	{name: "time_us", val: func(r *ledger.Record) any { return r.Time.UnixMicro() }},
	{name: "key_id", val: func(r *ledger.Record) any { return r.KeyID }, shape: true},
	{name: "key_name", val: func(r *ledger.Record) any { return r.KeyName }, shape: true},
	{name: "end_user", val: func(r *ledger.Record) any { return r.User },
		unset: func(r *ledger.Record) bool { return r.User == "" }},
	{name: "endpoint", val: func(r *ledger.Record) any { return r.Endpoint }, shape: true},
	{name: "model", val: func(r *ledger.Record) any { return r.Model }, shape: true},
	{name: "model_used", val: func(r *ledger.Record) any { return r.ModelUsed }, shape: true},
	{name: "upstream", val: func(r *ledger.Record) any { return r.Upstream }, shape: true},
	{name: "stream", val: func(r *ledger.Record) any { return r.Stream }, shape: true},
	{name: "outcome", val: func(r *ledger.Record) any { return string(r.Outcome) }, shape: true},
	{name: "status", val: func(r *ledger.Record) any { return int64(r.Status) }, shape: true},
	{name: "attempts", val: func(r *ledger.Record) any { return int64(r.Attempts) }, shape: true},
	{name: "prompt_tokens", val: func(r *ledger.Record) any { return r.PromptTokens }},
	{name: "completion_tokens", val: func(r *ledger.Record) any { return r.CompletionTokens }},
	{name: "cached_tokens", val: func(r *ledger.Record) any { return r.CachedTokens },
		unset: func(r *ledger.Record) bool { return r.CachedTokens == 0 }},
	{name: "reasoning_tokens", val: func(r *ledger.Record) any { return r.ReasoningTokens },
		unset: func(r *ledger.Record) bool { return r.ReasoningTokens == 0 }},
	{name: "total_tokens", val: func(r *ledger.Record) any { return r.TotalTokens }},
	{name: "estimated", val: func(r *ledger.Record) any { return r.Estimated }, shape: true},
	{name: "cost_nano", val: func(r *ledger.Record) any { return r.CostNanoUSD }},
	{name: "priced", val: func(r *ledger.Record) any { return r.Priced }, shape: true},
	{name: "duration_ns", val: func(r *ledger.Record) any { return int64(r.Duration) }},
	{name: "ttfb_ns", val: func(r *ledger.Record) any { return int64(r.TTFB) }},
	{name: "client_ip", val: func(r *ledger.Record) any { return r.ClientIP }},
	{name: "error", val: func(r *ledger.Record) any { return r.Error },
		unset: func(r *ledger.Record) bool { return r.Error == "" }},
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
