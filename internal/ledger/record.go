// Package ledger owns the usage record every request leaves behind, the price
// table that turns tokens into cost, and the batching writer that makes
// records durable without slowing the request path.
//
// The package knows no database: the writer hands batches to a Sink, which the
// store packages implement.
package ledger

import "time"

// Outcome classifies how a request ended. The values are stored and exposed
// through the admin API, so they are part of the contract.
type Outcome string

// Outcomes of a request.
const (
	OutcomeOK            Outcome = "ok"
	OutcomeClientError   Outcome = "client_error"   // 4xx caused by the request itself (bad JSON, upstream 400/404)
	OutcomeUpstreamError Outcome = "upstream_error" // upstream 5xx/429 after retries, unreachable, broken stream
	OutcomeTimeout       Outcome = "timeout"        // whole-request deadline hit
	OutcomeCancelled     Outcome = "cancelled"      // the client went away
	OutcomeRateLimited   Outcome = "rate_limited"   // refused by the gateway's own limits
	OutcomeUnauthorized  Outcome = "unauthorized"   // missing, unknown, revoked or expired gateway key
	OutcomeForbidden     Outcome = "forbidden"      // key not allowed to use the model
	OutcomeQuota         Outcome = "quota_exceeded" // key over its budget
)

// Record is one row of the ledger: everything known about one request that
// reached the gateway, whatever its outcome. Exactly one Record is emitted per
// request.
type Record struct {
	ID        string    // request id (X-Request-Id); unique
	Time      time.Time // when the request arrived (UTC)
	KeyID     string    // gateway key id; empty when auth is disabled or the key was not recognised
	KeyName   string    // gateway key name at the time of the request
	User      string    // end user: `user` body field or X-Tollgate-User header
	Endpoint  string    // e.g. "/v1/chat/completions"
	Model     string    // model requested (after the default model was applied)
	ModelUsed string    // model sent upstream (after alias expansion and model_map)
	Upstream  string    // name of the upstream that served the last attempt
	Stream    bool
	Outcome   Outcome
	Status    int // HTTP status sent to the client (499 when the client went away)
	Attempts  int // upstream attempts made, 0 when none was made

	PromptTokens     int64
	CompletionTokens int64
	CachedTokens     int64 // part of PromptTokens read from the upstream's prompt cache
	CacheWriteTokens int64 // part of PromptTokens written to the upstream's prompt cache
	ReasoningTokens  int64 // part of CompletionTokens spent on reasoning
	TotalTokens      int64
	Estimated        bool // tokens were estimated because the upstream reported none

	CostNanoUSD int64 // exact cost in 1e-9 USD; 0 when unpriced
	Priced      bool  // false when the model has no price (unknown cost, not free)

	Duration time.Duration // arrival to last byte
	TTFB     time.Duration // arrival to first byte written to the client; 0 if none

	ClientIP string
	Error    string // sanitized, truncated error message; empty on success

	RequestBody  []byte // only when log_bodies is on (content removed unless log_content)
	ResponseBody []byte // likewise
}

// Recorder receives finished records. Record must not block the caller for
// long: it is called on the request path.
type Recorder interface {
	Record(rec Record)
}
