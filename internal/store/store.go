// Package store defines the persistence contract of tollgate and its domain
// types. The sqlite and postgres sub-packages implement it; storetest holds the
// conformance suite both must pass. The package knows no HTTP.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("store: not found")

// Store is everything the gateway persists. Implementations are safe for
// concurrent use.
type Store interface {
	// InsertRecords writes a batch of ledger rows and updates the hourly
	// aggregates in the same transaction. Rows whose ID already exists are
	// skipped (so a replayed spill file cannot double count).
	InsertRecords(ctx context.Context, recs []ledger.Record) error
	// ListLogs returns rows newest first, and a cursor for the next page ("" at the end).
	ListLogs(ctx context.Context, f LogFilter) ([]ledger.Record, string, error)
	// GetLog returns one row by request id, or ErrNotFound.
	GetLog(ctx context.Context, id string) (ledger.Record, error)
	// Usage aggregates over the hourly aggregates, never raw rows.
	Usage(ctx context.Context, q UsageQuery) (UsageReport, error)
	// DeleteLogsBefore deletes at most limit raw rows older than t and reports how many went.
	DeleteLogsBefore(ctx context.Context, t time.Time, limit int) (int, error)

	KeyStore
	ConversationStore

	// Ping reports whether the database is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// LogFilter selects ledger rows. Zero values mean "no filter".
type LogFilter struct {
	Since, Until time.Time // Since inclusive, Until exclusive
	Model        string
	KeyID        string
	User         string
	Outcome      string
	Upstream     string
	Status       int    // HTTP status; 0 = any
	Stream       *bool  // nil = both
	Limit        int    // 1..1000
	Cursor       string // opaque, from a previous ListLogs
}

// UsageQuery asks for totals over [Since, Until), optionally grouped.
type UsageQuery struct {
	Since, Until time.Time
	GroupBy      string // "", "model", "key", "user", "upstream", "day", "hour"
	KeyID        string // optional filter
	// Location is the time zone of "day" groups and labels (nil: UTC).
	// Aggregates are hourly, so days are exact in zones whose offset is a
	// whole number of hours (Asia/Shanghai, Europe/Berlin, ...); in others
	// (Asia/Kolkata) a day group is off by the odd minutes.
	Location *time.Location
	// EstimatePercentiles reads the aggregates only: percentiles come from
	// the hourly histogram even when the range is small enough for exact
	// ones from raw rows (see MaxExactRows). The dashboard's overview asks
	// for this, to stay off the raw log table.
	EstimatePercentiles bool
}

// UsageTotals are the sums for one group (or the whole range).
type UsageTotals struct {
	Group            string `json:"group,omitempty"`
	Requests         int64  `json:"requests"`
	Errors           int64  `json:"errors"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	CachedTokens     int64  `json:"cached_tokens"`
	CacheWriteTokens int64  `json:"cache_write_tokens"`
	ReasoningTokens  int64  `json:"reasoning_tokens"`
	// CostNanoUSD is in nano-units of the deployment currency (the JSON
	// name predates the currency setting and is kept for compatibility).
	CostNanoUSD int64   `json:"cost_nano_usd"`
	CostUSD     float64 `json:"cost_usd"` // CostNanoUSD / 1e9, for display; in the deployment currency
	// Unpriced counts requests that used tokens on a model without a price:
	// their cost is unknown, so the cost is a lower bound.
	Unpriced int64 `json:"unpriced_requests"`
	// Refused counts requests the gateway itself refused (bad or missing
	// key, model not allowed or not priced, rate limit, budget).
	Refused int64   `json:"refused_requests"`
	P50Ms   float64 `json:"p50_ms"`
	P95Ms   float64 `json:"p95_ms"`
	// TTFBNanos sums the time to first token of the TTFBCount requests
	// that have one (ledger ttfb_ns > 0); TTFTMsAvg is their mean, nil
	// when there is none.
	TTFBNanos int64    `json:"-"`
	TTFBCount int64    `json:"ttft_requests"`
	TTFTMsAvg *float64 `json:"ttft_ms_avg"`
	// ExactPercentiles is true when P50Ms and P95Ms were computed from the
	// raw rows, false when estimated from the aggregates' histogram.
	ExactPercentiles bool `json:"exact_percentiles"`
	// KeyName is the key's name, for GroupBy "key" (see NameKeys).
	KeyName string `json:"key_name,omitempty"`
}

// UsageReport is the answer to a UsageQuery.
type UsageReport struct {
	Total  UsageTotals   `json:"total"`
	Groups []UsageTotals `json:"groups"`
	// Timezone names the zone of day and hour group labels.
	Timezone string `json:"timezone"`
	// Currency is the deployment currency of the amounts; the store does
	// not know it, callers set it (config currency).
	Currency string `json:"currency,omitempty"`
}

// Key is a gateway key as stored: never the key itself, only its SHA-256 hash
// (hex) and a short display prefix.
type Key struct {
	ID           string
	Name         string
	Prefix       string // first characters of the key, for display ("tg-AB12CD")
	Hash         string // hex SHA-256 of the full key; unique
	Models       []string
	RPM          int // 0 = use the global default
	TPM          int
	MaxParallel  int
	BudgetNano   int64  // spend limit per period in 1e-9 USD; 0 = none
	BudgetPeriod string // "day", "month", "total" or ""
	ExpiresAt    time.Time
	RevokedAt    time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time // bumped on every change; replicas poll for it
}

// KeyStore persists gateway keys.
type KeyStore interface {
	CreateKey(ctx context.Context, k Key) error
	// UpdateKey replaces the mutable fields (name, hash, prefix, limits, expiry, revocation) of k.ID.
	UpdateKey(ctx context.Context, k Key) error
	GetKey(ctx context.Context, id string) (Key, error)
	// ListKeys returns all keys, revoked ones included, oldest first.
	ListKeys(ctx context.Context) ([]Key, error)
	// KeySpend returns the cost recorded for a key since t, from the hourly aggregates.
	KeySpend(ctx context.Context, keyID string, since time.Time) (int64, error)
	// KeysLastUsed maps key id to its newest ledger row time.
	KeysLastUsed(ctx context.Context) (map[string]time.Time, error)
}

// ConversationKey names one conversation: per gateway key, end user and conversation id.
type ConversationKey struct {
	KeyID        string
	User         string
	Conversation string
}

// Message is one stored chat turn half.
type Message struct {
	Role    string    `json:"role"`
	Content string    `json:"content"`
	Time    time.Time `json:"time"`
}

// ConversationStore persists chat history.
type ConversationStore interface {
	// AppendMessages appends msgs atomically, then trims the conversation to
	// its newest keep messages (keep <= 0 keeps all).
	AppendMessages(ctx context.Context, c ConversationKey, msgs []Message, keep int) error
	// History returns the newest limit messages oldest first (limit <= 0: all).
	History(ctx context.Context, c ConversationKey, limit int) ([]Message, error)
	// ClearHistory deletes a conversation and reports how many messages went.
	ClearHistory(ctx context.Context, c ConversationKey) (int, error)
}
