package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// pool wraps pgxpool.Pool with the handful of calls the store makes, so the
// queries read the same whatever the pool.
type pool struct {
	p *pgxpool.Pool
}

const defaultMaxConns = 8

// newPool parses dsn. pool_max_conns sets the size (default 8); other query
// parameters go to pgx, which sends unknown ones (search_path) as session
// settings.
func newPool(ctx context.Context, dsn string) (*pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx parse errors can echo the URL, password included: keep them out.
		return nil, errors.New("postgres: invalid database url")
	}
	if !strings.Contains(dsn, "pool_max_conns=") {
		cfg.MaxConns = defaultMaxConns
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: pool: %w", err)
	}
	return &pool{p: p}, nil
}

func (p *pool) String() string {
	c := p.p.Config().ConnConfig
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}

func (p *pool) close() { p.p.Close() }

// sqlDB returns a database/sql view of the pool, for goose.
func (p *pool) sqlDB() *sql.DB { return stdlib.OpenDBFromPool(p.p) }

func (p *pool) with(ctx context.Context, fn func(c *pgx.Conn) error) error {
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return fn(c.Conn())
}

func (p *pool) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return p.p.Exec(ctx, sql, args...)
}

// queryRow scans the single row of sql into dest (pgx.ErrNoRows when none).
func (p *pool) queryRow(ctx context.Context, sql string, args []any, dest ...any) error {
	return p.p.QueryRow(ctx, sql, args...).Scan(dest...)
}

// query calls each for every row of sql.
func (p *pool) query(ctx context.Context, sql string, args []any, each func(pgx.Rows) error) error {
	rows, err := p.p.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (p *pool) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, p.p, fn)
}
