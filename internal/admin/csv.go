package admin

import (
	"encoding/csv"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// MaxCSVRows bounds one CSV export: a filter that matches more is cut there
// (the last line says so), so one click cannot stream the whole ledger.
const MaxCSVRows = 100_000

// logsCSV streams the rows f selects as CSV, page by page through the
// cursor, newest first. Bodies are never included.
func (h *handler) logsCSV(w http.ResponseWriter, r *http.Request, f store.LogFilter) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="tollgate-logs.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "time", "key_id", "key_name", "user", "endpoint", "model", "model_used", "upstream",
		"stream", "outcome", "status", "attempts", "prompt_tokens", "completion_tokens", "cached_tokens",
		"reasoning_tokens", "total_tokens", "estimated", "cost_usd", "priced", "duration_ms", "ttfb_ms", "error", "currency"})
	f.Limit = MaxLogLimit
	written := 0
	for {
		recs, next, err := h.opts.Store.ListLogs(r.Context(), f)
		if err != nil {
			// Headers are gone; end the file with a marker and log why.
			h.log.LogAttrs(r.Context(), slog.LevelError, "csv export failed", slog.Any("error", err))
			_ = cw.Write([]string{"# export failed; see the server log"})
			break
		}
		for _, rec := range recs {
			i := func(n int64) string { return strconv.FormatInt(n, 10) }
			fl := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
			row := NewLogRow(rec, h.currency, false)
			_ = cw.Write([]string{row.ID, row.Time.Format("2006-01-02T15:04:05.000000Z07:00"), row.KeyID, row.KeyName,
				row.User, row.Endpoint, row.Model, row.ModelUsed, row.Upstream, strconv.FormatBool(row.Stream),
				row.Outcome, strconv.Itoa(row.Status), strconv.Itoa(row.Attempts), i(row.PromptTokens),
				i(row.CompletionTokens), i(row.CachedTokens), i(row.ReasoningTokens), i(row.TotalTokens),
				strconv.FormatBool(row.Estimated), ledger.FormatAmount(row.CostNanoUSD), strconv.FormatBool(row.Priced),
				fl(row.DurationMS), fl(row.TTFBMS), row.Error, row.Currency})
		}
		written += len(recs)
		if next == "" {
			break
		}
		if written >= MaxCSVRows {
			_ = cw.Write([]string{"# cut at " + strconv.Itoa(MaxCSVRows) + " rows; narrow the filter"})
			break
		}
		f.Cursor = next
	}
	cw.Flush()
}
