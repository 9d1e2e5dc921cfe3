package streamconn

import (
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/httpfield"
)

// chunkRoom is the room kept before a chunk's data for its size line.
const chunkRoom = 16

// maxPooledBuf bounds the buffers kept for reuse.
const maxPooledBuf = 64 << 10

// Writer is an http.ResponseWriter for a taken stream connection. Data
// written is sent as one HTTP/1.1 chunk per Flush.
type Writer struct {
	c        *Conns
	nc       net.Conn
	header   http.Header
	leftover []byte
	key      int32 // the poller's; -1 when not watched
	onHangup func()
	hungUp   atomic.Bool

	status   int
	headSent bool
	buf      *[]byte // pending chunk data after chunkRoom bytes; nil when none
	err      error   // the first write error: the connection is done for
	ended    bool
}

// Header is the response's header (net/http's map, taken with the
// connection).
func (w *Writer) Header() http.Header { return w.header }

// WriteHeader sets the status, sent with the first Flush.
func (w *Writer) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

// Write queues p for the next Flush.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.buf == nil {
		w.buf = w.c.getBuf()
	}
	*w.buf = append(*w.buf, p...)
	return len(p), nil
}

// hangUp marks the client gone and tells the stream.
func (w *Writer) hangUp() {
	w.hungUp.Store(true)
	w.onHangup()
}

// FlushError sends the header if not yet sent and the queued data as one
// chunk. http.ResponseController.Flush calls it.
func (w *Writer) FlushError() error { return w.send(false) }

// send writes the header if due, the queued data as a chunk and, when
// last, the final chunk: one write for all of them.
func (w *Writer) send(last bool) error {
	if w.err != nil {
		return w.err
	}
	if w.buf == nil {
		switch {
		case !last && w.headSent:
			return nil
		case !last:
			w.sendHead(nil) // the stream opens before its first event
			return w.err
		}
		w.buf = w.c.getBuf()
	}
	b := *w.buf
	start := chunkRoom
	if n := len(b) - chunkRoom; n > 0 {
		var size [chunkRoom]byte
		sz := append(strconv.AppendInt(size[:0], int64(n), 16), '\r', '\n')
		start -= len(sz)
		copy(b[start:], sz)
		b = append(b, '\r', '\n')
	}
	if last {
		b = append(b, "0\r\n\r\n"...)
	}
	*w.buf = b
	switch {
	case !w.headSent:
		w.sendHead(b[start:])
	case len(b) > start:
		_, w.err = w.nc.Write(b[start:])
	}
	w.release()
	return w.err
}

// release gives the pending buffer back to the pool.
func (w *Writer) release() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:chunkRoom]
		w.c.putBuf(w.buf)
		w.buf = nil
	}
}

// Flush is FlushError for callers that assert http.Flusher.
func (w *Writer) Flush() { _ = w.FlushError() }

// sendHead writes the status line and header, as net/http would for a
// response of unknown length, and then body (the first chunk or chunks) in
// the same write: the client is woken once for both.
func (w *Writer) sendHead(body []byte) {
	w.headSent = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	h := w.header
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	bp := w.c.getBuf()
	b := append((*bp)[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	if _, ok := h["Date"]; !ok {
		b = append(b, "Date: "...)
		b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\n"...)
	}
	b = appendHeader(b, h)
	b = append(b, "Transfer-Encoding: chunked\r\n\r\n"...)
	b = append(b, body...)
	_, w.err = w.nc.Write(b)
	*bp = b[:chunkRoom]
	w.c.putBuf(bp)
}

// appendHeader appends h's fields, one line per value. Unlike
// http.Header.Write it does not sort them (the order of fields with
// different names carries no meaning) and so allocates nothing; like it, it
// skips invalid names, trims values and turns their line breaks into spaces.
func appendHeader(b []byte, h http.Header) []byte {
	for k, vs := range h {
		if !httpfield.ValidName(k) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			v = textproto.TrimString(v)
			for i := 0; i < len(v); i++ {
				c := v[i]
				if c == '\r' || c == '\n' {
					c = ' '
				}
				b = append(b, c)
			}
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// End finishes the response: aborted (the body broke after its first byte)
// closes the connection without the final chunk, so no client mistakes it
// for complete, as panic(http.ErrAbortHandler) does with net/http.
// Otherwise the final chunk is sent and the connection waits for the
// client's next request.
func (w *Writer) End(aborted bool) {
	if w.ended {
		return
	}
	w.ended = true
	if w.key >= 0 {
		w.c.poll.unwatch(w.nc, w.key)
	}
	keep := !aborted && !w.hungUp.Load() && w.send(true) == nil
	w.release() // send does not when it fails early
	w.c.ended(w, keep)
}
