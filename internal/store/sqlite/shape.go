package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tollgate/tollgate/internal/ledger"
)

// Shapes (migration 00007). The columns a busy gateway's rows repeat (key,
// endpoint, model, upstream, outcome, status, ...) are stored once a
// combination, in request_shapes, and each row of request_rows holds the
// shape's id. SQLite's insert costs CPU per column of a row (the VDBE
// reads, copies, checks and encodes each one): rows of 17 columns instead
// of 28 took a third fewer instructions (docs/perf.md). The inserter keeps
// the ids it has seen; shapes are never deleted.

// shapeKey holds a record's shape columns (reqCol.shape).
type shapeKey struct {
	keyID, keyName, endpoint, model, modelUsed, upstream, outcome string
	status, attempts                                              int
	stream, estimated, priced                                     bool
}

func shapeOf(r *ledger.Record) shapeKey {
	return shapeKey{keyID: r.KeyID, keyName: r.KeyName, endpoint: r.Endpoint, model: r.Model, modelUsed: r.ModelUsed,
		upstream: r.Upstream, outcome: string(r.Outcome), status: r.Status, attempts: r.Attempts,
		stream: r.Stream, estimated: r.Estimated, priced: r.Priced}
}

// maxShapes bounds the inserter's map of shape ids. A gateway has a few
// dozen shapes; a map this full is cleared and refilled from the table.
const maxShapes = 4096

// shapeCols are the indexes in reqCols of the shape columns, and rowCols
// of the others, in reqCols order.
var shapeCols, rowCols = splitCols()

func splitCols() (shape, row []int) {
	for i, c := range reqCols {
		if c.shape {
			shape = append(shape, i)
		} else {
			row = append(row, i)
		}
	}
	return shape, row
}

func colNames(idx []int) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = reqCols[i].name
	}
	return out
}

// shapeFindSQL and shapeAddSQL look a shape up and add it.
var (
	shapeFindSQL = `SELECT id FROM request_shapes WHERE ` + strings.Join(colNames(shapeCols), " = ? AND ") + ` = ?`
	shapeAddSQL  = `INSERT INTO request_shapes (` + strings.Join(colNames(shapeCols), ", ") + `) VALUES ` +
		placeholders(1, len(shapeCols)) + ` RETURNING id`
)

// shapeIDs sets in.ids to the shape id of each row of chunk, adding the
// shapes the table lacks. It runs in the caller's transaction: the shapes
// it adds are listed in in.fresh until the transaction ends (forgetFresh).
func (in *inserter) shapeIDs(ctx context.Context, chunk []ledger.Record) error {
	in.ids = in.ids[:0]
	var last shapeKey
	var lastID int64 = -1
	for i := range chunk {
		k := shapeOf(&chunk[i])
		if lastID < 0 || k != last {
			id, ok := in.shapes[k]
			if !ok {
				var err error
				if id, err = in.addShape(ctx, &chunk[i], k); err != nil {
					return fmt.Errorf("sqlite: request shape: %w", err)
				}
			}
			last, lastID = k, id
		}
		in.ids = append(in.ids, lastID)
	}
	return nil
}

// addShape finds or adds r's shape k in the table and remembers its id.
func (in *inserter) addShape(ctx context.Context, r *ledger.Record, k shapeKey) (int64, error) {
	if len(in.shapes) >= maxShapes {
		clear(in.shapes)
	}
	args := make([]driver.NamedValue, len(shapeCols))
	for n, i := range shapeCols {
		args[n] = driver.NamedValue{Ordinal: n + 1, Value: reqCols[i].val(r)}
	}
	id, found, err := queryID(ctx, in.shapeFind, args)
	if err == nil && !found {
		id, found, err = queryID(ctx, in.shapeAdd, args)
		if err == nil && !found {
			err = errors.New("insert returned no id")
		}
		in.fresh = append(in.fresh, k)
	}
	if err != nil {
		return 0, err
	}
	in.shapes[k] = id
	return id, nil
}

// forgetFresh drops the ids of the shapes added in a transaction that was
// rolled back: the table no longer has them.
func (in *inserter) forgetFresh() {
	for _, k := range in.fresh {
		delete(in.shapes, k)
	}
	in.fresh = in.fresh[:0]
}

// queryID runs st, which returns at most one integer.
func queryID(ctx context.Context, st driver.Stmt, args []driver.NamedValue) (int64, bool, error) {
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return 0, false, fmt.Errorf("statement %T cannot query", st)
	}
	rows, err := q.QueryContext(ctx, args)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); errors.Is(err, io.EOF) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, err
	}
	id, ok := dest[0].(int64)
	if !ok {
		return 0, false, fmt.Errorf("id is %T", dest[0])
	}
	return id, true, nil
}
