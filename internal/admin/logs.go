package admin

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/store"
)

// Log listing bounds.
const (
	DefaultLogLimit = 100
	MaxLogLimit     = 1000
	// DefaultRange is how far back logs and usage look without since.
	DefaultRange = 24 * time.Hour
)

// ParseTime reads a query time: RFC 3339 ("2026-11-02T15:04:05Z"), a plain
// date ("2026-11-02", UTC midnight), or a duration back from now as
// auth.ParseDuration reads it ("24h", "7d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := auth.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like 24h or 7d", s)
	}
	return now.Add(-d).UTC(), nil
}

// TimeRange reads since and until ("" for either means the default: since
// is DefaultRange back from now, until is open). An error names the
// offending parameter.
func TimeRange(since, until string, now time.Time) (from, to time.Time, err error) {
	from = now.Add(-DefaultRange).UTC()
	if since != "" {
		if from, err = ParseTime(since, now); err != nil {
			return from, to, fmt.Errorf("since: %w", err)
		}
	}
	if until != "" {
		if to, err = ParseTime(until, now); err != nil {
			return from, to, fmt.Errorf("until: %w", err)
		}
		if !to.After(from) {
			return from, to, errors.New("until: must be after since")
		}
	}
	return from, to, nil
}

// LogRow is one ledger record as the admin API and `tollgate logs --format
// json` show it. Costs come both as a float for display and as exact
// nano-units of Currency (the JSON names predate the currency setting).
type LogRow struct {
	ID               string    `json:"id"`
	Time             time.Time `json:"time"`
	KeyID            string    `json:"key_id"`
	KeyName          string    `json:"key_name"`
	User             string    `json:"user"`
	Endpoint         string    `json:"endpoint"`
	Model            string    `json:"model"`
	ModelUsed        string    `json:"model_used"`
	Upstream         string    `json:"upstream"`
	Stream           bool      `json:"stream"`
	Outcome          string    `json:"outcome"`
	Status           int       `json:"status"`
	Attempts         int       `json:"attempts"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	CachedTokens     int64     `json:"cached_tokens"`
	ReasoningTokens  int64     `json:"reasoning_tokens"`
	TotalTokens      int64     `json:"total_tokens"`
	Estimated        bool      `json:"estimated"`
	CostUSD          float64   `json:"cost_usd"`
	CostNanoUSD      int64     `json:"cost_nano_usd"`
	Priced           bool      `json:"priced"`
	Currency         string    `json:"currency"`
	DurationMS       float64   `json:"duration_ms"`
	TTFBMS           float64   `json:"ttfb_ms"`
	ClientIP         string    `json:"client_ip"`
	Error            string    `json:"error"`
	// Bodies are present only on the single-row route and only when the
	// server stores them: JSON as JSON, anything else (a truncated body) as
	// a string.
	RequestBody  any `json:"request_body,omitempty"`
	ResponseBody any `json:"response_body,omitempty"`
}

// NewLogRow converts a record whose cost is in currency ("" means USD);
// withBodies copies stored bodies.
func NewLogRow(rec ledger.Record, currency string, withBodies bool) LogRow {
	row := LogRow{
		ID: rec.ID, Time: rec.Time.UTC(), KeyID: rec.KeyID, KeyName: rec.KeyName, User: rec.User,
		Endpoint: rec.Endpoint, Model: rec.Model, ModelUsed: rec.ModelUsed, Upstream: rec.Upstream,
		Stream: rec.Stream, Outcome: string(rec.Outcome), Status: rec.Status, Attempts: rec.Attempts,
		PromptTokens: rec.PromptTokens, CompletionTokens: rec.CompletionTokens, CachedTokens: rec.CachedTokens,
		ReasoningTokens: rec.ReasoningTokens, TotalTokens: rec.TotalTokens, Estimated: rec.Estimated,
		CostUSD: float64(rec.CostNanoUSD) / auth.NanoPerUnit, CostNanoUSD: rec.CostNanoUSD, Priced: rec.Priced,
		Currency:   strings.ToUpper(cmp.Or(currency, auth.DefaultCurrency)),
		DurationMS: ms(rec.Duration), TTFBMS: ms(rec.TTFB), ClientIP: rec.ClientIP, Error: rec.Error,
	}
	if withBodies {
		row.RequestBody, row.ResponseBody = bodyValue(rec.RequestBody), bodyValue(rec.ResponseBody)
	}
	return row
}

// ms converts d to milliseconds with microsecond precision.
func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

func bodyValue(b []byte) any {
	switch {
	case len(b) == 0:
		return nil
	case json.Valid(b):
		return json.RawMessage(b)
	}
	return string(b)
}

// logPage is the GET /admin/logs answer; NextCursor is null on the last page.
type logPage struct {
	Data       []LogRow `json:"data"`
	NextCursor *string  `json:"next_cursor"`
	Currency   string   `json:"currency"`
}

// intParam reads a positive integer query parameter bounded by max; absent
// gives def.
func intParam(r *http.Request, name string, def, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	switch {
	case err != nil || n < 1:
		return 0, fmt.Errorf("%s must be a positive whole number", name)
	case n > max:
		return 0, fmt.Errorf("%s must be at most %d", name, max)
	}
	return n, nil
}

// logFilter reads the filters of GET /admin/logs; a key holder's scope
// replaces any key filter. The error names the offending parameter.
func (h *handler) logFilter(r *http.Request) (store.LogFilter, *openai.Error) {
	q := r.URL.Query()
	since, until, err := TimeRange(q.Get("since"), q.Get("until"), h.now())
	if err != nil {
		param, _, _ := strings.Cut(err.Error(), ":")
		return store.LogFilter{}, badParam(param, err.Error())
	}
	f := store.LogFilter{
		Since: since, Until: until, Model: q.Get("model"), KeyID: q.Get("key"), User: q.Get("user"),
		Outcome: q.Get("outcome"), Upstream: q.Get("upstream"), Cursor: q.Get("cursor"),
	}
	if f.Limit, err = intParam(r, "limit", DefaultLogLimit, MaxLogLimit); err != nil {
		return f, badParam("limit", err.Error())
	}
	if f.Cursor != "" {
		if _, _, err := store.DecodeCursor(f.Cursor); err != nil {
			return f, badParam("cursor", "cursor is invalid; pass next_cursor from a previous page")
		}
	}
	if f.Outcome != "" && !validOutcome(f.Outcome) {
		return f, badParam("outcome", fmt.Sprintf("unknown outcome %q", f.Outcome))
	}
	if s := q.Get("status"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 599 {
			return f, badParam("status", "status must be an HTTP status code (100-599)")
		}
		f.Status = n
	}
	if s := q.Get("stream"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return f, badParam("stream", "stream must be true or false")
		}
		f.Stream = &b
	}
	if id, ok := KeyScope(r.Context()); ok {
		f.KeyID = id
	}
	return f, nil
}

func (h *handler) listLogs(w http.ResponseWriter, r *http.Request) {
	f, e := h.logFilter(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	switch format := r.URL.Query().Get("format"); format {
	case "", "json":
	case "csv":
		h.logsCSV(w, r, f)
		return
	default:
		writeErr(w, badParam("format", fmt.Sprintf("unknown format %q: use json or csv", format)))
		return
	}
	recs, next, err := h.opts.Store.ListLogs(r.Context(), f)
	if err != nil {
		h.internalErr(w, r, "list logs", err)
		return
	}
	page := logPage{Data: make([]LogRow, 0, len(recs)), Currency: h.currency}
	for _, rec := range recs {
		page.Data = append(page.Data, NewLogRow(rec, h.currency, false))
	}
	if next != "" {
		page.NextCursor = &next
	}
	h.writeJSON(w, r, http.StatusOK, page)
}

// validOutcome reports whether s is a ledger outcome, so a typo in a filter
// is an error instead of an empty page.
func validOutcome(s string) bool {
	switch ledger.Outcome(s) {
	case ledger.OutcomeOK, ledger.OutcomeClientError, ledger.OutcomeUpstreamError, ledger.OutcomeTimeout,
		ledger.OutcomeCancelled, ledger.OutcomeRateLimited, ledger.OutcomeUnauthorized, ledger.OutcomeForbidden,
		ledger.OutcomeQuota:
		return true
	}
	return false
}

func (h *handler) getLog(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := h.opts.Store.GetLog(r.Context(), id)
	if scope, ok := KeyScope(r.Context()); ok && err == nil && rec.KeyID != scope {
		// Another key's row: answer as if it did not exist, so ids of
		// other keys' requests cannot be probed.
		err = store.ErrNotFound
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, notFound(fmt.Sprintf("no log row with id %q", id)))
		return
	case err != nil:
		h.internalErr(w, r, "get log", err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, NewLogRow(rec, h.currency, true))
}

func (h *handler) recent(w http.ResponseWriter, r *http.Request) {
	if h.opts.Recent == nil {
		writeErr(w, notFound("the live ring is not enabled"))
		return
	}
	limit, err := intParam(r, "limit", 50, MaxLogLimit)
	if err != nil {
		writeErr(w, badParam("limit", err.Error()))
		return
	}
	scope, scoped := KeyScope(r.Context())
	id := r.URL.Query().Get("id") // one request, e.g. the playground's last call
	n := limit
	if scoped || id != "" {
		n = MaxLogLimit // the ring is small; filter, then cut
	}
	recs := h.opts.Recent(n)
	data := make([]LogRow, 0, min(len(recs), limit))
	for _, rec := range recs {
		if len(data) == limit {
			break
		}
		if (!scoped || rec.KeyID == scope) && (id == "" || rec.ID == id) {
			data = append(data, NewLogRow(rec, h.currency, false))
		}
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"data": data, "currency": h.currency})
}
