package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// The ledger's insert path. Where its CPU goes (BenchmarkInsertRealistic,
// docs/perf.md): binding parameters, B-tree inserts into the table and its
// indexes, the commit's WAL writes, and the RETURNING rows read back. The
// common batch has no id that is already stored, so it is inserted without
// RETURNING and every row is aggregated; only a batch in which some row was
// skipped (a replay of rows already stored) is redone the careful way.

// InsertRecords inserts recs, skipping ids already present, and folds the
// rows actually inserted into usage_hourly, usage_daily, key_last_used and
// request_zones in the same transaction.
func (s *Store) InsertRecords(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if s.proc != nil {
		if handled, err := s.proc.insert(ctx, recs); handled {
			return err
		}
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: insert records: %w", err)
	}
	err = conn.Raw(func(dc any) error {
		if err := s.ins.prepare(ctx, dc); err != nil {
			return err
		}
		all, err := s.insert(ctx, dc, recs, false)
		if err == nil && !all {
			// Some row was skipped: the batch is (partly) a replay, or
			// repeats an id. Redo it learning from RETURNING which rows
			// went in.
			_, err = s.insert(ctx, dc, recs, true)
		}
		if err != nil {
			return err
		}
		n := int64(commitBytes)
		for i := range recs {
			n += rowBytes(&recs[i])
		}
		if s.ins.unckpt.Add(n) >= s.ins.ckptBytes {
			s.ins.unckpt.Store(0)
			runtime.Gosched()
			// PASSIVE never waits for readers; what a reader still needs
			// is copied by a later call. A failure (SQLITE_BUSY) only means
			// the WAL grows a little longer, so it is not the caller's error.
			s.ins.nv = s.ins.nv[:0]
			_, _ = s.ins.exec(context.WithoutCancel(ctx), s.ins.ckpt)
		}
		return nil
	})
	conn.Close()
	return err
}

// insert runs one transaction on the driver connection dc. Without checked
// it inserts and aggregates every row, and rolls back reporting false as
// soon as a row is skipped; with checked it aggregates only the rows
// RETURNING reports.
func (s *Store) insert(ctx context.Context, dc any, recs []ledger.Record, checked bool) (all bool, err error) {
	bt, ok := dc.(driver.ConnBeginTx)
	if !ok {
		return false, fmt.Errorf("sqlite: driver connection %T cannot begin", dc)
	}
	tx, err := bt.BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return false, fmt.Errorf("sqlite: insert records: %w", err)
	}
	defer func() {
		if err != nil || !all {
			tx.Rollback()
		}
	}()
	// Statements run without the caller's cancellation: with a cancellable
	// context the driver starts a watcher goroutine and a progress handler
	// per statement (about 0.8 µs per row). A statement is short (32 rows);
	// ctx is checked between them.
	octx := ctx
	ctx = context.WithoutCancel(ctx)
	agg := newAggregator()
	var byID map[rowKey]*ledger.Record
	if checked {
		byID = make(map[rowKey]*ledger.Record, len(recs))
		for i := range recs {
			k := rowKey{recs[i].ID, recs[i].Time.UnixMicro()}
			if _, dup := byID[k]; !dup {
				byID[k] = &recs[i]
			}
		}
	}
	in := s.ins
	in.fresh = in.fresh[:0]
	defer func() {
		if err != nil || !all {
			in.forgetFresh()
		}
	}()
	for lo := 0; lo < len(recs); {
		n := in.chunkSize(len(recs) - lo)
		chunk := recs[lo : lo+n]
		lo += n
		if err := octx.Err(); err != nil {
			return false, fmt.Errorf("sqlite: insert records: %w", err)
		}
		if err := in.shapeIDs(ctx, chunk); err != nil {
			return false, err
		}
		f := in.insRet
		if !checked {
			f = in.rowFamily(chunkMask(chunk))
		}
		_, st, err := in.pick(ctx, &f.stmts, n)
		if err != nil {
			return false, err
		}
		in.rowArgs(f, chunk)
		if checked {
			err = in.insertReturning(ctx, st, byID, agg)
		} else {
			all, err = in.insertAll(ctx, st, n)
		}
		if err != nil {
			return false, fmt.Errorf("sqlite: insert records: %w", err)
		}
		if !checked && !all {
			return false, nil
		}
		// SQLite runs on this goroutine; yield between statements so that
		// request goroutines on a busy (or single) CPU wait at most about
		// yieldEvery plus one statement, not a whole batch.
		in.yield()
	}
	if !checked {
		for i := range recs {
			agg.add(&recs[i])
		}
	}
	if err := in.insertIDs(ctx, recs); err != nil {
		return false, err
	}
	if err := in.writeAggs(ctx, agg); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlite: insert records: commit: %w", err)
	}
	return true, nil
}

