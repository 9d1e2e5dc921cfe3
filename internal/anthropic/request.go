package anthropic

import (
	"context"
	"log/slog"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/proxy"
)

// translate builds a chat completions request for an OpenAI-compatible
// upstream.
func (r *request) translate(t proxy.Target) (*proxy.Outbound, error) {
	model := t.Model
	if model == "" {
		model = r.h.Model
	}
	tr := &translator{log: r.d.log}
	body, err := tr.chat(r.body, model, r.h.Stream)
	if err != nil {
		return nil, err
	}
	return &proxy.Outbound{
		Path:   "/chat/completions",
		Body:   body,
		Header: openAIHeader,
		Reply: &chatReply{
			model:  r.h.Model,
			names:  tr.names,
			stream: r.h.Stream,
			log:    r.d.log,
		},
	}, nil
}

// translator turns one Messages request into a chat completions request.
type translator struct {
	log     *slog.Logger
	names   toolNames
	dropped []string // what had no translation, for one debug line
	parts   []byte   // scratch: the user content parts of one message
}

func (tr *translator) drop(what string) {
	if tr.log.Enabled(context.Background(), slog.LevelDebug) {
		tr.dropped = append(tr.dropped, what)
	}
}

// chat translates body. The body was validated as JSON by Parse.
func (tr *translator) chat(body []byte, model string, stream bool) ([]byte, error) {
	var system, messages, tools, choice, thinking gjson.Result
	out := make([]byte, 0, len(body)+len(body)/8+256)
	out = append(out, `{"model":`...)
	out = appendString(out, model)
	var rest []byte // members copied after the messages
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model", "stream":
		case "system":
			system = v
		case "messages":
			messages = v
		case "tools":
			tools = v
		case "tool_choice":
			choice = v
		case "thinking":
			thinking = v
		case "max_tokens", "temperature", "top_p":
			if v.Type == gjson.Number {
				rest = append(rest, ',', '"')
				rest = append(rest, k.Str...)
				rest = append(rest, '"', ':')
				rest = append(rest, v.Raw...)
			}
		case "stop_sequences":
			if v.IsArray() && v.Get("#").Int() > 0 {
				rest = append(rest, `,"stop":`...)
				rest = append(rest, v.Raw...)
			}
		case "metadata":
			if u := v.Get("user_id"); u.Type == gjson.String && u.Str != "" {
				rest = append(rest, `,"user":`...)
				rest = append(rest, u.Raw...)
			}
		default:
			tr.drop(k.Str)
		}
		return true
	})
	out = append(out, `,"messages":[`...)
	n := 0
	if system.Type == gjson.String {
		if system.Str != "" {
			out = appendRawMessage(out, &n, "system", system)
		}
	} else if system.Exists() {
		if text := joinText(system, "system", tr); text != "" {
			out = appendMessage(out, &n, "system", text)
		}
	}
	var err error
	messages.ForEach(func(_, m gjson.Result) bool {
		out, err = tr.message(out, &n, m)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	out = append(out, ']')
	out = append(out, rest...)
	out = tr.appendTools(out, tools, choice)
	out = tr.appendThinking(out, thinking, model)
	if stream {
		out = append(out, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	out = append(out, '}')
	if len(tr.dropped) > 0 {
		tr.log.Debug("anthropic: request fields with no chat completions translation were dropped",
			"fields", strings.Join(tr.dropped, ","))
	}
	return out, nil
}

// appendMessage appends {"role":role,"content":text} with text as a string.
func appendMessage(out []byte, n *int, role, text string) []byte {
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	out = append(out, `{"role":"`...)
	out = append(out, role...)
	out = append(out, `","content":`...)
	return append(appendString(out, text), '}')
}

// appendRawMessage is appendMessage for a JSON string value, copied as is
// (the body was validated, so it needs no re-escaping).
func appendRawMessage(out []byte, n *int, role string, v gjson.Result) []byte {
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	out = append(out, `{"role":"`...)
	out = append(out, role...)
	out = append(out, `","content":`...)
	out = append(out, v.Raw...)
	return append(out, '}')
}

// joinText returns the text of a string or of an array of text blocks,
// blocks joined by a blank line; other blocks are dropped.
func joinText(v gjson.Result, where string, tr *translator) string {
	if v.Type == gjson.String {
		return v.Str
	}
	var sb strings.Builder
	v.ForEach(func(_, b gjson.Result) bool {
		if b.Get("type").Str != "text" {
			tr.drop(where + "." + b.Get("type").Str)
			return true
		}
		if sb.Len() > 0 {
			sb.WriteString("\n\n")
		}
		sb.WriteString(b.Get("text").Str)
		return true
	})
	return sb.String()
}

// message translates one entry of "messages".
func (tr *translator) message(out []byte, n *int, m gjson.Result) ([]byte, error) {
	role := m.Get("role").Str
	content := m.Get("content")
	switch role {
	case "system":
		if content.Type == gjson.String {
			return appendRawMessage(out, n, "system", content), nil
		}
		return appendMessage(out, n, "system", joinText(content, "system", tr)), nil
	case "assistant":
		return tr.assistant(out, n, content), nil
	case "user":
		return tr.user(out, n, content), nil
	}
	e := param("messages", "messages: role must be one of user, assistant; got "+strconv.Quote(role))
	return nil, e
}

// assistant translates an assistant turn: text blocks joined, tool_use
// blocks as tool_calls; thinking blocks are the model's own and dropped.
func (tr *translator) assistant(out []byte, n *int, content gjson.Result) []byte {
	if content.Type == gjson.String {
		return appendRawMessage(out, n, "assistant", content)
	}
	var text strings.Builder
	calls := 0
	var tc []byte
	content.ForEach(func(_, b gjson.Result) bool {
		switch typ := b.Get("type").Str; typ {
		case "text":
			text.WriteString(b.Get("text").Str)
		case "tool_use":
			if calls > 0 {
				tc = append(tc, ',')
			}
			calls++
			tc = append(tc, `{"id":`...)
			tc = appendString(tc, b.Get("id").Str)
			tc = append(tc, `,"type":"function","function":{"name":`...)
			tc = appendString(tc, tr.names.up(b.Get("name").Str))
			tc = append(tc, `,"arguments":`...)
			in := b.Get("input")
			raw := in.Raw
			if !in.IsObject() {
				raw = "{}"
			}
			tc = append(appendString(tc, raw), `}}`...)
		default:
			tr.drop("assistant." + typ)
		}
		return true
	})
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	out = append(out, `{"role":"assistant","content":`...)
	if text.Len() == 0 && calls > 0 {
		out = append(out, "null"...)
	} else {
		out = appendString(out, text.String())
	}
	if calls > 0 {
		out = append(out, `,"tool_calls":[`...)
		out = append(out, tc...)
		out = append(out, ']')
	}
	return append(out, '}')
}

// user translates a user turn. tool_result blocks become tool messages,
// placed first (chat completions wants them right after the assistant's
// tool_calls); the rest becomes one user message.
func (tr *translator) user(out []byte, n *int, content gjson.Result) []byte {
	if content.Type == gjson.String {
		return appendRawMessage(out, n, "user", content)
	}
	parts := tr.parts[:0]
	nparts, texts := 0, 0
	addPart := func(p []byte) {
		if nparts > 0 {
			parts = append(parts, ',')
		}
		nparts++
		parts = append(parts, p...)
	}
	content.ForEach(func(_, b gjson.Result) bool {
		switch typ := b.Get("type").Str; typ {
		case "text":
			addPart(appendTextPart(nil, b.Get("text").Str))
			texts++
		case "image":
			if p := imagePart(b); p != nil {
				addPart(p)
			} else {
				tr.drop("image.source")
			}
		case "document":
			if s := b.Get("source"); s.Get("type").Str == "text" {
				addPart(appendTextPart(nil, s.Get("data").Str))
				texts++
			} else {
				tr.drop("document")
			}
		case "tool_result":
			out = tr.toolResult(out, n, b, addPart)
		default:
			tr.drop("user." + typ)
		}
		return true
	})
	tr.parts = parts
	if nparts == 0 {
		return out
	}
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	out = append(out, `{"role":"user","content":`...)
	if texts == nparts {
		// Text only: one string, which every chat upstream accepts.
		var sb strings.Builder
		content.ForEach(func(_, b gjson.Result) bool {
			var t string
			switch b.Get("type").Str {
			case "text":
				t = b.Get("text").Str
			case "document":
				t = b.Get("source.data").Str
			default:
				return true
			}
			if sb.Len() > 0 {
				sb.WriteString("\n\n")
			}
			sb.WriteString(t)
			return true
		})
		out = appendString(out, sb.String())
	} else {
		out = append(out, '[')
		out = append(out, parts...)
		out = append(out, ']')
	}
	return append(out, '}')
}

// toolResult appends a tool message; images in the result go to the user
// message that follows (a tool message carries text only).
func (tr *translator) toolResult(out []byte, n *int, b gjson.Result, addPart func([]byte)) []byte {
	c := b.Get("content")
	var text string
	switch {
	case c.Type == gjson.String:
		text = c.Str
	case c.IsArray():
		var sb strings.Builder
		c.ForEach(func(_, p gjson.Result) bool {
			switch typ := p.Get("type").Str; typ {
			case "text":
				if sb.Len() > 0 {
					sb.WriteString("\n\n")
				}
				sb.WriteString(p.Get("text").Str)
			case "image":
				if ip := imagePart(p); ip != nil {
					addPart(ip)
				}
			default:
				tr.drop("tool_result." + typ)
			}
			return true
		})
		text = sb.String()
	}
	if b.Get("is_error").Bool() && !strings.HasPrefix(text, "Error") {
		text = "Error: " + text
	}
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	out = append(out, `{"role":"tool","tool_call_id":`...)
	out = appendString(out, b.Get("tool_use_id").Str)
	out = append(out, `,"content":`...)
	out = appendString(out, text)
	return append(out, '}')
}

func appendTextPart(b []byte, text string) []byte {
	b = append(b, `{"type":"text","text":`...)
	return append(appendString(b, text), '}')
}

// imagePart returns an image_url content part for an image block: base64
// data as a data URL, a URL as itself. It returns nil for other sources.
func imagePart(b gjson.Result) []byte {
	s := b.Get("source")
	var p []byte
	switch s.Get("type").Str {
	case "base64":
		p = append(p, `{"type":"image_url","image_url":{"url":"data:`...)
		p = appendStringBody(p, s.Get("media_type").Str)
		p = append(p, ";base64,"...)
		p = appendStringBody(p, s.Get("data").Str)
		p = append(p, `"}}`...)
	case "url":
		p = append(p, `{"type":"image_url","image_url":{"url":`...)
		p = appendString(p, s.Get("url").Str)
		p = append(p, `}}`...)
	}
	return p
}

// appendTools appends tools and tool_choice. Server tools (web search, code
// execution: a "type" but no input_schema) run at Anthropic only: dropped.
func (tr *translator) appendTools(out []byte, tools, choice gjson.Result) []byte {
	if !tools.IsArray() {
		return out
	}
	n := 0
	tools.ForEach(func(_, t gjson.Result) bool {
		var name, desc, schema, typ gjson.Result
		t.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "name":
				name = v
			case "description":
				desc = v
			case "input_schema":
				schema = v
			case "type":
				typ = v
			}
			return true
		})
		if !schema.IsObject() {
			tr.drop("tools." + typ.Str)
			return true
		}
		if n == 0 {
			out = append(out, `,"tools":[`...)
		} else {
			out = append(out, ',')
		}
		n++
		out = append(out, `{"type":"function","function":{"name":`...)
		out = appendString(out, tr.names.up(name.Str))
		if desc.Type == gjson.String {
			out = append(out, `,"description":`...)
			out = append(out, desc.Raw...)
		}
		out = append(out, `,"parameters":`...)
		out = append(out, schema.Raw...)
		out = append(out, `}}`...)
		return true
	})
	if n == 0 {
		return out
	}
	out = append(out, ']')
	switch choice.Get("type").Str {
	case "auto":
		out = append(out, `,"tool_choice":"auto"`...)
	case "any":
		out = append(out, `,"tool_choice":"required"`...)
	case "none":
		out = append(out, `,"tool_choice":"none"`...)
	case "tool":
		out = append(out, `,"tool_choice":{"type":"function","function":{"name":`...)
		out = appendString(out, tr.names.up(choice.Get("name").Str))
		out = append(out, `}}`...)
	}
	if choice.Get("disable_parallel_tool_use").Bool() {
		out = append(out, `,"parallel_tool_calls":false`...)
	}
	return out
}

// appendThinking maps extended thinking to reasoning_effort for models known
// to take it (OpenAI's reasoning models); other upstreams may reject the
// field, so for them thinking is dropped.
func (tr *translator) appendThinking(out []byte, thinking gjson.Result, model string) []byte {
	if !thinking.Exists() {
		return out
	}
	typ := thinking.Get("type").Str
	if typ == "disabled" {
		return out
	}
	if !reasoningModel(model) {
		tr.drop("thinking")
		return out
	}
	effort := "medium"
	if b := thinking.Get("budget_tokens"); b.Exists() {
		switch n := b.Int(); {
		case n < 4096:
			effort = "low"
		case n >= 16384:
			effort = "high"
		}
	}
	out = append(out, `,"reasoning_effort":"`...)
	out = append(out, effort...)
	return append(out, '"')
}

// reasoningModel reports whether model (after any "vendor/" prefix) is one
// of OpenAI's reasoning models, which take reasoning_effort.
func reasoningModel(model string) bool {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	for _, p := range [...]string{"o1", "o3", "o4", "gpt-5"} {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}
