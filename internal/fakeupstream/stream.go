package fakeupstream

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollgate/tollgate/internal/jsonscan"
)

// call is one request being answered, with its fault and per-request knobs.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	body   []byte
	fault  Fault
	id     uint64
	chunks int
	delay  time.Duration
}

// reqID is the x-request-id the fake reports, like OpenAI does.
func (c *call) reqID() string {
	return "req_fake_" + strconv.FormatUint(c.id, 10)
}

// writeBody writes a complete non-streamed reply. With a ResetAfterChunks
// fault it sends the headers and half the body, then drops the connection.
func (c *call) writeBody(status int, body []byte) {
	c.w.Header().Set("X-Request-Id", c.reqID())
	if c.fault.ResetAfterChunks <= 0 {
		writeJSON(c.w, status, body)
		return
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(status)
	c.w.Write(body[:len(body)/2])           //nolint:errcheck // the connection is dropped next
	http.NewResponseController(c.w).Flush() //nolint:errcheck // best effort
	abortConn(c.w, false)
}

// stream writes SSE events one by one, each flushed, honouring the request's
// chunk delay and reset fault and noticing a client that went away.
type stream struct {
	c    *call
	rc   *http.ResponseController
	sent int
	buf  []byte
	done bool // the stream was cut (client gone or reset fault)
}

func (c *call) startStream() *stream {
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Request-Id", c.reqID())
	c.w.WriteHeader(http.StatusOK)
	return &stream{c: c, rc: http.NewResponseController(c.w), buf: make([]byte, 0, 1024)}
}

// data starts a "data: " event in the stream's buffer; the caller appends the
// payload and passes the result to send.
func (st *stream) data() []byte {
	return append(st.buf[:0], "data: "...)
}

// named starts an event with an event type.
func (st *stream) named(event string) []byte {
	b := append(st.buf[:0], "event: "...)
	b = append(b, event...)
	return append(b, "\ndata: "...)
}

// send terminates the event in b, waits the chunk delay (not before the first
// event), writes and flushes it. It reports whether the stream goes on; once
// it returns false every later send is a no-op.
func (st *stream) send(b []byte) bool {
	if st.done {
		return false
	}
	b = append(b, '\n', '\n')
	st.buf = b[:0]
	c := st.c
	ctx := c.r.Context()
	if st.sent > 0 && !sleepCtx(ctx, c.delay) || ctx.Err() != nil {
		return st.gone()
	}
	if _, err := c.w.Write(b); err != nil {
		return st.gone()
	}
	if err := st.rc.Flush(); err != nil {
		return st.gone()
	}
	st.sent++
	if n := c.fault.ResetAfterChunks; n > 0 && st.sent >= n {
		c.s.log.DebugContext(ctx, "fake: reset after chunks", "path", c.r.URL.Path, "chunks", st.sent)
		abortConn(c.w, false)
		st.done = true
		return false
	}
	return true
}

// gone records that the client went away mid-stream.
func (st *stream) gone() bool {
	st.done = true
	st.c.s.notifyCancelled(st.c.r.URL.Path)
	return false
}

// doneEvent writes the [DONE] sentinel.
func (st *stream) doneEvent() {
	st.send(append(st.data(), "[DONE]"...))
}

// appendString writes s as a JSON string (jsonscan's writer).
func appendString(b []byte, s string) []byte { return jsonscan.AppendString(b, s) }

func appendStringOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// splitWords splits text into exactly n pieces whose concatenation is text
// plus padding: it cuts before spaces ("echo:", " hello", " world"), merges
// the tail into the last piece when there are more than n words, and pads with
// " ok" pieces when there are fewer.
func splitWords(text string, n int) []string {
	pieces := make([]string, 0, n)
	for len(pieces) < n-1 && len(text) > 1 {
		i := strings.IndexByte(text[1:], ' ')
		if i < 0 {
			break
		}
		pieces = append(pieces, text[:i+1])
		text = text[i+1:]
	}
	if text != "" {
		pieces = append(pieces, text)
	}
	for len(pieces) < n {
		pieces = append(pieces, " ok")
	}
	return pieces
}

// splitEven splits s into at most n pieces of similar byte length, never
// inside a UTF-8 sequence.
func splitEven(s string, n int) []string {
	n = max(1, min(n, utf8.RuneCountInString(s)))
	size := (len(s) + n - 1) / n
	pieces := make([]string, 0, n)
	for len(s) > 0 {
		i := min(size, len(s))
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		pieces = append(pieces, s[:i])
		s = s[i:]
	}
	return pieces
}

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
