package sqlite

import (
	"slices"
	"strings"

	"github.com/tollgate/tollgate/internal/ledger"
)

// The inserts of request_rows. A column most rows leave at its DEFAULT
// (reqCol.unset: an empty end user or error, no cached tokens, no logged
// body) is left out of a chunk's statement when every row of the chunk
// leaves it unset: binding a value costs more CPU than storing it (modernc
// takes the connection's mutex for every bind, copies every text into C
// memory and unbinds it again after the statement). Each combination of
// columns left out is a family of statements, prepared as chunks need it:
// a gateway uses a few.

// unsetCols are the indexes in reqCols of the row columns with an unset
// test; bit k of a mask stands for unsetCols[k].
var unsetCols = func() []int {
	var out []int
	for _, i := range rowCols {
		if reqCols[i].unset != nil {
			out = append(out, i)
		}
	}
	return out
}()

// chunkMask has bit k set when every row of chunk leaves unsetCols[k]
// unset.
func chunkMask(chunk []ledger.Record) uint32 {
	m := uint32(1)<<len(unsetCols) - 1
	for k := range chunk {
		for b, i := range unsetCols {
			if m&(1<<b) != 0 && !reqCols[i].unset(&chunk[k]) {
				m &^= 1 << b
			}
		}
		if m == 0 {
			break
		}
	}
	return m
}

// rowFamily is the statement family of one mask: the shape's id, then the
// row columns the mask keeps.
type rowFamily struct {
	cols  []int  // reqCols indexes, bound in this order after the shape id
	text  []bool // by position in cols: a string column
	stmts sized
}

func newRowFamily(mask uint32, returning bool) *rowFamily {
	f := &rowFamily{}
	var zero ledger.Record
	for _, i := range rowCols {
		if b := slices.Index(unsetCols, i); b >= 0 && mask&(1<<b) != 0 {
			continue
		}
		_, text := reqCols[i].val(&zero).(string)
		f.cols, f.text = append(f.cols, i), append(f.text, text)
	}
	f.stmts.sql = func(n int) string { return f.sql(n, returning) }
	return f
}

// sql is the insert of rows rows. A row's empty string is bound as NULL (no
// C copy, nothing to unbind) and stored as an empty string.
func (f *rowFamily) sql(rows int, returning bool) string {
	cols := []string{"shape"}
	vals := []string{"?"}
	for k, i := range f.cols {
		cols = append(cols, reqCols[i].name)
		if f.text[k] {
			vals = append(vals, "coalesce(?, '')")
		} else {
			vals = append(vals, "?")
		}
	}
	one := "(" + strings.Join(vals, ", ") + ")"
	var b strings.Builder
	b.WriteString(`INSERT INTO request_rows (` + strings.Join(cols, ", ") + `) VALUES `)
	for k := range rows {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	b.WriteString(` ON CONFLICT(time_us, id) DO NOTHING`)
	if returning {
		b.WriteString(` RETURNING id, time_us`)
	}
	return b.String()
}

// rowFamily returns the family of mask, made on first use.
func (in *inserter) rowFamily(mask uint32) *rowFamily {
	f := in.rowFams[mask]
	if f == nil {
		f = newRowFamily(mask, false)
		in.rowFams[mask] = f
	}
	return f
}

// rowArgs sets in.nv to the arguments of f's insert of chunk, whose shape
// ids shapeIDs has just set.
func (in *inserter) rowArgs(f *rowFamily, chunk []ledger.Record) {
	in.nv = in.nv[:0]
	for k := range chunk {
		r := &chunk[k]
		in.arg(in.ids[k])
		for j, i := range f.cols {
			v := reqCols[i].val(r)
			if f.text[j] && v == "" {
				v = nil
			}
			in.arg(v)
		}
	}
}
