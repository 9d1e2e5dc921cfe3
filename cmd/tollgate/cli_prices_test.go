package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

func TestPricesCmd(t *testing.T) {
	unpriced := testRecord("u", time.Hour, "mystery-model", 0, ledger.OutcomeOK)
	unpriced.Priced = false
	refused := testRecord("r", time.Hour, "refused-model", 0, ledger.OutcomeUnauthorized)
	refused.Priced, refused.PromptTokens, refused.CompletionTokens, refused.TotalTokens = false, 0, 0, 0
	db := seedDB(t, unpriced, refused)
	file := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(file, []byte("prices:\n  house-model: {input: 0.5, output: 1.5}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := dbTestEnv(t, map[string]string{"TOLLGATE_PRICES": file})
	out := mustRun(t, pricesCmd, e, "--db", db)
	for _, want := range []string{"house-model", "0.5", "file", "claude-sonnet-4-6", "builtin", "in USD per 1M tokens",
		"mystery-model", "still unpriced"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "refused-model") {
		t.Errorf("a refused request (no tokens) is listed as unpriced:\n%s", out)
	}

	// In CNY the USD built-in table is off.
	e = dbTestEnv(t, map[string]string{"TOLLGATE_PRICES": file, "TOLLGATE_CURRENCY": "CNY"})
	out = mustRun(t, pricesCmd, e, "--db", db, "--format", "json")
	if !strings.Contains(out, `"currency": "CNY"`) || strings.Contains(out, "claude-sonnet-4-6") || !strings.Contains(out, "house-model") {
		t.Errorf("CNY prices:\n%s", out)
	}
}