type rowKey struct {
	id string
	us int64
}

// insertAll runs a plain insert of n rows; false if any was skipped.
func (in *inserter) insertAll(ctx context.Context, st driver.Stmt, n int) (bool, error) {
	res, err := in.exec(ctx, st)
	if err != nil {
		return false, err
	}
	got, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return got == int64(n), nil
}

// insertReturning runs an insert ... RETURNING and aggregates the rows
// reported.
func (in *inserter) insertReturning(ctx context.Context, st driver.Stmt, byID map[rowKey]*ledger.Record, agg *aggregator) error {
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return fmt.Errorf("sqlite: statement %T cannot query", st)
	}
	rows, err := q.QueryContext(ctx, in.nv)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, 2)
	for {
		if err := rows.Next(dest); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		id, _ := dest[0].(string)
		us, _ := dest[1].(int64)
		rk := rowKey{id, us}
		if r := byID[rk]; r != nil {
			agg.add(r)
			delete(byID, rk) // a second RETURNING of the same key cannot happen, but never count twice
		}
	}
}

// insertIDs lists in request_ids the rows of recs that GetLog cannot find
// by their id alone (ids.go): none in a batch of gateway-made ids.
func (in *inserter) insertIDs(ctx context.Context, recs []ledger.Record) error {
	var ids []*ledger.Record
	for i := range recs {
		if !idFinds(recs[i].ID, recs[i].Time.UnixMicro()) {
			ids = append(ids, &recs[i])
		}
	}
	return execChunks(ctx, in, &in.insIDs, ids, "request ids", func(r *ledger.Record) {
		in.arg(r.ID)
		in.arg(r.Time.UnixMicro())
	})
}

func (in *inserter) writeAggs(ctx context.Context, agg *aggregator) error {
	agg.fold()
	if err := in.upsertAggs(ctx, agg.hourly, &in.upsHour); err != nil {
		return err
	}
	if err := in.upsertAggs(ctx, agg.daily, &in.upsDay); err != nil {
		return err
	}
	if err := in.upsertZones(ctx, agg.zones); err != nil {
		return err
	}
	for id, us := range agg.last {
		in.nv = in.nv[:0]
		in.arg(id)
		in.arg(us)
		if _, err := in.exec(ctx, in.lastUsed); err != nil {
			return fmt.Errorf("sqlite: key last used: %w", err)
		}
	}
	return nil
}

func (in *inserter) upsertAggs(ctx context.Context, aggs map[aggKey]aggVals, stmts *sized) error {
	keys := make([]aggKey, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	return execChunks(ctx, in, stmts, keys, "upsert usage", func(k aggKey) {
		in.arg(k.t)
		in.arg(k.keyID)
		in.arg(k.model)
		in.arg(k.upstream)
		in.arg(k.endUser)
		for _, v := range aggs[k] {
			in.arg(v)
		}
	})
}

// upsertZones writes a batch's zone counts: a handful of rows per batch.
func (in *inserter) upsertZones(ctx context.Context, zones store.ZoneCounts) error {
	keys := make([]store.Zone, 0, len(zones))
	for z := range zones {
		keys = append(keys, z)
	}
	return execChunks(ctx, in, &in.upsZone, keys, "upsert zones", func(z store.Zone) {
		in.arg(int64(z.Dim))
		in.arg(z.Value)
		in.arg(z.Bucket)
		in.arg(zones[z])
	})
}

// execChunks runs family z over items in the largest chunks prepared for
// it, args appending one item's arguments, yielding between statements.
func execChunks[T any](ctx context.Context, in *inserter, z *sized, items []T, what string, args func(T)) error {
	for lo := 0; lo < len(items); {
		n, st, err := in.pick(ctx, z, len(items)-lo)
		if err != nil {
			return err
		}
		in.nv = in.nv[:0]
		for _, it := range items[lo : lo+n] {
			args(it)
		}
		lo += n
		if _, err := in.exec(ctx, st); err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, err)
		}
		in.yield()
	}
	return nil
}
