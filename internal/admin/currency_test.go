package admin_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// cnyShanghai configures a deployment billing in CNY in Asia/Shanghai.
func cnyShanghai(t *testing.T) func(*admin.Options) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return func(o *admin.Options) {
		o.Currency, o.Location = "cny", sh
		o.Keys.Currency, o.Keys.Location = "CNY", sh
	}
}

// TestCurrencyAndZone: every answer with amounts names the deployment
// currency, budgets are taken in it, and usage groups days in the
// configured zone.
func TestCurrencyAndZone(t *testing.T) {
	f := newFixture(t, cnyShanghai(t))
	// now() is 2026-11-02 12:30 UTC. 13 hours earlier is 2026-11-01 23:30
	// UTC: already 2 November in Shanghai (07:30), still 1 November in UTC.
	f.insert(rec("a", time.Hour, nil), rec("b", 13*time.Hour, nil),
		rec("c", 30*time.Hour, func(r *ledger.Record) { r.CostNanoUSD = 7 })) // 1 Nov 06:30 UTC, 14:30 Shanghai

	status, body := f.do(http.MethodGet, "/admin/usage?since=7d&group_by=day", "")
	if status != http.StatusOK {
		t.Fatalf("usage: %d %s", status, body)
	}
	rep := decode[store.UsageReport](t, body)
	if rep.Currency != "CNY" || rep.Timezone != "Asia/Shanghai" {
		t.Fatalf("usage currency %q zone %q; want CNY, Asia/Shanghai", rep.Currency, rep.Timezone)
	}
	var days []string
	for _, g := range rep.Groups {
		days = append(days, g.Group+"="+itoa(g.Requests))
	}
	if got := strings.Join(days, " "); got != "2026-11-01=1 2026-11-02=2" {
		t.Fatalf("Shanghai days = %s; want 2026-11-01=1 2026-11-02=2 (the 23:30 UTC request is on the local 2nd)", got)
	}
	_, csv := f.do(http.MethodGet, "/admin/usage?since=7d&format=csv", "")
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); !strings.HasSuffix(lines[0], ",currency") || !strings.HasSuffix(lines[1], ",CNY") {
		t.Fatalf("usage csv does not name the currency: %q", csv)
	}

	// Budgets in CNY; another currency is a 400 naming the field.
	status, body = f.do(http.MethodPost, "/admin/keys", `{"name":"k","budget":"10USD/day"}`)
	wantError(t, status, body, http.StatusBadRequest, "budget")
	if !strings.Contains(body, "CNY") {
		t.Fatalf("the refusal does not name the deployment currency: %s", body)
	}
	status, body = f.do(http.MethodPost, "/admin/keys", `{"name":"k","budget":"10CNY/day"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	k := decode[keyJSON](t, body)
	if k.BudgetNano != 10_000_000_000 || k.Currency != "CNY" ||
		!k.PeriodStart.Equal(time.Date(2026, 11, 2, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))) {
		t.Fatalf("created = %+v; want 10 CNY a day from Shanghai's midnight", k.KeyInfo)
	}
	// PATCH without a budget keeps it (it is re-read in CNY).
	if status, body = f.do(http.MethodPatch, "/admin/keys/"+k.ID, `{"rpm":5}`); status != http.StatusOK ||
		decode[keyJSON](t, body).BudgetNano != 10_000_000_000 {
		t.Fatalf("patch: %d %s", status, body)
	}
	_, body = f.do(http.MethodGet, "/admin/keys", "")
	if !strings.Contains(body, `"currency":"CNY"`) || !strings.Contains(body, `"period_start":"2026-11-02T00:00:00+08:00"`) {
		t.Fatalf("key list does not name the currency and the local period: %s", body)
	}

	_, body = f.do(http.MethodGet, "/admin/logs?since=7d", "")
	page := decode[struct {
		Data     []admin.LogRow `json:"data"`
		Currency string         `json:"currency"`
	}](t, body)
	if page.Currency != "CNY" || len(page.Data) != 3 || page.Data[0].Currency != "CNY" {
		t.Fatalf("logs page currency %q rows %d: %s", page.Currency, len(page.Data), body)
	}
	if _, body = f.do(http.MethodGet, "/admin/logs/a", ""); decode[admin.LogRow](t, body).Currency != "CNY" {
		t.Fatalf("log row: %s", body)
	}
	_, csv = f.do(http.MethodGet, "/admin/logs?since=7d&format=csv", "")
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); !strings.HasSuffix(lines[0], ",currency") || !strings.HasSuffix(lines[1], ",CNY") {
		t.Fatalf("logs csv does not name the currency: %q", csv)
	}
}

// TestCurrencyDefault: without a configured currency, amounts are USD.
func TestCurrencyDefault(t *testing.T) {
	f := newFixture(t, nil)
	f.insert(rec("a", time.Hour, nil))
	for _, path := range []string{"/admin/usage", "/admin/logs", "/admin/keys"} {
		if _, body := f.do(http.MethodGet, path, ""); !strings.Contains(body, `"currency":"USD"`) {
			t.Errorf("%s does not say USD: %s", path, body)
		}
	}
	if _, body := f.do(http.MethodGet, "/admin/usage?group_by=day", ""); !strings.Contains(body, `"timezone":"UTC"`) {
		t.Errorf("usage does not name UTC: %s", body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestUsagePercentilesParam: percentiles=estimate keeps the report on the
// aggregates (the dashboard's overview); the default is exact for small
// ranges.
func TestUsagePercentilesParam(t *testing.T) {
	f := newFixture(t, nil)
	f.insert(rec("a", time.Hour, nil), rec("b", 2*time.Hour, nil))
	for _, tt := range []struct {
		query string
		exact bool
	}{{"", true}, {"?percentiles=exact", true}, {"?percentiles=estimate&group_by=hour", false}} {
		status, body := f.do(http.MethodGet, "/admin/usage"+tt.query, "")
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", tt.query, status, body)
		}
		if rep := decode[store.UsageReport](t, body); rep.Total.ExactPercentiles != tt.exact || rep.Total.Requests != 2 {
			t.Errorf("%s: exact %v requests %d; want %v, 2", tt.query, rep.Total.ExactPercentiles, rep.Total.Requests, tt.exact)
		}
	}
	status, body := f.do(http.MethodGet, "/admin/usage?percentiles=fast", "")
	wantError(t, status, body, http.StatusBadRequest, "percentiles")
}
