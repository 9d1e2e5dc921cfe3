package main

import (
	"testing"
	"time"
	"path/filepath"

	"github.com/tollgate/tollgate/internal/ledger"
)

func TestTmpShow(t *testing.T) {
	r := testRecord("01JBX7Q2M3N4P5R6S7T8V9W0XY", 10*time.Minute, "gpt-4o-mini", 1_500_000, ledger.OutcomeOK)
	r2 := testRecord("c", 30*time.Minute, "anthropic/claude-sonnet-4.5", 4_000_000, ledger.OutcomeUpstreamError)
	r2.Error = "upstream main: 502 Bad Gateway"
	db := seedDB(t, r, r2)
	e := dbTestEnv(t, nil)
	t.Log("\n" + mustRun(t, keysCmd, e, "create", "--db", db, "--name", "team-a", "--budget", "5USD/month"))
	t.Log("\n" + mustRun(t, keysCmd, e, "list", "--db", db))
	t.Log("\n" + mustRun(t, usageCmd, e, "--db", db))
	t.Log("\n" + mustRun(t, usageCmd, e, "--db", db, "--by", "hour"))
	t.Log("\n" + mustRun(t, logsCmd, e, "--db", db))
	t.Log("\n" + mustRun(t, migrateCmd, e, "--db", filepath.Join(t.TempDir(), "x.db")))
}
