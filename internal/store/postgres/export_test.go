package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/ledger"
)

// InsertStaged inserts recs through the staging path only, as a batch
// holding a stored row does.
func (s *Store) InsertStaged(ctx context.Context, recs []ledger.Record) error {
	return s.pool.tx(ctx, func(tx pgx.Tx) error { return insertStaged(ctx, tx, recs) })
}

// Query runs sql on the store's pool and returns every row as text.
func (s *Store) Query(ctx context.Context, sql string) ([][]any, error) {
	var out [][]any
	err := s.pool.query(ctx, sql, nil, func(rows pgx.Rows) error {
		v, err := rows.Values()
		out = append(out, v)
		return err
	})
	return out, err
}
