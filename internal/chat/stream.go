package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/openai"
)

const (
	// maxEventBytes bounds one SSE event (and an unterminated line) read
	// from the proxy.
	maxEventBytes = 4 << 20
	// maxReplyBytes bounds the assembled reply kept for the history.
	maxReplyBytes = 8 << 20
)

var (
	errClientGone  = errors.New("chat: write to client failed")
	errEventTooBig = errors.New("chat: upstream event too large")
)

// stream serves /api/chat/stream: it runs the call through the proxy with a
// streamWriter that translates the OpenAI chunks into the API's events as
// they are written, then ends the stream and, on success, saves the turn.
func (s *Service) stream(w http.ResponseWriter, r *http.Request, t *turn, msgs []wireMessage) {
	sw := &streamWriter{client: w, rc: http.NewResponseController(w), header: newHeader(w, r)}
	aborted := s.serveProxy(sw, internalRequest(r, t.endpoint, t.key.User, t.upstreamBody(msgs, true)))

	if !sw.started { // nothing reached the client yet: answer in JSON
		switch {
		case aborted:
			s.writeError(w, &apiError{Status: http.StatusBadGateway, Message: "the upstream response broke off"})
			return
		case sw.status == 0:
			s.writeError(w, &apiError{Status: http.StatusBadGateway, Message: "the gateway produced no response"})
			return
		case sw.status != http.StatusOK:
			s.writeError(w, proxyError(sw.status, sw.header, sw.body.Bytes()))
			return
		}
		// A 200 that is not a stream: an upstream that ignored "stream".
		c, e := parseCompletion(sw.body.Bytes())
		if e != nil {
			s.writeError(w, e)
			return
		}
		sw.start()
		sw.usage, sw.model = c.usage, c.model
		sw.reply.WriteString(c.content)
		sw.done = sw.emit(map[string]string{"content": c.content}) == nil
	}
	switch {
	case sw.writeErr != nil:
		return // the client went away; the proxy recorded it
	case !sw.done || aborted || sw.failed != "":
		if sw.failed == "" {
			_ = sw.emit(map[string]string{"error": "the upstream stream ended unexpectedly"})
		}
		_ = sw.writeDone()
		return
	}
	if sw.model == "" {
		sw.model = t.model
	}
	final := map[string]any{"usage": toUsage(sw.usage), "conversation": t.key.Conversation, "model": sw.model}
	if err := s.remember(r.Context(), t.key, t.req.message, sw.reply.String(), t.asked); err != nil {
		s.logRememberFailure(w, r, err)
		final["warning"] = "the reply could not be saved to the conversation history"
	}
	if sw.emit(final) == nil {
		_ = sw.writeDone()
	}
}

// streamWriter is the ResponseWriter a stream call hands the proxy. A 200
// event stream is parsed as it is written and re-emitted to the client as
// {"content"} events, flushed one by one; anything else is kept for the
// service to answer in JSON.
type streamWriter struct {
	client http.ResponseWriter
	rc     *http.ResponseController
	header http.Header
	status int
	sse    bool         // the proxy's response is an event stream
	body   bytes.Buffer // a non-stream response, bounded

	started  bool   // the client's SSE headers were sent
	pending  []byte // an unterminated line
	skipLF   bool   // the last write ended in "\r"
	data     []byte // data lines of the event being read
	hasData  bool
	reply    strings.Builder
	usage    openai.Usage
	model    string
	done     bool   // [DONE] was seen
	failed   string // an error event was seen (and forwarded)
	writeErr error
}

func (sw *streamWriter) Header() http.Header { return sw.header }

func (sw *streamWriter) WriteHeader(code int) {
	if sw.status != 0 {
		return
	}
	sw.status = code
	if code == http.StatusOK && isEventStream(sw.header.Get("Content-Type")) {
		sw.sse = true
		sw.start()
	}
}

// start sends the client's SSE headers.
func (sw *streamWriter) start() {
	h := sw.client.Header()
	for k, v := range passHeaders(sw.header) {
		h[k] = v
	}
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx must not buffer the stream
	sw.client.WriteHeader(http.StatusOK)
	sw.started = true
	sw.flush()
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.WriteHeader(http.StatusOK)
	}
	if !sw.sse {
		if sw.body.Len()+len(p) > maxCaptured {
			return 0, errCaptureFull
		}
		return sw.body.Write(p)
	}
	if sw.writeErr != nil {
		return 0, sw.writeErr
	}
	if err := sw.feed(p); err != nil {
		if errors.Is(err, errEventTooBig) {
			sw.fail("the upstream sent an event that is too large")
		}
		return 0, err
	}
	return len(p), nil
}

