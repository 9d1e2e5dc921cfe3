package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
)

type dbCmd func(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error

// dbTestEnv is an empty environment with no .env file, so the developer's
// TOLLGATE_DB or .env cannot leak into a test.
func dbTestEnv(t *testing.T, vars map[string]string) env {
	t.Helper()
	return env{
		lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		dotenv: filepath.Join(t.TempDir(), "absent.env"),
	}
}

// runDBCmd runs cmd and returns its stdout, stderr and error.
func runDBCmd(t *testing.T, cmd dbCmd, e env, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cmd(t.Context(), args, e, &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustRun runs cmd and fails the test on error.
func mustRun(t *testing.T, cmd dbCmd, e env, args ...string) string {
	t.Helper()
	out, errOut, err := runDBCmd(t, cmd, e, args...)
	if err != nil {
		t.Fatalf("%v: %v\nstderr: %s", args, err, errOut)
	}
	return out
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code
	}
	return 1
}

var keyPattern = regexp.MustCompile(`tg-[A-Z2-7]{26}`)

func TestKeysCmd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	e := dbTestEnv(t, nil)

	out := mustRun(t, keysCmd, e, "create", "--db", db, "--name", "team-a", "--models", "gpt-4o, claude-*",
		"--rpm", "60", "--budget", "10USD/day", "--expires", "30d")
	plaintext := keyPattern.FindString(out)
	if plaintext == "" || strings.Count(out, plaintext) != 1 {
		t.Fatalf("create must print the plaintext exactly once:\n%s", out)
	}
	if !strings.Contains(out, "will not be shown again") {
		t.Fatalf("create output lacks the shown-once warning:\n%s", out)
	}
	id := regexp.MustCompile(`key_[a-z2-7]{16}`).FindString(out)
	if id == "" {
		t.Fatalf("create output lacks the key id:\n%s", out)
	}

	list := mustRun(t, keysCmd, e, "list", "--db", db)
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("list:\n%s", list)
	}
	for _, want := range []string{id, "team-a", plaintext[:11], "active", "gpt-4o,claude-*", "60", "default", "10USD/day", "0USD", "never"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("list row lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, plaintext) || strings.Contains(list, plaintext[11:]) || strings.Contains(list, auth.HashKey(plaintext)) {
		t.Fatalf("list reveals the key:\n%s", list)
	}

	// Flags may follow the id.
	out = mustRun(t, keysCmd, e, "rotate", id, "--db", db)
	rotated := keyPattern.FindString(out)
	if rotated == "" || rotated == plaintext || strings.Count(out, rotated) != 1 {
		t.Fatalf("rotate:\n%s", out)
	}
	mustRun(t, keysCmd, e, "revoke", "--db", db, id)
	list = mustRun(t, keysCmd, e, "list", "--db", db)
	if !strings.Contains(list, "revoked") || strings.Contains(list, rotated) {
		t.Fatalf("list after revoke:\n%s", list)
	}
	if _, _, err := runDBCmd(t, keysCmd, e, "rotate", id, "--db", db); err == nil || exitCode(err) != 1 {
		t.Fatalf("rotating a revoked key: err %v", err)
	}
	_, _, err := runDBCmd(t, keysCmd, e, "revoke", "key_nope", "--db", db)
	if err == nil || !strings.Contains(err.Error(), "no key with id") {
		t.Fatalf("revoke unknown id: %v", err)
	}

	var infos []auth.KeyInfo
	js := mustRun(t, keysCmd, e, "list", "--format", "json", "--db", db)
	if err := json.Unmarshal([]byte(js), &infos); err != nil || len(infos) != 1 || infos[0].ID != id {
		t.Fatalf("list json: %v\n%s", err, js)
	}
}

func TestDBURLResolution(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "tollgate.yaml")
	if err := os.WriteFile(cfgFile, []byte("database:\n  url: "+filepath.Join(dir, "from-config.db")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dotenv := filepath.Join(dir, "test.env")
	if err := os.WriteFile(dotenv, []byte("TOLLGATE_DB="+filepath.Join(dir, "from-dotenv.db")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		vars   map[string]string
		dotenv string
		want   string
	}{
		{"default", nil, nil, "", storeopen.DefaultSQLitePath},
		{"dotenv", nil, nil, dotenv, filepath.Join(dir, "from-dotenv.db")},
		{"config file", []string{"--config", cfgFile}, nil, dotenv, filepath.Join(dir, "from-config.db")},
		{"environment", []string{"--config", cfgFile}, map[string]string{"TOLLGATE_DB": "sqlite://env.db"}, "", "sqlite://env.db"},
		{"flag wins", []string{"--config", cfgFile, "--db", "flag.db"}, map[string]string{"TOLLGATE_DB": "env.db"}, "", "flag.db"},
		{"config via TOLLGATE_CONFIG", nil, map[string]string{"TOLLGATE_CONFIG": cfgFile}, "", filepath.Join(dir, "from-config.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := dbTestEnv(t, tt.vars)
			if tt.dotenv != "" {
				e.dotenv = tt.dotenv
			}
			f := newDBFlags("test", io.Discard)
			if _, err := f.parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := f.dbURL(e)
			if err != nil || got != tt.want {
				t.Fatalf("dbURL = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	_, _, err := runDBCmd(t, migrateCmd, dbTestEnv(t, nil), "--config", filepath.Join(dir, "missing.yaml"))
	if exitCode(err) != 2 {
		t.Fatalf("missing config file: err %v, want exit 2", err)
	}
}

// seedDB writes records into a new SQLite file and closes it.
func seedDB(t *testing.T, recs ...ledger.Record) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "ledger.db")
	st, err := storeopen.Open(t.Context(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.InsertRecords(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	return db
}

func testRecord(id string, age time.Duration, model string, cost int64, outcome ledger.Outcome) ledger.Record {
	status := 200
	if outcome != ledger.OutcomeOK {
		status = 502
	}
	return ledger.Record{
		ID: id, Time: time.Now().Add(-age).UTC(), KeyID: "key_a", KeyName: "alpha", Endpoint: "/v1/chat/completions",
		Model: model, ModelUsed: model, Upstream: "main", Outcome: outcome, Status: status, Attempts: 1,
		PromptTokens: 100, CompletionTokens: 50, TotalTokens: 150, CostNanoUSD: cost, Priced: true,
		Duration: 300 * time.Millisecond,
	}
}

func TestUsageCmd(t *testing.T) {
	db := seedDB(t,
		testRecord("a", 10*time.Minute, "gpt-4o", 1_500_000, ledger.OutcomeOK),
		testRecord("b", 20*time.Minute, "gpt-4o", 1_500_000, ledger.OutcomeOK),
		testRecord("c", 30*time.Minute, "claude-3", 4_000_000, ledger.OutcomeUpstreamError),
		testRecord("old", 20*24*time.Hour, "gpt-4o", 1_000_000_000, ledger.OutcomeOK),
	)
	e := dbTestEnv(t, nil)
	tests := []struct {
		args  []string
		total string // the TOTAL row's fields before the percentiles
		rows  int    // lines: header + groups + TOTAL
	}{
		// requests, errors, refused, prompt, cache read, cache write, completion, cost
		{[]string{"--by", "model"}, "TOTAL 3 1 0 300 0 0 150 0.007", 4},
		{[]string{"--since", "24h", "--by", "none"}, "TOTAL 3 1 0 300 0 0 150 0.007", 2},
		{[]string{"--since", "30d", "--by", "day"}, "TOTAL 4 1 0 400 0 0 200 1.007", -1},
		{[]string{"--by", "key", "--key", "key_b"}, "TOTAL 0 0 0 0 0 0 0 0", 2},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := mustRun(t, usageCmd, e, append(tt.args, "--db", db)...)
			var lines []string // the table: notes after it are not rows
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				lines = append(lines, l)
				if strings.HasPrefix(strings.TrimSpace(l), "TOTAL") {
					break
				}
			}
			last := strings.Join(strings.Fields(lines[len(lines)-1]), " ")
			if !strings.HasPrefix(last, tt.total+" ") {
				t.Fatalf("TOTAL row = %q, want prefix %q\n%s", last, tt.total, out)
			}
			if tt.rows > 0 && len(lines) != tt.rows {
				t.Fatalf("%d lines, want %d\n%s", len(lines), tt.rows, out)
			}
		})
	}
	out := mustRun(t, usageCmd, e, "--by", "model", "--db", db)
	if !strings.Contains(out, "MODEL") || !strings.Contains(out, "claude-3") || !strings.Contains(out, "P95 MS") {
		t.Fatalf("table:\n%s", out)
	}

	csv := mustRun(t, usageCmd, e, "--by", "model", "--format", "csv", "--db", db)
	if !strings.HasPrefix(csv, "group,requests,") || !strings.Contains(csv, "\nTOTAL,3,1,300,150,0,0,0.007,7000000,") {
		t.Fatalf("csv:\n%s", csv)
	}
	var rep store.UsageReport
	js := mustRun(t, usageCmd, e, "--by", "model", "--format", "json", "--db", db)
	if err := json.Unmarshal([]byte(js), &rep); err != nil || rep.Total.CostNanoUSD != 7_000_000 || len(rep.Groups) != 2 {
		t.Fatalf("json: %v\n%s", err, js)
	}

	_, _, err := runDBCmd(t, usageCmd, e, "--db", filepath.Join(t.TempDir(), "nope.db"))
	if err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("missing database: %v", err)
	}
}

func TestLogsCmd(t *testing.T) {
	db := seedDB(t,
		testRecord("req-new", time.Minute, "gpt-4o", 1_500_000, ledger.OutcomeOK),
		testRecord("req-mid", 2*time.Minute, "claude-3", 4_000_000, ledger.OutcomeUpstreamError),
		testRecord("req-old", 3*time.Minute, "gpt-4o", 1_500_000, ledger.OutcomeOK),
		testRecord("req-ancient", 48*time.Hour, "gpt-4o", 1_500_000, ledger.OutcomeOK),
	)
	e := dbTestEnv(t, nil)
	tests := []struct {
		args []string
		want []string // ids in output order
	}{
		{nil, []string{"req-new", "req-mid", "req-old"}},
		{[]string{"--since", "7d"}, []string{"req-new", "req-mid", "req-old", "req-ancient"}},
		{[]string{"--limit", "2"}, []string{"req-new", "req-mid"}},
		{[]string{"--model", "gpt-4o"}, []string{"req-new", "req-old"}},
		{[]string{"--outcome", "upstream_error"}, []string{"req-mid"}},
		{[]string{"--since", "90s"}, []string{"req-new"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := mustRun(t, logsCmd, e, append(tt.args, "--db", db)...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(tt.want)+1 || !strings.HasPrefix(lines[0], "TIME") {
				t.Fatalf("want header + %d rows:\n%s", len(tt.want), out)
			}
			for i, id := range tt.want {
				if !strings.Contains(lines[i+1], id) {
					t.Fatalf("row %d lacks %s:\n%s", i, id, out)
				}
			}
		})
	}
	out := mustRun(t, logsCmd, e, "--format", "json", "--limit", "1", "--db", db)
	var row admin.LogRow
	if err := json.Unmarshal([]byte(out), &row); err != nil || row.ID != "req-new" || row.CostNanoUSD != 1_500_000 || row.Currency != "USD" {
		t.Fatalf("json row: %v\n%s", err, out)
	}

	// In a CNY deployment the cost column and JSON rows say so.
	cny := dbTestEnv(t, map[string]string{"TOLLGATE_CURRENCY": "cny"})
	out = mustRun(t, logsCmd, cny, "--limit", "1", "--db", db)
	if head, _, _ := strings.Cut(out, "\n"); !strings.Contains(head, "COST CNY") || !strings.Contains(out, "0.0015") {
		t.Fatalf("CNY logs:\n%s", out)
	}
	out = mustRun(t, logsCmd, cny, "--format", "json", "--limit", "1", "--db", db)
	if err := json.Unmarshal([]byte(out), &row); err != nil || row.Currency != "CNY" {
		t.Fatalf("CNY json row: %v\n%s", err, out)
	}
}

// TestKeysCmdCurrency: budgets are given and listed in the deployment
// currency, and spend is read from the start of the period in the
// configured zone.
func TestKeysCmdCurrency(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	e := dbTestEnv(t, map[string]string{"TOLLGATE_CURRENCY": "CNY", "TOLLGATE_TIMEZONE": "Asia/Shanghai"})
	_, _, err := runDBCmd(t, keysCmd, e, "create", "--db", db, "--name", "usd", "--budget", "10USD/day")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "CNY") {
		t.Fatalf("a USD budget in a CNY deployment: %v", err)
	}
	out := mustRun(t, keysCmd, e, "create", "--db", db, "--name", "cny", "--budget", "50/day")
	id := regexp.MustCompile(`key_[a-z2-7]{16}`).FindString(out)
	list := mustRun(t, keysCmd, e, "list", "--db", db)
	if !strings.Contains(list, "50CNY/day") || !strings.Contains(list, "0CNY") || strings.Contains(list, "$") || strings.Contains(list, "USD") {
		t.Fatalf("list:\n%s", list)
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	midnight := func() time.Time {
		now := time.Now().In(sh)
		return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, sh)
	}
	before := midnight()
	var infos []auth.KeyInfo
	js := mustRun(t, keysCmd, e, "list", "--format", "json", "--db", db)
	if err := json.Unmarshal([]byte(js), &infos); err != nil || len(infos) != 1 || infos[0].ID != id {
		t.Fatalf("json: %v\n%s", err, js)
	}
	// Either side of a local midnight passing during the call.
	if got := infos[0]; got.Currency != "CNY" || !got.PeriodStart.Equal(before) && !got.PeriodStart.Equal(midnight()) {
		t.Fatalf("period start %v currency %q; want Shanghai midnight %v, CNY", got.PeriodStart, got.Currency, before)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLogsTail(t *testing.T) {
	db := seedDB(t,
		testRecord("first-b", time.Minute, "gpt-4o", 1, ledger.OutcomeOK),
		testRecord("first-a", 2*time.Minute, "gpt-4o", 1, ledger.OutcomeOK),
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	e := dbTestEnv(t, nil)
	go func() { done <- logsCmd(ctx, []string{"--tail", "--db", db}, e, &out, io.Discard) }()
	waitFor(t, "the first rows", func() bool { return strings.Contains(out.String(), "first-b") })

	st, err := storeopen.Open(t.Context(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// "late" arrived before "new-2" but is written after it, like a long stream.
	if err := st.InsertRecords(t.Context(), []ledger.Record{
		testRecord("new-1", 2*time.Second, "gpt-4o", 1, ledger.OutcomeOK),
		testRecord("new-2", time.Second, "gpt-4o", 1, ledger.OutcomeOK),
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "new-2", func() bool { return strings.Contains(out.String(), "new-2") })
	if err := st.InsertRecords(t.Context(), []ledger.Record{testRecord("late", 30*time.Second, "gpt-4o", 1, ledger.OutcomeOK)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "late", func() bool { return strings.Contains(out.String(), "late") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop after cancel")
	}
	got := out.String()
	var order []string
	for _, id := range []string{"first-a", "first-b", "new-1", "new-2", "late"} {
		if n := strings.Count(got, id); n != 1 {
			t.Fatalf("%s printed %d times:\n%s", id, n, got)
		}
		order = append(order, fmt.Sprint(strings.Index(got, id)))
	}
	idx := func(id string) int { return strings.Index(got, id) }
	if !(idx("first-a") < idx("first-b") && idx("first-b") < idx("new-1") && idx("new-1") < idx("new-2") && idx("new-2") < idx("late")) {
		t.Fatalf("rows not oldest first as they arrive (%v):\n%s", order, got)
	}
}

func TestMigrateCmdIdempotent(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	e := dbTestEnv(t, nil)
	for i := range 2 {
		out := mustRun(t, migrateCmd, e, "--db", db)
		if !strings.Contains(out, "up to date") || !strings.Contains(out, "m.db") {
			t.Fatalf("run %d: %s", i, out)
		}
	}
	// The migrated file serves the other commands.
	if out := mustRun(t, keysCmd, e, "list", "--db", db); !strings.Contains(out, "No keys") {
		t.Fatalf("list on a fresh database: %s", out)
	}
}

func TestMigrateCmdPostgres(t *testing.T) {
	url := os.Getenv("TOLLGATE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("TOLLGATE_TEST_POSTGRES_URL not set")
	}
	e := dbTestEnv(t, nil)
	for range 2 {
		if out := mustRun(t, migrateCmd, e, "--db", url); !strings.Contains(out, "up to date") {
			t.Fatalf("migrate: %s", out)
		}
	}
}

func TestDBCmdUsageErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "u.db")
	tests := []struct {
		name string
		cmd  dbCmd
		args []string
	}{
		{"keys without subcommand", keysCmd, nil},
		{"keys unknown subcommand", keysCmd, []string{"explode"}},
		{"keys create without name", keysCmd, []string{"create"}},
		{"keys create bad budget", keysCmd, []string{"create", "--name", "a", "--budget", "10EUR/day"}},
		{"keys create bad expiry", keysCmd, []string{"create", "--name", "a", "--expires", "soon"}},
		{"keys create negative rpm", keysCmd, []string{"create", "--name", "a", "--rpm", "-1"}},
		{"keys create unknown flag", keysCmd, []string{"create", "--name", "a", "--colour", "red"}},
		{"keys create non-numeric rpm", keysCmd, []string{"create", "--name", "a", "--rpm", "lots"}},
		{"keys revoke without id", keysCmd, []string{"revoke"}},
		{"keys rotate two ids", keysCmd, []string{"rotate", "a", "b"}},
		{"keys list bad format", keysCmd, []string{"list", "--format", "xml"}},
		{"usage bad group", usageCmd, []string{"--by", "week"}},
		{"usage bad since", usageCmd, []string{"--since", "yesterday"}},
		{"usage until before since", usageCmd, []string{"--since", "1h", "--until", "2h"}},
		{"usage bad format", usageCmd, []string{"--format", "xml"}},
		{"logs zero limit", logsCmd, []string{"--limit", "0"}},
		{"logs huge limit", logsCmd, []string{"--limit", "5000"}},
		{"logs unknown flag", logsCmd, []string{"--follow"}},
		{"logs stray argument", logsCmd, []string{"gpt-4o"}},
		{"migrate stray argument", migrateCmd, []string{"now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runDBCmd(t, tt.cmd, dbTestEnv(t, nil), append(tt.args, "--db", db)...)
			if code := exitCode(err); code != 2 {
				t.Fatalf("exit code %d (err %v), want 2", code, err)
			}
		})
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a usage error touched the database: %v", err)
	}
	// -h prints help and succeeds.
	if _, errOut, err := runDBCmd(t, usageCmd, dbTestEnv(t, nil), "-h"); err != nil || !strings.Contains(errOut, "-since") {
		t.Fatalf("-h: %v %q", err, errOut)
	}
}
