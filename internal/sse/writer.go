package sse

import (
	"bytes"
	"io"
)

// AppendEvent appends data as one event to dst and returns the extended
// slice: "data: " + data + "\n\n". Data is normally a single line (a JSON
// document); if it contains line breaks ("\n", "\r\n" or "\r") each line gets
// its own "data: " field, so a Reader returns the lines joined with "\n".
func AppendEvent(dst, data []byte) []byte {
	for {
		dst = append(dst, "data: "...)
		i := bytes.IndexByte(data, '\n')
		if cr := bytes.IndexByte(data, '\r'); cr >= 0 && (i < 0 || cr < i) {
			i = cr
		}
		if i < 0 {
			dst = append(dst, data...)
			return append(dst, '\n', '\n')
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

// WriteEvent writes data as one event to w with a single Write call (see
// AppendEvent). It does not flush; the caller flushes after each event it wants
// the client to see at once.
func WriteEvent(w io.Writer, data []byte) error {
	var stack [512]byte
	_, err := w.Write(AppendEvent(stack[:0], data))
	return err
}
