package fakeupstream

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault scripts how the fake answers one request. The zero Fault means
// "behave normally". Fields combine: delay first, then reset or status, and
// the chunk fields shape a normal (streamed) reply.
//
// A request takes the next queued Fault (Server.Enqueue); when the queue is
// empty its X-Fake-* headers build one instead (a queued Fault wins entirely):
//
//	X-Fake-Status: 503            Status
//	X-Fake-Retry-After: 2         RetryAfter
//	X-Fake-Delay: 200ms           DelayHeaders
//	X-Fake-Chunks: 50             Chunks
//	X-Fake-Chunk-Delay: 10ms      ChunkDelay
//	X-Fake-Reset: before          ResetBeforeHeaders
//	X-Fake-Reset: after:3         ResetAfterChunks = 3
//	X-Fake-Reply: text            Reply = ReplyText
//
// Invalid header values get a 400 naming the header.
type Fault struct {
	// Status, when set, is answered instead of the normal reply, with Body
	// (default: an OpenAI error JSON matching the status). A 2xx Status with
	// an empty Body still gives the normal reply (with Header added).
	Status int
	Body   string
	// Header is added to the response, whatever it is.
	Header http.Header
	// RetryAfter sets the Retry-After response header.
	RetryAfter string
	// DelayHeaders waits this long before answering; a client that gives up
	// meanwhile is reported on Cancelled.
	DelayHeaders time.Duration
	// ResetBeforeHeaders hijacks the connection and closes it with a TCP RST
	// (SO_LINGER 0) without answering.
	ResetBeforeHeaders bool
	// ResetAfterChunks, for a stream, sends this many SSE events (the role
	// chunk counts as the first) and then closes the connection with no
	// [DONE] and no final chunk, so the client sees an unexpected EOF. It
	// closes with FIN, not RST, so the client reliably receives the events
	// sent before (an RST may discard them from its receive buffer). A
	// non-streamed reply is cut after half its body instead.
	ResetAfterChunks int
	// ChunkDelay overrides Options.ChunkDelay for this request.
	ChunkDelay time.Duration
	// Chunks overrides Options.Chunks for this request (capped at 100000).
	Chunks int
	// Reply chooses the kind of a normal reply: "" (a call of the first
	// tool when tools are offered, else text) or ReplyText (text even when
	// tools are offered). An agent that always sends tools, such as Codex,
	// can then finish a turn: it sets the header on every request.
	Reply string
}

// ReplyText is the Fault.Reply value that makes the fake answer in text.
const ReplyText = "text"

// headerFault builds a Fault from X-Fake-* request headers.
func headerFault(h http.Header) (Fault, error) {
	var f Fault
	var err error
	if v := h.Get("X-Fake-Status"); v != "" {
		if f.Status, err = strconv.Atoi(v); err != nil || f.Status < 100 || f.Status > 599 {
			return f, fmt.Errorf("invalid X-Fake-Status %q: want an HTTP status code", v)
		}
	}
	f.RetryAfter = h.Get("X-Fake-Retry-After")
	if f.DelayHeaders, err = headerDuration(h, "X-Fake-Delay"); err != nil {
		return f, err
	}
	if f.ChunkDelay, err = headerDuration(h, "X-Fake-Chunk-Delay"); err != nil {
		return f, err
	}
	if v := h.Get("X-Fake-Chunks"); v != "" {
		if f.Chunks, err = strconv.Atoi(v); err != nil || f.Chunks < 1 || f.Chunks > maxChunks {
			return f, fmt.Errorf("invalid X-Fake-Chunks %q: want 1..%d", v, maxChunks)
		}
	}
	switch v := h.Get("X-Fake-Reply"); v {
	case "", ReplyText:
		f.Reply = v
	default:
		return f, fmt.Errorf("invalid X-Fake-Reply %q: want text", v)
	}
	switch v := h.Get("X-Fake-Reset"); {
	case v == "":
	case v == "before":
		f.ResetBeforeHeaders = true
	case strings.HasPrefix(v, "after:"):
		if f.ResetAfterChunks, err = strconv.Atoi(v[len("after:"):]); err != nil || f.ResetAfterChunks < 1 {
			return f, fmt.Errorf("invalid X-Fake-Reset %q: want before or after:N with N >= 1", v)
		}
	default:
		return f, fmt.Errorf("invalid X-Fake-Reset %q: want before or after:N", v)
	}
	return f, nil
}

