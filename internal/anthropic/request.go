package anthropic

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"unsafe"

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
	text    []byte   // scratch: the joined text of one message
	calls   []byte   // scratch: the tool calls of one assistant message
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
	// The results alias body, which stays unchanged while they are used.
	gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body))).ForEach(func(k, v gjson.Result) bool {
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
		if text := tr.joinText(system, "system"); len(text) > 2 {
			out = appendJSONMessage(out, &n, "system", text)
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

// appendRawMessage appends {"role":role,"content":v} for a JSON string value, copied as is
// (the body was validated, so it needs no re-escaping).
func appendRawMessage(out []byte, n *int, role string, v gjson.Result) []byte {
	return appendJSONMessage(out, n, role, []byte(v.Raw))
}

// appendJSONMessage appends {"role":role,"content":content} for content
// that is a JSON string literal already.
func appendJSONMessage(out []byte, n *int, role string, content []byte) []byte {
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	out = append(out, `{"role":"`...)
	out = append(out, role...)
	out = append(out, `","content":`...)
	out = append(out, content...)
	return append(out, '}')
}

// block is what the translator reads of one content block, in one pass
// over its members. String members keep their raw JSON, so text is copied
// without unescaping and escaping it again.
type block struct {
	typ, text, id, name, input, source, content, isError, toolUseID gjson.Result
}

func readBlock(b gjson.Result) block {
	var k block
	b.ForEach(func(key, v gjson.Result) bool {
		switch key.Str {
		case "type":
			k.typ = v
		case "text":
			k.text = v
		case "id":
			k.id = v
		case "name":
			k.name = v
		case "input":
			k.input = v
		case "source":
			k.source = v
		case "content":
			k.content = v
		case "is_error":
			k.isError = v
		case "tool_use_id":
			k.toolUseID = v
		}
		return true
	})
	return k
}

// rawString is v's raw JSON when v is a string, else "" as JSON.
func rawString(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.Raw
	}
	return `""`
}

// textJoiner joins raw JSON strings into one JSON string, separated by a
// blank line, without decoding them: the body was validated, so each one's
// escaped content is valid inside any JSON string.
type textJoiner struct {
	b []byte
	n int
}

func (j *textJoiner) add(raw string) {
	if j.n == 0 {
		j.b = append(j.b, '"')
	} else {
		j.b = append(j.b, `\n\n`...)
	}
	j.n++
	j.b = append(j.b, raw[1:len(raw)-1]...)
}

// json returns the joined string literal ("" when nothing was added).
func (j *textJoiner) json() []byte {
	if j.n == 0 {
		return append(j.b, `""`...)
	}
	return append(j.b, '"')
}

// joinText returns, as a JSON string literal, the text of a string or of an
// array of text blocks, blocks joined by a blank line; other blocks are
// dropped.
func (tr *translator) joinText(v gjson.Result, where string) []byte {
	if v.Type == gjson.String {
		return []byte(v.Raw)
	}
	var j textJoiner
	v.ForEach(func(_, b gjson.Result) bool {
		k := readBlock(b)
		if k.typ.Str != "text" {
			tr.drop(where + "." + k.typ.Str)
			return true
		}
		j.add(rawString(k.text))
		return true
	})
	return j.json()
}

// message translates one entry of "messages".
func (tr *translator) message(out []byte, n *int, m gjson.Result) ([]byte, error) {
	var role, content gjson.Result
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "role":
			role = v
		case "content":
			content = v
		}
		return true
	})
	switch role.Str {
	case "system":
		if content.Type == gjson.String {
			return appendRawMessage(out, n, "system", content), nil
		}
		return appendJSONMessage(out, n, "system", tr.joinText(content, "system")), nil
	case "assistant":
		return tr.assistant(out, n, content), nil
	case "user":
		return tr.user(out, n, content), nil
	}
	e := param("messages", "messages: role must be one of user, assistant; got "+strconv.Quote(role.Str))
	return nil, e
}

