package responses

import (
	"strconv"

	"github.com/tollgate/tollgate/internal/jsonscan"
)

// appendString writes s as a JSON string literal (jsonscan's writer).
func appendString[T string | []byte](b []byte, s T) []byte { return jsonscan.AppendString(b, s) }

// appendRawOr appends raw (a JSON value taken from the request) or, when it
// is empty, def.
func appendRawOr(b []byte, raw, def string) []byte {
	if raw == "" {
		return append(b, def...)
	}
	return append(b, raw...)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }
