package auth

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// Budget periods, as stored in store.Key.BudgetPeriod.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
	PeriodTotal = "total"
)

// ParseDuration parses a non-negative Go duration ("90m", "1h30m") that may
// also count whole days with a leading "<n>d" ("30d", "7d12h"), since
// expiry and query ranges are naturally given in days. A day is 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 30d, 12h or 7d12h", s)
		}
		if n > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		days, s = n, s[i+1:]
		if s == "" {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 30d, 12h or 7d12h", s)
	}
	total := time.Duration(days)*24*time.Hour + d
	if total < d { // overflow
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return total, nil
}

// NanoPerUnit is the number of budget units (nano-units) in one unit of
// the deployment currency: amounts are kept in 1e-9 of it.
const NanoPerUnit = 1_000_000_000

// DefaultCurrency is the currency when none is configured.
const DefaultCurrency = "USD"

// symbolCurrencies returns the currency symbol amount starts with and the
// currencies it can mean ("¥" is both yuan and yen), or "", nil.
func symbolCurrencies(amount string) (string, []string) {
	for _, sym := range []string{"$", "¥", "￥", "€", "£"} {
		if strings.HasPrefix(amount, sym) {
			switch sym {
			case "$":
				return sym, []string{"USD"}
			case "€":
				return sym, []string{"EUR"}
			case "£":
				return sym, []string{"GBP"}
			}
			return sym, []string{"CNY", "JPY"}
		}
	}
	return "", nil
}

// ParseBudget parses a spend limit in the deployment currency (currency;
// "" means USD) such as "10CNY/day", "10 cny / month", "10/day" (a bare
// amount is in the deployment currency), "$10/day" (a symbol that names
// it) or "0.01USD/total", into nano-units (exactly: the amount is parsed
// as a decimal, never as a float) and a period ("day", "month" or "total").
// An amount in another currency is an error: one deployment keeps one
// currency. An empty string or "none" means no budget and returns 0, "".
func ParseBudget(s, currency string) (nano int64, period string, err error) {
	currency = strings.ToUpper(cmp.Or(currency, DefaultCurrency))
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return 0, "", nil
	}
	example := "10" + currency + "/day"
	amount, per, ok := strings.Cut(s, "/")
	if !ok {
		return 0, "", fmt.Errorf("invalid budget %q: missing period, want e.g. %s, 5%s/month or 100%s/total", s, example, currency, currency)
	}
	period = strings.ToLower(strings.TrimSpace(per))
	switch period {
	case PeriodDay, PeriodMonth, PeriodTotal:
	default:
		return 0, "", fmt.Errorf("invalid budget %q: period must be day, month or total", s)
	}
	amount, err = stripCurrency(strings.TrimSpace(amount), currency)
	if err != nil {
		return 0, "", fmt.Errorf("invalid budget %q: %w; give it in %s, the deployment currency (TOLLGATE_CURRENCY), e.g. %s",
			s, err, currency, example)
	}
	nano, err = parseAmount(strings.TrimSpace(amount))
	if err != nil {
		return 0, "", fmt.Errorf("invalid budget %q: %w", s, err)
	}
	if nano <= 0 {
		return 0, "", fmt.Errorf("invalid budget %q: amount must be positive (leave the budget empty for none)", s)
	}
	return nano, period, nil
}

// stripCurrency removes a currency symbol before or a currency code after
// the amount, checking that it names currency.
func stripCurrency(amount, currency string) (string, error) {
	if sym, currencies := symbolCurrencies(amount); sym != "" {
		if !slices.Contains(currencies, currency) {
			return "", fmt.Errorf("%s is not %s", sym, currency)
		}
		return amount[len(sym):], nil
	}
	// A trailing code: the letters after the number.
	i := len(amount)
	for i > 0 && isLetter(amount[i-1]) {
		i--
	}
	code := amount[i:]
	switch {
	case code == "":
		return amount, nil
	case !strings.EqualFold(code, currency):
		return "", fmt.Errorf("the amount is in %s", strings.ToUpper(code))
	}
	return amount[:i], nil
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// parseAmount parses a plain decimal amount into nano-units exactly.
func parseAmount(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, errors.New("missing amount")
	}
	if len(frac) > 9 {
		return 0, errors.New("amount has more than 9 decimal places (the unit is 1e-9)")
	}
	if strings.TrimLeft(whole+frac, "0123456789") != "" {
		return 0, errors.New("amount must be a plain decimal number")
	}
	var w, f int64
	var err error
	if whole != "" {
		if w, err = strconv.ParseInt(whole, 10, 64); err != nil || w > math.MaxInt64/NanoPerUnit-1 {
			return 0, errors.New("amount is too large")
		}
	}
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	return w*NanoPerUnit + f, nil
}

// FormatBudget renders a budget the way ParseBudget reads it
// ("10.5CNY/day"), or "none". currency "" means USD.
func FormatBudget(nano int64, period, currency string) string {
	if nano <= 0 || period == "" {
		return "none"
	}
	return ledger.FormatAmount(nano) + strings.ToUpper(cmp.Or(currency, DefaultCurrency)) + "/" + period
}
