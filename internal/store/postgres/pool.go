package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pool is a small connection pool over *pgx.Conn.
//
// Why not pgxpool: pgxpool (and pgx/stdlib, which imports it) needs
// github.com/jackc/puddle/v2, which is not in go.sum. Once it is, this file
// can give way to pgxpool.Pool with no change to the rest of the package.
type pool struct {
	cfg *pgx.ConnConfig
	sem chan struct{} // one token per open or lent connection

	mu     sync.Mutex
	idle   []*pgx.Conn
	closed bool
}

const defaultMaxConns = 8

// newPool parses dsn. pool_max_conns (as pgxpool spells it) sets the size;
// other query parameters go to pgx, which sends unknown ones (search_path)
// as session settings.
func newPool(dsn string) (*pool, error) {
	maxConns := defaultMaxConns
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		if v := q.Get("pool_max_conns"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, errors.New("postgres: pool_max_conns must be a positive integer")
			}
			maxConns = n
			q.Del("pool_max_conns")
			u.RawQuery = q.Encode()
			dsn = u.String()
		}
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx parse errors can echo the URL, password included: keep them out.
		return nil, errors.New("postgres: invalid database url")
	}
	return &pool{cfg: cfg, sem: make(chan struct{}, maxConns)}, nil
}

func (p *pool) String() string {
	return fmt.Sprintf("%s:%d/%s", p.cfg.Host, p.cfg.Port, p.cfg.Database)
}

// acquire lends a connection; release must follow.
func (p *pool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.sem
		return nil, errors.New("postgres: store closed")
	}
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if !c.IsClosed() {
			p.mu.Unlock()
			return c, nil
		}
	}
	p.mu.Unlock()
	c, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return c, nil
}

// release returns c to the pool, or closes it when it is broken or still in
// a transaction.
func (p *pool) release(c *pgx.Conn) {
	defer func() { <-p.sem }()
	if c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		c.Close(context.Background())
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close(context.Background())
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.Close(context.Background())
	}
}

func (p *pool) with(ctx context.Context, fn func(c *pgx.Conn) error) error {
	c, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer p.release(c)
	return fn(c)
}

func (p *pool) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := p.with(ctx, func(c *pgx.Conn) error {
		var err error
		tag, err = c.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

// queryRow scans the single row of sql into dest (pgx.ErrNoRows when none).
func (p *pool) queryRow(ctx context.Context, sql string, args []any, dest ...any) error {
	return p.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, sql, args...).Scan(dest...)
	})
}

// query calls each for every row of sql.
func (p *pool) query(ctx context.Context, sql string, args []any, each func(pgx.Rows) error) error {
	return p.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, sql, args...)
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
	})
}

func (p *pool) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return p.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, fn)
	})
}