// FlushError forwards the proxy's flushes (each event was flushed already).
func (sw *streamWriter) FlushError() error {
	if sw.started {
		sw.flush()
	}
	return sw.writeErr
}

// Flush implements http.Flusher.
func (sw *streamWriter) Flush() { _ = sw.FlushError() }

func (sw *streamWriter) flush() {
	if sw.writeErr == nil {
		if err := sw.rc.Flush(); err != nil {
			sw.writeErr = errClientGone
		}
	}
}

// feed splits the written bytes into lines ("\n", "\r\n" or "\r") and
// dispatches an event at each blank line, as the SSE standard reads them.
func (sw *streamWriter) feed(p []byte) error {
	sw.pending = append(sw.pending, p...)
	buf := sw.pending
	if sw.skipLF && len(buf) > 0 {
		if buf[0] == '\n' { // the second half of a "\r\n" split across writes
			buf = buf[1:]
		}
		sw.skipLF = false
	}
	for {
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			break
		}
		next := i + 1
		if buf[i] == '\r' {
			if i+1 == len(buf) {
				sw.skipLF = true
			} else if buf[i+1] == '\n' {
				next = i + 2
			}
		}
		if err := sw.line(buf[:i]); err != nil {
			return err
		}
		buf = buf[next:]
	}
	sw.pending = append(sw.pending[:0], buf...) // overlapping copy is a memmove
	if len(sw.pending) > maxEventBytes {
		return errEventTooBig
	}
	return nil
}

func (sw *streamWriter) line(l []byte) error {
	if len(l) == 0 {
		if !sw.hasData {
			return nil
		}
		err := sw.dispatch(sw.data)
		sw.data, sw.hasData = sw.data[:0], false
		return err
	}
	name, value, _ := bytes.Cut(l, []byte(":"))
	if string(name) != "data" { // comments, event, id and retry carry nothing we use
		return nil
	}
	value = bytes.TrimPrefix(value, []byte(" "))
	if sw.hasData {
		sw.data = append(sw.data, '\n')
	}
	sw.data = append(sw.data, value...)
	sw.hasData = true
	if len(sw.data) > maxEventBytes {
		return errEventTooBig
	}
	return nil
}

// dispatch handles one event's data.
func (sw *streamWriter) dispatch(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "[DONE]" {
		sw.done = true
		return nil
	}
	if len(data) == 0 || data[0] != '{' || sw.failed != "" {
		return nil
	}
	r := gjson.GetManyBytes(data, "error", "usage", "model", "choices.0.delta.content")
	if r[0].Exists() {
		msg := r[0].Get("message").String()
		if msg == "" && r[0].Type == gjson.String {
			msg = r[0].Str
		}
		if msg == "" {
			msg = "the upstream reported an error mid-stream"
		}
		sw.fail(redact(msg))
		return sw.writeErr
	}
	if r[1].IsObject() {
		sw.usage = openai.ParseUsage(r[1])
	}
	if sw.model == "" {
		sw.model = r[2].String()
	}
	if c := r[3]; c.Type == gjson.String && c.Str != "" {
		if sw.reply.Len()+len(c.Str) <= maxReplyBytes {
			sw.reply.WriteString(c.Str)
		}
		return sw.emit(map[string]string{"content": c.Str})
	}
	return nil
}

// fail forwards an error event once.
func (sw *streamWriter) fail(msg string) {
	if sw.failed != "" {
		return
	}
	sw.failed = msg
	_ = sw.emit(map[string]string{"error": msg})
}

// emit writes one "data: {json}" event and flushes it.
func (sw *streamWriter) emit(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return sw.writeEvent(b)
}

// writeDone writes the closing [DONE] event.
func (sw *streamWriter) writeDone() error { return sw.writeEvent([]byte("[DONE]")) }

func (sw *streamWriter) writeEvent(data []byte) error {
	if sw.writeErr != nil {
		return sw.writeErr
	}
	ev := make([]byte, 0, len(data)+8)
	ev = append(ev, "data: "...)
	ev = append(ev, data...)
	ev = append(ev, "\n\n"...)
	if _, err := sw.client.Write(ev); err != nil {
		sw.writeErr = errClientGone
		return sw.writeErr
	}
	sw.flush()
	return sw.writeErr
}

func isEventStream(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}
