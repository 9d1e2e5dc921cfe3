// Package storeopen picks the store backend from a database URL, so main
// needs one call: postgres:// or postgresql:// opens PostgreSQL; sqlite://PATH,
// a plain path, or "" (./tollgate.db) opens SQLite.
package storeopen

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/postgres"
	"github.com/tollgate/tollgate/internal/store/sqlite"
)

// DefaultSQLitePath is used when no database URL is configured.
const DefaultSQLitePath = "./tollgate.db"

// Backend names returned by Parse.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// Parse returns the backend for dbURL and its target: the file path for
// SQLite, the URL unchanged for PostgreSQL.
func Parse(dbURL string) (backend, target string) {
	switch {
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		return BackendPostgres, dbURL
	case strings.HasPrefix(dbURL, "sqlite://"):
		dbURL = strings.TrimPrefix(dbURL, "sqlite://")
	case strings.HasPrefix(dbURL, "sqlite:"):
		dbURL = strings.TrimPrefix(dbURL, "sqlite:")
	}
	if dbURL == "" {
		dbURL = DefaultSQLitePath
	}
	return BackendSQLite, dbURL
}

// Redact returns dbURL fit for logs: the PostgreSQL password is replaced.
func Redact(dbURL string) string {
	backend, target := Parse(dbURL)
	if backend == BackendSQLite {
		return "sqlite://" + target
	}
	u, err := url.Parse(target)
	if err != nil {
		return "postgres://(unparsable)"
	}
	return u.Redacted()
}

// Open opens and migrates the store named by dbURL. An unreachable database
// or a failed migration is an error: the server must not start without its
// ledger.
func Open(ctx context.Context, dbURL string, logger *slog.Logger) (store.Store, error) {
	return OpenWith(ctx, dbURL, logger, Options{})
}

// Options are the optional parts of OpenWith.
type Options struct {
	// SQLiteWriter runs a SQLite ledger's inserts in a child process
	// (sqlite.Options.Writer); nil, or a PostgreSQL database, inserts
	// in-process.
	SQLiteWriter sqlite.WriterCommand
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dbURL string, logger *slog.Logger, opts Options) (store.Store, error) {
	backend, target := Parse(dbURL)
	var (
		s   store.Store
		err error
	)
	switch backend {
	case BackendPostgres:
		s, err = postgres.Open(ctx, target)
	default:
		s, err = sqlite.OpenWith(ctx, target, sqlite.Options{Writer: opts.SQLiteWriter, Logger: logger})
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", Redact(dbURL), err)
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "database ready", slog.String("backend", backend), slog.String("url", Redact(dbURL)))
	return s, nil
}

// Migrate applies pending migrations to the database named by dbURL.
func Migrate(ctx context.Context, dbURL string) error {
	backend, target := Parse(dbURL)
	var err error
	if backend == BackendPostgres {
		err = postgres.Migrate(ctx, target)
	} else {
		err = sqlite.Migrate(ctx, target)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", Redact(dbURL), err)
	}
	return nil
}

// DefaultSpillPath is where the ledger writer's spill file goes: next to the
// SQLite file, or in the working directory for PostgreSQL.
func DefaultSpillPath(dbURL string) string {
	backend, target := Parse(dbURL)
	if backend == BackendPostgres {
		return "tollgate-spill.jsonl"
	}
	return filepath.Join(filepath.Dir(target), "tollgate-spill.jsonl")
}
