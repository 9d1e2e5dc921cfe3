package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

func TestGenerateKey(t *testing.T) {
	seen := map[string]bool{}
	format := regexp.MustCompile(`^tg-[A-Z2-7]{26}$`)
	for range 100 {
		k, hash, prefix := GenerateKey()
		if !format.MatchString(k) {
			t.Fatalf("GenerateKey() key does not match %s (len %d)", format, len(k))
		}
		sum := sha256.Sum256([]byte(k))
		if want := hex.EncodeToString(sum[:]); hash != want || HashKey(k) != want {
			t.Fatalf("GenerateKey() hash = %s; want hex SHA-256 %s", hash, want)
		}
		if len(prefix) != 11 || !strings.HasPrefix(k, prefix) {
			t.Fatalf("GenerateKey() prefix = %q; want the first 11 characters of the key", prefix)
		}
		if seen[k] {
			t.Fatalf("GenerateKey() repeated a key")
		}
		seen[k] = true
	}
	if got := HashKey("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf(`HashKey("abc") = %s; want the SHA-256 test vector`, got)
	}
}

func TestKeyFromRequest(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"bearer", map[string]string{"Authorization": "Bearer tg-abc"}, "tg-abc"},
		{"bearer lower case, spaces", map[string]string{"Authorization": "bearer   tg-abc "}, "tg-abc"},
		{"x-api-key", map[string]string{"X-Api-Key": "tg-xyz"}, "tg-xyz"},
		{"bearer wins", map[string]string{"Authorization": "Bearer tg-1", "X-Api-Key": "tg-2"}, "tg-1"},
		{"basic falls back", map[string]string{"Authorization": "Basic Zm9v", "X-Api-Key": "tg-2"}, "tg-2"},
		{"bare scheme", map[string]string{"Authorization": "Bearer"}, ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if got := KeyFromRequest(r); got != tt.want {
				t.Errorf("KeyFromRequest(%v) = %q; want %q", tt.headers, got, tt.want)
			}
		})
	}
}

func TestAdminTokenOK(t *testing.T) {
	tests := []struct {
		header, token string
		want          bool
	}{
		{"Bearer s3cret", "s3cret", true},
		{"bearer s3cret", "s3cret", true},
		{"Bearer s3cre", "s3cret", false},
		{"Bearer s3cretX", "s3cret", false},
		{"s3cret", "s3cret", false},
		{"", "s3cret", false},
		{"Bearer ", "", false},
		{"Bearer x", "", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/admin/keys", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		if got := AdminTokenOK(r, tt.token); got != tt.want {
			t.Errorf("AdminTokenOK(header %q, token len %d) = %v; want %v", tt.header, len(tt.token), got, tt.want)
		}
	}
}

