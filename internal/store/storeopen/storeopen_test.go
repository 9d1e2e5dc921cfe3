package storeopen_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store/storeopen"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, backend, target string
	}{
		{"", "sqlite", "./tollgate.db"},
		{"data/x.db", "sqlite", "data/x.db"},
		{"sqlite://./a.db", "sqlite", "./a.db"},
		{"sqlite:///var/lib/t.db", "sqlite", "/var/lib/t.db"},
		{"sqlite:b.db", "sqlite", "b.db"},
		{"postgres://u:p@h/db", "postgres", "postgres://u:p@h/db"},
		{"postgresql://h/db", "postgres", "postgresql://h/db"},
	}
	for _, tc := range tests {
		b, tg := storeopen.Parse(tc.in)
		if b != tc.backend || tg != tc.target {
			t.Errorf("Parse(%q) = %q, %q; want %q, %q", tc.in, b, tg, tc.backend, tc.target)
		}
	}
	if r := storeopen.Redact("postgres://u:s3cret@h/db"); strings.Contains(r, "s3cret") {
		t.Errorf("Redact leaks password: %s", r)
	}
	if p := storeopen.DefaultSpillPath("sqlite:///var/lib/t.db"); p != "/var/lib/tollgate-spill.jsonl" {
		t.Errorf("DefaultSpillPath = %s", p)
	}
}

func TestOpenSQLite(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	path := filepath.Join(t.TempDir(), "sub.db")
	s, err := storeopen.Open(t.Context(), "sqlite://"+path, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not created: %v", err)
	}
	if err := storeopen.Migrate(t.Context(), path); err != nil {
		t.Errorf("Migrate on migrated db: %v", err)
	}
	if !strings.Contains(logs.String(), "database ready") {
		t.Errorf("no startup log: %q", logs.String())
	}
}

func TestOpenFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, url string }{
		{"sqlite not a database", garbage},
		{"sqlite dir missing", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")},
		{"postgres unreachable", "postgres://u:s3cret@127.0.0.1:1/db?sslmode=disable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := storeopen.Open(ctx, tc.url, logger)
			if err == nil {
				s.Close()
				t.Fatal("want error")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks password: %v", err)
			}
		})
	}
}
