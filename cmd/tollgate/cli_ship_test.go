package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/store/storeopen"
)

// shipRun runs the CLI with only vars in its environment and no .env file.
func shipRun(t *testing.T, vars map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut lockedBuffer
	e := env{lookup: mapEnv(vars), dotenv: filepath.Join(t.TempDir(), ".env")}
	err = run(t.Context(), args, e, &out, &errOut)
	return out.String(), errOut.String(), err
}

func shipExitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code
	}
	return 1
}

func TestHelpExitsZero(t *testing.T) {
	cases := [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}}
	for _, c := range subcommands {
		cases = append(cases, []string{c, "--help"}, []string{c, "-h"}, []string{"help", c})
	}
	cases = append(cases,
		[]string{"keys", "create", "--help"}, []string{"keys", "list", "--help"},
		[]string{"keys", "revoke", "--help"}, []string{"keys", "rotate", "--help"},
		[]string{"config", "check", "--help"})
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, err := shipRun(t, nil, args...)
			if err != nil {
				t.Fatalf("exit %d: %v", shipExitCode(err), err)
			}
			if strings.TrimSpace(out+errOut) == "" {
				t.Error("printed no help")
			}
		})
	}
	out, _, _ := shipRun(t, nil, "--help")
	for _, c := range subcommands {
		if !strings.Contains(out, "tollgate "+c) {
			t.Errorf("--help does not list %q", c)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		out, _, err := shipRun(t, nil, args...)
		if err != nil || !regexp.MustCompile(`^tollgate \S+\n(.|\n)*built with go\S+ for \w+/\w+\n$`).MatchString(out) {
			t.Errorf("%v: %q, %v", args, out, err)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if _, _, err := shipRun(t, nil, "healthcheck", "--url", srv.URL+"/healthz"); err != nil {
		t.Errorf("healthy: %v", err)
	}
	// The default URL follows TOLLGATE_LISTEN's port.
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	if _, _, err := shipRun(t, map[string]string{"TOLLGATE_LISTEN": ":" + port}, "healthcheck"); err != nil {
		t.Errorf("default URL: %v", err)
	}
	status = http.StatusServiceUnavailable
	if _, _, err := shipRun(t, nil, "healthcheck", "--url", srv.URL+"/healthz"); shipExitCode(err) != 1 {
		t.Errorf("unhealthy: exit %d (%v), want 1", shipExitCode(err), err)
	}
	srv.Close()
	if _, _, err := shipRun(t, nil, "healthcheck", "--url", srv.URL+"/healthz"); shipExitCode(err) != 1 {
		t.Errorf("down: exit %d (%v), want 1", shipExitCode(err), err)
	}
}

func TestConfigCheck(t *testing.T) {
	var probes int
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes++
		if r.URL.Path != "/v1/models" || r.Header.Get("Authorization") != "Bearer sk-up-secret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"data":[]}`)
	}))
	defer up.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "tollgate.yaml")
	yaml := fmt.Sprintf(`upstreams:
  - name: good
    base_url: %[1]s/v1
    api_key: ${UP_KEY}
    headers: {X-Org: org-secret}
  - name: bad
    base_url: %[1]s/other
trusted_proxies: [127.0.0.1]
`, up.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"UP_KEY":               "sk-up-secret",
		"TOLLGATE_ADMIN_TOKEN": "admin-secret",
		"TOLLGATE_DB":          "postgres://tg:pg-secret@127.0.0.1/tg",
		"TOLLGATE_REDIS_URL":   "redis://:redis-secret@127.0.0.1:6379/0",
	}
	out, _, err := shipRun(t, vars, "config", "check", "--config", file)
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, secret := range []string{"sk-up-secret", "admin-secret", "pg-secret", "redis-secret", "org-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows %s:\n%s", secret, out)
		}
	}
	for _, want := range []string{"name: good", "127.0.0.1", "postgres://tg:xxxxx@127.0.0.1/tg", "# configuration OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if probes != 0 {
		t.Errorf("probed %d upstreams without --probe", probes)
	}

	out, _, err = shipRun(t, vars, "config", "check", "--config", file, "--probe")
	if shipExitCode(err) != 2 || !strings.Contains(out, "probe good: ok") || !strings.Contains(out, "probe bad: FAILED") {
		t.Errorf("probe: exit %d (%v)\n%s", shipExitCode(err), err, out)
	}
	if strings.Contains(out, "sk-up-secret") {
		t.Error("probe output shows the upstream key")
	}

	bad := map[string]map[string]string{
		"trusted proxy":  {"TAOTOKEN_API_KEY": "k", "TOLLGATE_TRUSTED_PROXIES": "nginx"},
		"no upstream":    {},
		"bad listen":     {"TAOTOKEN_API_KEY": "k", "TOLLGATE_LISTEN": "nope"},
		"bad redis url":  {"TAOTOKEN_API_KEY": "k", "TOLLGATE_REDIS_URL": "mysql://user:redis-secret@x"},
		"bad env number": {"TAOTOKEN_API_KEY": "k", "TOLLGATE_RPM": "many"},
	}
	for name, vars := range bad {
		_, _, err := shipRun(t, vars, "config", "check")
		if shipExitCode(err) != 2 {
			t.Errorf("%s: exit %d (%v), want 2", name, shipExitCode(err), err)
		} else if strings.Contains(err.Error(), "redis-secret") {
			t.Errorf("%s: error shows a secret: %v", name, err)
		}
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "live.db")
	st, err := storeopen.Open(t.Context(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := auth.NewManager(st, nil)
	if _, _, err := m.Create(t.Context(), auth.CreateOptions{Name: "backed-up"}); err != nil {
		t.Fatal(err)
	}
	// The store stays open: the backup is taken from a live database.
	dst := filepath.Join(dir, "copy.db")
	out, _, err := shipRun(t, nil, "backup", "--db", db, dst)
	if err != nil || !strings.Contains(out, "Backed up") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	cp, err := storeopen.Open(t.Context(), dst, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	keys, err := cp.ListKeys(t.Context())
	if err != nil || len(keys) != 1 || keys[0].Name != "backed-up" {
		t.Errorf("backup holds %v, %v; want the key", keys, err)
	}

	if _, _, err := shipRun(t, nil, "backup", "--db", db, dst); shipExitCode(err) != 1 || !strings.Contains(err.Error(), "exists") {
		t.Errorf("existing target: %v", err)
	}
	if _, _, err := shipRun(t, nil, "backup", "--db", filepath.Join(dir, "none.db"), filepath.Join(dir, "x.db")); err == nil {
		t.Error("backup of a missing database succeeded")
	}
	_, _, err = shipRun(t, nil, "backup", "--db", "postgres://u:pw@127.0.0.1/x", filepath.Join(dir, "pg.db"))
	if shipExitCode(err) != 2 || !strings.Contains(err.Error(), "pg_dump") || strings.Contains(err.Error(), "pw@") {
		t.Errorf("postgres: exit %d, %v; want 2 with a pg_dump hint", shipExitCode(err), err)
	}
	if _, _, err := shipRun(t, nil, "backup", "--db", db); shipExitCode(err) != 2 {
		t.Errorf("no FILE: exit %d, want 2", shipExitCode(err))
	}
}

func TestKeysRevokeRotateByName(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	st, err := storeopen.Open(t.Context(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m := auth.NewManager(st, nil)
	_, ci, err := m.Create(t.Context(), auth.CreateOptions{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := m.Create(t.Context(), auth.CreateOptions{Name: "twin"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	out, _, err := shipRun(t, nil, "keys", "rotate", "ci", "--db", db)
	if err != nil || !strings.Contains(out, "Rotated") {
		t.Fatalf("rotate by name: %v\n%s", err, out)
	}
	if out, _, err = shipRun(t, nil, "keys", "revoke", "ci", "--db", db); err != nil || !strings.Contains(out, ci.ID) {
		t.Fatalf("revoke by name: %v\n%s", err, out)
	}
	// Revoked keys no longer answer to their name; ids still work.
	if _, _, err := shipRun(t, nil, "keys", "revoke", "ci", "--db", db); err == nil || !strings.Contains(err.Error(), "no active key") {
		t.Errorf("revoke a revoked name: %v", err)
	}
	if _, _, err := shipRun(t, nil, "keys", "revoke", ci.ID, "--db", db); err != nil {
		t.Errorf("revoke by id: %v", err)
	}
	if _, _, err := shipRun(t, nil, "keys", "revoke", "twin", "--db", db); err == nil || !strings.Contains(err.Error(), "2 active keys") {
		t.Errorf("ambiguous name: %v", err)
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want string
	}{
		{nil, "127.0.0.1:3000"},
		{map[string]string{"PORT": "8080"}, "127.0.0.1:8080"},
		{map[string]string{"PORT": "8080", "TOLLGATE_LISTEN": ":9000"}, "127.0.0.1:9000"},
		{map[string]string{"TOLLGATE_LISTEN": "0.0.0.0:9000"}, "127.0.0.1:9000"},
		{map[string]string{"TOLLGATE_LISTEN": "[::]:9000"}, "127.0.0.1:9000"},
		{map[string]string{"TOLLGATE_LISTEN": "10.1.2.3:9000"}, "10.1.2.3:9000"},
		{map[string]string{"TOLLGATE_LISTEN": "[::1]:9000"}, "[::1]:9000"},
	}
	for _, tt := range tests {
		if got := listenAddr(env{lookup: mapEnv(tt.vars)}); got != tt.want {
			t.Errorf("listenAddr(%v) = %s, want %s", tt.vars, got, tt.want)
		}
	}
}
