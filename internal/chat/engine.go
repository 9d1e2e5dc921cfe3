package chat

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

// Engine runs one call through the gateway's engine (admission, routing,
// attempts, the ledger record). *proxy.Proxy implements it.
type Engine interface {
	Serve(w http.ResponseWriter, r *http.Request, x proxy.Exchange) proxy.Result
}

// dialect writes the gateway's own refusals in the API's shape.
type dialect struct{ s *Service }

func (d dialect) Parse(*proxy.Inbound) (proxy.Request, error) {
	panic("chat: requests are built in Go, never parsed by the engine")
}

func (d dialect) WriteError(w http.ResponseWriter, e *apierr.Error, _ string) {
	d.s.writeError(w, &apiError{Status: e.Status, Message: e.Message, Header: e.Header,
		Details: map[string]any{"type": e.Type, "code": e.Code}})
}

// call is one turn as the engine sees it: a chat completion built from the
// conversation, answered in the API's own shape.
type call struct {
	s      *Service
	t      *turn
	msgs   []wireMessage
	stream bool
	// finish saves a successful reply and returns a warning for the client
	// ("" when saved); nil for calls that are not remembered.
	finish func(reply string) string
}

func (c *call) Head() proxy.Head {
	h := proxy.Head{Model: c.t.model, Stream: c.stream, User: c.t.key.User, Metered: true}
	if c.t.req.MaxTokens != nil {
		h.MaxTokens = int64(*c.t.req.MaxTokens)
	}
	return h
}

func (c *call) PromptTokens(estimate func([]byte) int64) int64 {
	var n int64
	for _, m := range c.msgs {
		n += 4 + estimate([]byte(m.Content))
	}
	return n
}

func (c *call) Outbound(t proxy.Target) (*proxy.Outbound, error) {
	b := c.t.upstreamBody(t.Model, c.msgs, c.stream)
	return &proxy.Outbound{Path: "/chat/completions", Body: b, Reply: &reply{c: c, model: t.Model}}, nil
}

// reply translates the upstream's answer.
type reply struct {
	c     *call
	model string
}

func (rp *reply) Error(status int, h http.Header, body []byte) (int, []byte, string) {
	e := proxyError(status, h, body)
	out := map[string]any{"success": false, "error": e.Message}
	if rp.c.s.opts.Development {
		out["details"] = e.Details
	}
	b, _ := json.Marshal(out)
	return e.Status, append(b, '\n'), "application/json"
}

func (rp *reply) Whole() bool { return true }

func (rp *reply) Tail([]byte) (proxy.Usage, []byte) { return proxy.Usage{}, nil }

// Body answers a complete chat.completion; for a stream call (an upstream
// that ignored "stream") it is sent as a one-event stream.
func (rp *reply) Body(body []byte) ([]byte, string, proxy.Usage, error) {
	comp, e := parseCompletion(body)
	if e != nil {
		return nil, "", proxy.Usage{}, e
	}
	u := comp.usage.Engine()
	model := comp.model
	if model == "" {
		model = rp.c.t.model
	}
	warning := rp.c.finish(comp.content)
	if rp.c.stream {
		st := &stream{c: rp.c, model: model, usage: comp.usage}
		out := st.emit(nil, map[string]string{"content": comp.content})
		st.reply.WriteString(comp.content)
		return st.final(out, warning), "text/event-stream; charset=utf-8", u, nil
	}
	out := map[string]any{"success": true, "response": comp.content, "usage": toUsage(comp.usage),
		"model": model, "conversation": rp.c.t.key.Conversation}
	if warning != "" {
		out["warning"] = warning
	}
	b, _ := json.Marshal(out)
	return append(b, '\n'), "application/json", u, nil
}

func (rp *reply) Stream() proxy.Stream { return &stream{c: rp.c} }

// ResponseHeader sets what the API's streams carry.
func (rp *reply) ResponseHeader(h http.Header) {
	if rp.c.stream {
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // nginx must not buffer the stream
	}
}

// stream re-emits the upstream's chunks as {"content"} events and ends with
// the usage and [DONE].
type stream struct {
	c      *call
	reply  strings.Builder
	usage  openai.Usage
	model  string
	done   bool   // [DONE] was seen
	failed string // an error event was seen (and forwarded)
}

func (st *stream) Event(dst []byte, ev sse.Event) ([]byte, error) {
	data := ev.Data
	if !ev.Dispatch || st.failed != "" {
		return dst, nil
	}
	if string(data) == "[DONE]" {
		st.done = true
		return dst, nil
	}
	if len(data) == 0 || data[0] != '{' {
		return dst, nil
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
		st.failed = redact(msg)
		return st.emit(dst, map[string]string{"error": st.failed}), nil
	}
	if r[1].IsObject() {
		st.usage = openai.ParseUsage(r[1])
	}
	if st.model == "" {
		st.model = r[2].String()
	}
	if c := r[3]; c.Type == gjson.String && c.Str != "" {
		if st.reply.Len()+len(c.Str) <= maxReplyBytes {
			st.reply.WriteString(c.Str)
		}
		return st.emit(dst, map[string]string{"content": c.Str}), nil
	}
	return dst, nil
}

func (st *stream) End(dst []byte, fail *apierr.Error) []byte {
	if fail != nil || !st.done || st.failed != "" {
		if st.failed == "" {
			dst = st.emit(dst, map[string]string{"error": "the upstream stream ended unexpectedly"})
		}
		return sse.AppendEvent(dst, []byte("[DONE]"))
	}
	return st.final(dst, st.c.finish(st.reply.String()))
}

// final appends the closing usage event and [DONE].
func (st *stream) final(dst []byte, warning string) []byte {
	model := st.model
	if model == "" {
		model = st.c.t.model
	}
	final := map[string]any{"usage": toUsage(st.usage), "conversation": st.c.t.key.Conversation, "model": model}
	if warning != "" {
		final["warning"] = warning
	}
	dst = st.emit(dst, final)
	return sse.AppendEvent(dst, []byte("[DONE]"))
}

func (st *stream) emit(dst []byte, v any) []byte {
	b, _ := json.Marshal(v) // plain values only: cannot fail
	return sse.AppendEvent(dst, b)
}

func (st *stream) Usage() proxy.Usage { return st.usage.Engine() }
func (st *stream) Content() []byte    { return []byte(st.reply.String()) }
