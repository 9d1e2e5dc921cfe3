package sqlite

import (
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/internal/ledger"
)

// Shaped inserts. Binding a value costs more CPU than storing it: modernc
// takes the connection's mutex for every bind, copies every text value into
// C memory and unbinds it again after the statement (docs/perf.md). Most of
// a row's columns are low-cardinality (key, model, upstream, endpoint,
// outcome, ...), and a chunk of rows usually repeats a few combinations of
// them: its shapes. A shaped statement binds each shape once, in a small
// dictionary of shapeSlots slots, and per row only the row's own values plus
// the index of its shape, which each shape column selects with a CASE. A
// chunk with more shapes than slots takes the plain statement. Both store
// exactly the same values.

// shapeSlots is how many shapes one shaped statement holds. A slot costs one
// bind per shape column per statement, whether used or not.
const shapeSlots = 4

// shaper is one family of shaped statements: which columns it binds per
// shape. The wide family also shapes the columns that may take many values
// (varied: end user, client address); a chunk with too many shapes for it
// may still fit the narrow one, which binds those per row.
type shaper struct {
	shapeCols, rowCols []int
	// unset are the columns left to their DEFAULT (0, NULL): the family
	// takes only chunks in which every row has them unset (reqCol.unset).
	unset []int
	text  []bool // by reqCols index: a string column
	stmts sized
	reps  [shapeSlots]*ledger.Record // a row of each shape
	idx   []int64                    // each row's shape
}

func newShaper(wide, unset bool) *shaper {
	s := &shaper{text: make([]bool, len(reqCols))}
	var zero ledger.Record
	for i, c := range reqCols {
		_, s.text[i] = c.val(&zero).(string)
		if unset && c.unset != nil {
			s.unset = append(s.unset, i)
		} else if c.same != nil && (wide || !c.varied) {
			s.shapeCols = append(s.shapeCols, i)
		} else {
			s.rowCols = append(s.rowCols, i)
		}
	}
	return s
}

// sql is the shaped form of insertReqSQL(rows, false): the dictionary s
// holds shapeSlots shapes, r the rows, each with the number of its shape.
// Parameters are anonymous and each is used once: a numbered parameter
// used twice gets a name, and modernc looks each parameter's name up in the
// list of names, which made binding quadratic. A row's empty string is
// bound as NULL (no C copy, nothing to unbind) and stored as an empty
// string; a shape's is bound as is (see args).
func (s *shaper) sql(rows int) string {
	names := func(idx []int) string {
		var b strings.Builder
		for _, i := range idx {
			b.WriteString(", " + reqCols[i].name)
		}
		return b.String()
	}
	var b strings.Builder
	b.WriteString(`WITH s(n` + names(s.shapeCols) + `) AS (VALUES `)
	one := strings.Repeat(",?", len(s.shapeCols)) + ")"
	for d := range shapeSlots {
		if d > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(" + strconv.Itoa(d) + one)
	}
	b.WriteString(`), r(n` + names(s.rowCols) + `) AS (VALUES ` + placeholders(rows, 1+len(s.rowCols)) + `)
INSERT INTO requests (`)
	var sel []string
	for i, c := range reqCols {
		if slices.Contains(s.unset, i) {
			continue
		}
		if len(sel) > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.name)
		sel = append(sel, "r."+c.name)
		k := len(sel) - 1
		if slices.Contains(s.shapeCols, i) {
			sel[k] = "s." + c.name
		} else if s.text[i] {
			sel[k] = "coalesce(" + sel[k] + ", '')"
		}
	}
	// CROSS JOIN keeps r the outer loop, so rows go in in batch order.
	b.WriteString(`) SELECT ` + strings.Join(sel, ", ") + ` FROM r CROSS JOIN s WHERE s.n = r.n
ON CONFLICT(time_us, id) DO NOTHING`)
	return b.String()
}

// find assigns each row of chunk a shape; false if it has more than
// shapeSlots shapes.
func (s *shaper) find(chunk []ledger.Record) (n int, ok bool) {
	for _, i := range s.unset {
		for k := range chunk {
			if !reqCols[i].unset(&chunk[k]) {
				return 0, false
			}
		}
	}
	s.idx = s.idx[:0]
	for i := range chunk {
		r := &chunk[i]
		d := 0
		for d < n && !s.sameShape(s.reps[d], r) {
			d++
		}
		if d == n {
			if n == shapeSlots {
				clear(s.reps[:])
				return n, false
			}
			s.reps[n] = r
			n++
		}
		s.idx = append(s.idx, int64(d))
	}
	return n, true
}

func (s *shaper) sameShape(a, b *ledger.Record) bool {
	for _, i := range s.shapeCols {
		if !reqCols[i].same(a, b) {
			return false
		}
	}
	return true
}

// arg appends the value of column i of r to in's arguments.
func (s *shaper) arg(in *inserter, i int, r *ledger.Record) {
	v := reqCols[i].val(r)
	if s.text[i] && v == "" {
		v = nil
	}
	in.arg(v)
}

// args appends a shaped statement's arguments for chunk, whose shapes find
// has just found (n of them), to in.nv.
func (s *shaper) args(in *inserter, chunk []ledger.Record, n int) {
	for d := range shapeSlots {
		for _, i := range s.shapeCols {
			if d < n {
				// As is, "" too: a shape is bound once a statement,
				// and a value never NULL needs no coalesce in every
				// row (1% fewer instructions a row, docs/perf.md).
				in.arg(reqCols[i].val(s.reps[d]))
			} else {
				in.arg(nil) // an unused slot, never selected
			}
		}
	}
	for k := range chunk {
		in.arg(s.idx[k])
		for _, i := range s.rowCols {
			s.arg(in, i, &chunk[k])
		}
	}
	clear(s.reps[:]) // keep no record alive
}
