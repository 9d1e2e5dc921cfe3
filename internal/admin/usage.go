package admin

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// GroupBys lists the accepted group_by values, for help and error texts.
const GroupBys = "model, key, user, upstream, day or hour"

// ValidGroupBy reports whether s is a usage grouping ("" means none).
func ValidGroupBy(s string) bool {
	switch s {
	case "", "model", "key", "user", "upstream", "day", "hour":
		return true
	}
	return false
}

// TotalLabel names the all-groups row in CSV and tables.
const TotalLabel = "TOTAL"

// WriteUsageCSV writes rep as CSV: a header row, one row per group, then a
// TOTAL row (the only row when rep is not grouped). Costs are exact
// decimals in rep.Currency, named in the last column (the cost columns keep
// their old "usd" names for compatibility).
func WriteUsageCSV(w io.Writer, rep store.UsageReport) error {
	currency := cmp.Or(rep.Currency, auth.DefaultCurrency)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"group", "requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
		"reasoning_tokens", "cost_usd", "cost_nano_usd", "unpriced_requests", "p50_ms", "p95_ms", "currency"})
	row := func(label string, t store.UsageTotals) {
		i := func(n int64) string { return strconv.FormatInt(n, 10) }
		f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
		_ = cw.Write([]string{label, i(t.Requests), i(t.Errors), i(t.PromptTokens), i(t.CompletionTokens),
			i(t.CachedTokens), i(t.ReasoningTokens), ledger.FormatAmount(t.CostNanoUSD), i(t.CostNanoUSD),
			i(t.Unpriced), f(t.P50Ms), f(t.P95Ms), currency})
	}
	for _, g := range rep.Groups {
		row(g.Group, g)
	}
	row(TotalLabel, rep.Total)
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write usage csv: %w", err)
	}
	return nil
}

func (h *handler) usage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, until, err := TimeRange(q.Get("since"), q.Get("until"), h.now())
	if err != nil {
		param, _, _ := strings.Cut(err.Error(), ":")
		writeErr(w, badParam(param, err.Error()))
		return
	}
	groupBy := q.Get("group_by")
	if !ValidGroupBy(groupBy) {
		writeErr(w, badParam("group_by", fmt.Sprintf("unknown group_by %q: use %s", groupBy, GroupBys)))
		return
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		writeErr(w, badParam("format", fmt.Sprintf("unknown format %q: use json or csv", format)))
		return
	}
	// percentiles=estimate keeps the report on the aggregates (the
	// dashboard's overview); by default small ranges get exact ones from
	// the raw rows.
	estimate := false
	switch p := q.Get("percentiles"); p {
	case "", "exact":
	case "estimate":
		estimate = true
	default:
		writeErr(w, badParam("percentiles", fmt.Sprintf("unknown percentiles %q: use exact or estimate", p)))
		return
	}
	keyID := q.Get("key")
	if id, ok := KeyScope(r.Context()); ok {
		keyID = id
	}
	rep, err := h.opts.Store.Usage(r.Context(), store.UsageQuery{
		Since: since, Until: until, GroupBy: groupBy, KeyID: keyID, Location: h.opts.Location,
		EstimatePercentiles: estimate,
	})
	if err != nil {
		h.internalErr(w, r, "usage", err)
		return
	}
	rep.Currency = h.currency
	if rep.Groups == nil {
		rep.Groups = []store.UsageTotals{} // [] rather than null for clients
	}
	if format == "csv" {
		var buf bytes.Buffer
		if err := WriteUsageCSV(&buf, rep); err != nil {
			h.internalErr(w, r, "usage", err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="tollgate-usage.csv"`)
		_, _ = w.Write(buf.Bytes())
		return
	}
	h.writeJSON(w, r, http.StatusOK, rep)
}
