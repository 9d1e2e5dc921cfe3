package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// A minimal database/sql driver over the pool, only so goose (which wants a
// *sql.DB) can run migrations. It stands in for pgx/stdlib.OpenDBFromPool,
// which is unavailable for the reason given on pool. It supports what goose
// uses: Exec, Query, transactions, and the session-scoped advisory lock
// (a *sql.Conn maps to one pgx connection for its lifetime).

func openSQLDB(p *pool) *sql.DB {
	db := sql.OpenDB(connector{p})
	db.SetMaxIdleConns(0) // hand connections straight back to the pool
	return db
}

type connector struct{ p *pool }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	pc, err := c.p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &sqlConn{p: c.p, c: pc}, nil
}

func (c connector) Driver() driver.Driver { return sqlDriver{} }

type sqlDriver struct{}

func (sqlDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("postgres: sql shim opens only through its connector")
}

type sqlConn struct {
	p *pool
	c *pgx.Conn
}

var (
	_ driver.ExecerContext     = (*sqlConn)(nil)
	_ driver.QueryerContext    = (*sqlConn)(nil)
	_ driver.ConnBeginTx       = (*sqlConn)(nil)
	_ driver.NamedValueChecker = (*sqlConn)(nil)
)

func (s *sqlConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("postgres: sql shim does not prepare statements")
}

func (s *sqlConn) Close() error {
	s.p.release(s.c)
	return nil
}

func (s *sqlConn) Begin() (driver.Tx, error) {
	return s.BeginTx(context.Background(), driver.TxOptions{})
}

func (s *sqlConn) BeginTx(ctx context.Context, _ driver.TxOptions) (driver.Tx, error) {
	tx, err := s.c.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return sqlTx{tx}, nil
}

// CheckNamedValue lets every argument through untouched: pgx encodes it.
func (s *sqlConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func values(args []driver.NamedValue) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}

func (s *sqlConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	tag, err := s.c.Exec(ctx, query, values(args)...)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (s *sqlConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := s.c.Query(ctx, query, values(args)...)
	if err != nil {
		return nil, err
	}
	return &sqlRows{rows: rows}, nil
}

type sqlTx struct{ tx pgx.Tx }

func (t sqlTx) Commit() error   { return t.tx.Commit(context.Background()) }
func (t sqlTx) Rollback() error { return t.tx.Rollback(context.Background()) }

type sqlRows struct{ rows pgx.Rows }

func (r *sqlRows) Columns() []string {
	fds := r.rows.FieldDescriptions()
	out := make([]string, len(fds))
	for i, fd := range fds {
		out[i] = fd.Name
	}
	return out
}

func (r *sqlRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

func (r *sqlRows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	vals, err := r.rows.Values()
	if err != nil {
		return err
	}
	for i, v := range vals {
		switch v := v.(type) {
		case nil, int64, float64, bool, []byte, string, time.Time:
			dest[i] = v
		case int32:
			dest[i] = int64(v)
		case int16:
			dest[i] = int64(v)
		case int8:
			dest[i] = int64(v)
		case float32:
			dest[i] = float64(v)
		default:
			dest[i] = fmt.Sprint(v)
		}
	}
	return nil
}
