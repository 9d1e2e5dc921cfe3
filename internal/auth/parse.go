package auth

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/limit"
)

// NanoPerUSD is the number of budget units (nano-USD) in one US dollar.
const NanoPerUSD = 1_000_000_000

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

// ParseBudget parses a spend limit such as "10USD/day", "$10/day",
// "0.01USD/total" or "25 usd / month" into nano-USD (exactly: the amount is
// parsed as a decimal, never as a float) and a period ("day", "month" or
// "total"). An empty string or "none" means no budget and returns 0, "".
func ParseBudget(s string) (nano int64, period string, err error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return 0, "", nil
	}
	amount, per, ok := strings.Cut(s, "/")
	if !ok {
		return 0, "", fmt.Errorf("invalid budget %q: missing period, want e.g. 10USD/day, $5/month or 100USD/total", s)
	}
	period = strings.ToLower(strings.TrimSpace(per))
	switch period {
	case PeriodDay, PeriodMonth, PeriodTotal:
	default:
		return 0, "", fmt.Errorf("invalid budget %q: period must be day, month or total", s)
	}
	amount = strings.TrimSpace(amount)
	if a, ok := strings.CutPrefix(amount, "$"); ok {
		amount = a
	} else if len(amount) >= 3 && strings.EqualFold(amount[len(amount)-3:], "usd") {
		amount = amount[:len(amount)-3]
	} else {
		return 0, "", fmt.Errorf("invalid budget %q: give the amount in USD, e.g. 10USD/day or $10/day", s)
	}
	nano, err = parseUSD(strings.TrimSpace(amount))
	if err != nil {
		return 0, "", fmt.Errorf("invalid budget %q: %w", s, err)
	}
	if nano <= 0 {
		return 0, "", fmt.Errorf("invalid budget %q: amount must be positive (leave the budget empty for none)", s)
	}
	return nano, period, nil
}

// parseUSD parses a decimal dollar amount into nano-USD exactly.
func parseUSD(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, errors.New("missing amount")
	}
	if len(frac) > 9 {
		return 0, errors.New("amount has more than 9 decimal places (the unit is 1e-9 USD)")
	}
	if strings.TrimLeft(whole+frac, "0123456789") != "" {
		return 0, errors.New("amount must be a plain decimal number")
	}
	var w, f int64
	var err error
	if whole != "" {
		if w, err = strconv.ParseInt(whole, 10, 64); err != nil || w > math.MaxInt64/NanoPerUSD-1 {
			return 0, errors.New("amount is too large")
		}
	}
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	return w*NanoPerUSD + f, nil
}

// FormatBudget renders a budget the way ParseBudget reads it ("10.5USD/day"),
// or "none".
func FormatBudget(nano int64, period string) string {
	if nano <= 0 || period == "" {
		return "none"
	}
	return FormatUSD(nano) + "USD/" + period
}

// FormatUSD renders nano-USD as a decimal dollar amount without trailing
// zeros ("10", "0.000001").
func FormatUSD(nano int64) string {
	sign := ""
	if nano < 0 {
		sign, nano = "-", -nano
	}
	s := strconv.FormatInt(nano/NanoPerUSD, 10)
	if frac := nano % NanoPerUSD; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
	}
	return sign + s
}

// PeriodStart returns the start of the budget period containing now: UTC
// midnight for "day", the first of the UTC month for "month", and the zero
// time for "total" or no period.
func PeriodStart(period string, now time.Time) time.Time {
	t, _ := limit.PeriodStart(period, now) // an unknown period starts at the zero time
	return t
}