// assistant translates an assistant turn: text blocks joined, tool_use
// blocks as tool_calls; thinking blocks are the model's own and dropped.
func (tr *translator) assistant(out []byte, n *int, content gjson.Result) []byte {
	if content.Type == gjson.String {
		return appendRawMessage(out, n, "assistant", content)
	}
	var text textJoiner
	text.b = tr.text[:0]
	calls := 0
	tc := tr.calls[:0]
	content.ForEach(func(_, b gjson.Result) bool {
		k := readBlock(b)
		switch k.typ.Str {
		case "text":
			// Joined without a separator, as the turn's one string.
			if raw := rawString(k.text); text.n == 0 {
				text.add(raw)
			} else {
				text.b = append(text.b, raw[1:len(raw)-1]...)
			}
		case "tool_use":
			if calls > 0 {
				tc = append(tc, ',')
			}
			calls++
			tc = append(tc, `{"id":`...)
			tc = append(tc, rawString(k.id)...)
			tc = append(tc, `,"type":"function","function":{"name":`...)
			tc = appendString(tc, tr.names.up(k.name.Str))
			tc = append(tc, `,"arguments":`...)
			raw := k.input.Raw
			if !k.input.IsObject() {
				raw = "{}"
			}
			tc = append(appendString(tc, raw), `}}`...)
		default:
			tr.drop("assistant." + k.typ.Str)
		}
		return true
	})
	tr.calls = tc
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	out = append(out, `{"role":"assistant","content":`...)
	if text.n == 0 && calls > 0 {
		out = append(out, "null"...)
	} else {
		out = append(out, text.json()...)
	}
	tr.text = text.b
	if calls > 0 {
		out = append(out, `,"tool_calls":[`...)
		out = append(out, tc...)
		out = append(out, ']')
	}
	return append(out, '}')
}

// user translates a user turn. tool_result blocks become tool messages,
// placed first (chat completions wants them right after the assistant's
// tool_calls); the rest becomes one user message: a string when it is text
// only, which every chat upstream accepts, else content parts.
func (tr *translator) user(out []byte, n *int, content gjson.Result) []byte {
	if content.Type == gjson.String {
		return appendRawMessage(out, n, "user", content)
	}
	parts := tr.parts[:0]
	var text textJoiner
	text.b = tr.text[:0]
	nparts := 0
	addPart := func(p []byte) {
		if nparts > 0 {
			parts = append(parts, ',')
		}
		nparts++
		parts = append(parts, p...)
	}
	addText := func(raw string) {
		text.add(raw)
		if nparts > 0 {
			parts = append(parts, ',')
		}
		nparts++
		parts = append(parts, `{"type":"text","text":`...)
		parts = append(parts, raw...)
		parts = append(parts, '}')
	}
	content.ForEach(func(_, b gjson.Result) bool {
		k := readBlock(b)
		switch k.typ.Str {
		case "text":
			addText(rawString(k.text))
		case "image":
			if p := imagePart(k.source); p != nil {
				addPart(p)
			} else {
				tr.drop("image.source")
			}
		case "document":
			if k.source.Get("type").Str == "text" {
				addText(rawString(k.source.Get("data")))
			} else {
				tr.drop("document")
			}
		case "tool_result":
			out = tr.toolResult(out, n, k, addPart)
		default:
			tr.drop("user." + k.typ.Str)
		}
		return true
	})
	tr.parts = parts
	if nparts == 0 {
		tr.text = text.b
		return out
	}
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	out = append(out, `{"role":"user","content":`...)
	if text.n == nparts {
		out = append(out, text.json()...)
	} else {
		out = append(out, '[')
		out = append(out, parts...)
		out = append(out, ']')
	}
	tr.text = text.b
	return append(out, '}')
}

// toolResult appends a tool message; images in the result go to the user
// message that follows (a tool message carries text only).
func (tr *translator) toolResult(out []byte, n *int, k block, addPart func([]byte)) []byte {
	c := k.content
	var text []byte
	switch {
	case c.Type == gjson.String:
		text = []byte(c.Raw)
	case c.IsArray():
		var j textJoiner
		c.ForEach(func(_, p gjson.Result) bool {
			pk := readBlock(p)
			switch pk.typ.Str {
			case "text":
				j.add(rawString(pk.text))
			case "image":
				if ip := imagePart(pk.source); ip != nil {
					addPart(ip)
				}
			default:
				tr.drop("tool_result." + pk.typ.Str)
			}
			return true
		})
		text = j.json()
	default:
		text = []byte(`""`)
	}
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	out = append(out, `{"role":"tool","tool_call_id":`...)
	out = append(out, rawString(k.toolUseID)...)
	out = append(out, `,"content":`...)
	// Compared raw: a text that spells "Error" with \u escapes gets the
	// prefix twice, which is harmless.
	if k.isError.Bool() && !bytes.HasPrefix(text, []byte(`"Error`)) {
		out = append(out, `"Error: `...)
		out = append(out, text[1:]...)
	} else {
		out = append(out, text...)
	}
	return append(out, '}')
}

// imagePart returns an image_url content part for an image block's source:
// base64 data as a data URL, a URL as itself. It returns nil for other
// sources.
func imagePart(s gjson.Result) []byte {
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
