package auth

import "testing"

// FuzzParseBudget: a parsed budget is positive with a known period, and
// FormatBudget's rendering parses back to exactly the same budget, in USD
// and in CNY.
func FuzzParseBudget(f *testing.F) {
	for _, s := range []string{"10USD/day", "$10/day", "0.01USD/total", "25 usd / month", "none", "",
		"$0.000000001/day", "9223372036USD/day", "$1.2345678901/day", "$-5/day", "$/day", "10/day", "$1e3/month",
		"10CNY/day", "¥5/month", "￥0.5/total", "10 cny / day"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, cur := range []string{"USD", "CNY"} {
			nano, period, err := ParseBudget(s, cur)
			if err != nil || period == "" {
				continue
			}
			if nano <= 0 || (period != PeriodDay && period != PeriodMonth && period != PeriodTotal) {
				t.Fatalf("ParseBudget(%q, %s) = %d %q", s, cur, nano, period)
			}
			text := FormatBudget(nano, period, cur)
			n2, p2, err := ParseBudget(text, cur)
			if err != nil || n2 != nano || p2 != period {
				t.Fatalf("ParseBudget(%q, %s) = %d %s; FormatBudget gives %q which parses to %d %s, %v", s, cur, nano, period, text, n2, p2, err)
			}
		}
	})
}