func headerDuration(h http.Header, name string) (time.Duration, error) {
	v := h.Get(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid %s %q: want a duration such as 200ms", name, v)
	}
	return d, nil
}

// applyFault carries out the parts of f that come before the normal reply.
// It reports whether the normal reply should follow.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	if f.DelayHeaders > 0 {
		s.log.DebugContext(r.Context(), "fake: delaying headers", "path", r.URL.Path, "delay", f.DelayHeaders)
		if !sleepCtx(r.Context(), f.DelayHeaders) {
			s.notifyCancelled(r.URL.Path)
			return false
		}
	}
	if f.ResetBeforeHeaders {
		s.log.DebugContext(r.Context(), "fake: reset before headers", "path", r.URL.Path)
		abortConn(w, true)
		return false
	}
	h := w.Header()
	for k, v := range f.Header {
		h[k] = append(h[k], v...)
	}
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	if f.Status == 0 || (f.Status >= 200 && f.Status < 300 && f.Body == "") {
		return true
	}
	s.log.DebugContext(r.Context(), "fake: scripted status", "path", r.URL.Path, "status", f.Status)
	if f.Body == "" && isAnthropicPath(r.URL.Path) {
		_, _, msg := defaultError(f.Status)
		writeAnthropicError(w, f.Status, msg)
		return false
	}
	if f.Body == "" {
		typ, code, msg := defaultError(f.Status)
		writeError(w, f.Status, typ, code, msg)
		return false
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	writeJSON(w, f.Status, []byte(f.Body))
	return false
}

// defaultError is the OpenAI-style error type, code and message for status.
func defaultError(status int) (typ, code, msg string) {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error", "", "Bad request (scripted by fakeupstream)."
	case http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key", "Incorrect API key provided."
	case http.StatusForbidden:
		return "invalid_request_error", "permission_denied", "You are not allowed to use this resource."
	case http.StatusNotFound:
		return "invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."
	case http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."
	case http.StatusInternalServerError:
		return "server_error", "", "The server had an error while processing your request."
	case http.StatusServiceUnavailable:
		return "server_error", "server_overloaded", "The engine is currently overloaded, please try again later."
	case http.StatusGatewayTimeout:
		return "server_error", "timeout", "The upstream timed out."
	}
	if status >= 500 {
		return "server_error", "", http.StatusText(status) + " (scripted by fakeupstream)."
	}
	return "invalid_request_error", "", http.StatusText(status) + " (scripted by fakeupstream)."
}

// errorBody is the OpenAI error envelope; an empty code or param is null.
func errorBody(typ, code, param, msg string) []byte {
	b := make([]byte, 0, 128+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"param":`...)
	b = appendStringOrNull(b, param)
	b = append(b, `,"code":`...)
	b = appendStringOrNull(b, code)
	return append(b, "}}"...)
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeErrorParam(w, status, typ, code, "", msg)
}

func writeErrorParam(w http.ResponseWriter, status int, typ, code, param, msg string) {
	writeJSON(w, status, errorBody(typ, code, param, msg))
}

// writeJSON writes a complete JSON body with its Content-Length.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client may be gone; nothing to do
}

// abortConn drops the connection under w without a proper HTTP ending: RST
// when rst is set, else FIN. The caller flushes first whatever the client
// should still receive; net/http also writes out a started chunked body on
// Hijack, but never its terminating chunk. Where hijacking is impossible
// (HTTP/2), it aborts the handler, which resets the stream.
func abortConn(w http.ResponseWriter, rst bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && rst {
		tc.SetLinger(0) //nolint:errcheck // best effort: without it a FIN is sent
	}
	conn.Close()
}
