// Package sqlite implements store.Store on an embedded SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode: one writer connection, a small pool of
// readers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// temp_store(MEMORY) keeps statement journals of multi-row upserts off disk;
// cache_size(-32000) is a 32 MB page cache per connection.
const pragmas = "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)" +
	"&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-32000)&_pragma=wal_autocheckpoint(10000)"

// The writer takes the write lock at BEGIN, so a transaction never fails
// half way on a lock upgrade; readers are query-only. The writer's page
// cache is 4 MB, not 32: appending rows touches only the right edges of the
// B-trees and the aggregate rows of the current hour, and a 32 MB cache
// that a busy ledger fills within a minute was a third of the gateway's RSS.
const (
	writerOpts = "&_txlock=immediate&_pragma=cache_size(-4000)"
	readerOpts = "&_pragma=query_only(1)"
)

// Store is a store.Store backed by one SQLite file.
type Store struct {
	w *sql.DB // the single writer: SQLite allows one write transaction at a time
	r *sql.DB // readers: WAL lets them run beside the writer

	ins *inserter // the InsertRecords statements, see insert.go

	usage *store.UsageCache // per-bucket sums for Usage

	proc *writerProc // the writer process, nil for in-process inserts (writerproc.go)
}

// Options are the optional parts of a Store.
type Options struct {
	// Writer, when set, runs the ledger's inserts in a child process
	// (writerproc.go); nil inserts in-process.
	Writer WriterCommand
	// Logger reports writer process failures; nil discards them.
	Logger *slog.Logger
	// InWriterProcess tunes the inserts for a process that does nothing
	// else (ServeWriter): statements of up to 128 rows instead of 32, no
	// yields to other goroutines, a checkpoint every ~4 MB of rows instead
	// of ~400 KB. Those bounds keep request goroutines of the gateway's own
	// process from waiting on the writer; in a process of its own the
	// kernel shares the CPU instead, and they cost ~0.6 µs of CPU a row
	// (docs/perf.md).
	InWriterProcess bool
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it on first start) the SQLite database at path and
// applies pending migrations. Inserts run in-process.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	dsn := "file:" + path + pragmas
	w, err := sql.Open("sqlite", dsn+writerOpts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn+readerOpts)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open readers %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s := &Store{w: w, r: r, usage: store.NewUsageCache(store.UsageCacheRows)}
	s.ins = newInserter()
	if opts.InWriterProcess {
		s.ins.sizes, s.ins.ckptBytes, s.ins.yieldEvery = procChunkSizes, procCkptBytes, -1
	}
	if opts.Writer != nil {
		log := opts.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		s.proc = &writerProc{newCmd: opts.Writer, path: path, log: log, retry: writerRetry,
			starvedPerRow: starvedPerRow, starvedMin: starvedMin, starvedBusy: starvedBusy, calmEvery: calmEvery}
		s.proc.warm()
	}
	return s, nil
}

// Migrate applies pending migrations to the database at path and closes it.
func Migrate(ctx context.Context, path string) error {
	s, err := Open(ctx, path)
	if err != nil {
		return err
	}
	return s.Close()
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	if s.proc != nil {
		s.proc.close()
	}
	var err error
	if s.ins != nil {
		if conn, cerr := s.w.Conn(context.Background()); cerr == nil {
			err = conn.Raw(func(dc any) error {
				if dc != s.ins.conn {
					return nil
				}
				return s.ins.close()
			})
			conn.Close()
		}
	}
	return errors.Join(err, s.r.Close(), s.w.Close())
}

const recordCols = `id, time_us, key_id, key_name, end_user, endpoint, model, model_used, upstream, stream,
	outcome, status, attempts, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
	total_tokens, estimated, cost_nano, priced, duration_ns, ttfb_ns, client_ip, error, request_body, response_body, cache_write_tokens`

type scanner interface{ Scan(dest ...any) error }

func scanRecord(sc scanner) (ledger.Record, error) {
	var r ledger.Record
	var us, dur, ttfb int64
	var outcome string
	err := sc.Scan(&r.ID, &us, &r.KeyID, &r.KeyName, &r.User, &r.Endpoint, &r.Model, &r.ModelUsed, &r.Upstream,
		&r.Stream, &outcome, &r.Status, &r.Attempts, &r.PromptTokens, &r.CompletionTokens, &r.CachedTokens,
		&r.ReasoningTokens, &r.TotalTokens, &r.Estimated, &r.CostNanoUSD, &r.Priced, &dur, &ttfb, &r.ClientIP,
		&r.Error, &r.RequestBody, &r.ResponseBody, &r.CacheWriteTokens)
	r.Time = time.UnixMicro(us).UTC()
	r.Outcome = ledger.Outcome(outcome)
	r.Duration, r.TTFB = time.Duration(dur), time.Duration(ttfb)
	return r, err
}