func TestModelAllowed(t *testing.T) {
	tests := []struct {
		models []string
		model  string
		want   bool
	}{
		{nil, "anything", true},
		{[]string{"gpt-4o"}, "gpt-4o", true},
		{[]string{"gpt-4o"}, "gpt-4o-mini", false},
		{[]string{"gpt-4o"}, "GPT-4o", false},
		{[]string{"claude-*"}, "claude-3-5-sonnet", true},
		{[]string{"claude-*"}, "claude-", true},
		{[]string{"claude-*"}, "claud", false},
		{[]string{"gpt-4o", "claude-*"}, "claude-x", true},
		{[]string{"*"}, "openai/gpt-4o", true},
		{[]string{"openai/*"}, "openai/gpt-4o", true},
		{[]string{"openai/*"}, "anthropic/claude", false},
		{[]string{"*-mini"}, "gpt-4o-mini", true},
		{[]string{"*-mini"}, "gpt-4o-mini-2024", false},
		{[]string{"gpt-*-mini*"}, "gpt-4o-mini-2024", true},
		{[]string{"a*a*a*b"}, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{[]string{"?"}, "x", false}, // only '*' is special
		{[]string{"gpt-4o"}, "", false},
	}
	for _, tt := range tests {
		k := &store.Key{Models: tt.models}
		if got := ModelAllowed(k, tt.model); got != tt.want {
			t.Errorf("ModelAllowed(%q, %q) = %v; want %v", tt.models, tt.model, got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"30d", 30 * 24 * time.Hour, false},
		{"7d12h", 7*24*time.Hour + 12*time.Hour, false},
		{"0d", 0, false},
		{"90m", 90 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{" 2d ", 48 * time.Hour, false},
		{"", 0, true},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"-1d", 0, true},
		{"-5m", 0, true},
		{"3x", 0, true},
		{"2d3x", 0, true},
		{"99999999999d", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseBudget(t *testing.T) {
	tests := []struct {
		in       string
		currency string // the deployment currency; "" = USD
		nano     int64
		period   string
		errText  string // substring of the error; "" for success
	}{
		{"10USD/day", "", 10_000_000_000, "day", ""},
		{"$10/day", "", 10_000_000_000, "day", ""},
		{"0.01USD/total", "USD", 10_000_000, "total", ""},
		{"25 usd / Month", "", 25_000_000_000, "month", ""},
		{"$0.000000001/day", "", 1, "day", ""},
		{"$.5/day", "", 500_000_000, "day", ""},
		{"$1./day", "", 1_000_000_000, "day", ""},
		{"10/day", "", 10_000_000_000, "day", ""}, // a bare amount is in the deployment currency
		{"", "", 0, "", ""},
		{"none", "CNY", 0, "", ""},
		// Another deployment currency: budgets are given in it.
		{"10CNY/day", "CNY", 10_000_000_000, "day", ""},
		{"10 cny/month", "cny", 10_000_000_000, "month", ""},
		{"0.5/day", "CNY", 500_000_000, "day", ""},
		{"¥20/day", "CNY", 20_000_000_000, "day", ""},
		{"￥20/day", "CNY", 20_000_000_000, "day", ""},
		{"€3/total", "EUR", 3_000_000_000, "total", ""},
		{"10USD/day", "CNY", 0, "", "in USD; give it in CNY"},
		{"$10/day", "CNY", 0, "", "$ is not CNY"},
		{"¥10/day", "USD", 0, "", "¥ is not USD"},
		{"10CNY/day", "", 0, "", "give it in USD"},
		{"10EUR/day", "", 0, "", "in EUR"},
		{"10USD", "", 0, "", "missing period"},
		{"10CNY", "CNY", 0, "", "e.g. 10CNY/day"},
		{"10USD/week", "", 0, "", "period must be"},
		{"$0/day", "", 0, "", "must be positive"},
		{"$1.0000000001/day", "", 0, "", "9 decimal places"},
		{"$1e3/day", "", 0, "", "plain decimal"},
		{"1e3/day", "", 0, "", "plain decimal"},
		{"$-1/day", "", 0, "", "plain decimal"},
		{"$/day", "", 0, "", "missing amount"},
		{"CNY/day", "CNY", 0, "", "missing amount"},
		{"$99999999999/day", "", 0, "", "too large"},
	}
	for _, tt := range tests {
		nano, period, err := ParseBudget(tt.in, tt.currency)
		if tt.errText == "" {
			if err != nil || nano != tt.nano || period != tt.period {
				t.Errorf("ParseBudget(%q, %q) = %d, %q, %v; want %d, %q", tt.in, tt.currency, nano, period, err, tt.nano, tt.period)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.errText) {
			t.Errorf("ParseBudget(%q, %q) error = %v; want one mentioning %q", tt.in, tt.currency, err, tt.errText)
		}
	}
}

func TestFormatBudgetRoundTrip(t *testing.T) {
	for _, tt := range []struct{ in, currency string }{
		{"10USD/day", ""}, {"0.01USD/total", "USD"}, {"1.5USD/month", ""}, {"0.000000001USD/day", ""},
		{"10CNY/day", "CNY"}, {"0.3EUR/month", "eur"},
	} {
		nano, period, err := ParseBudget(tt.in, tt.currency)
		if err != nil {
			t.Fatalf("ParseBudget(%q): %v", tt.in, err)
		}
		if got := FormatBudget(nano, period, tt.currency); got != tt.in {
			t.Errorf("FormatBudget(ParseBudget(%q)) = %q", tt.in, got)
		}
	}
	if got := FormatBudget(0, "", "CNY"); got != "none" {
		t.Errorf("FormatBudget(0) = %q; want none", got)
	}
}
