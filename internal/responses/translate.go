package responses

import (
	"encoding/json"
	"log/slog"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
)

// chatRequest is the chat completions request a Responses request becomes.
// Values taken from the client's body stay raw JSON, so numbers, schemas and
// texts pass through as the client wrote them.
type chatRequest struct {
	Model             string          `json:"model"`
	Messages          []chatMessage   `json:"messages"`
	Tools             []chatTool      `json:"tools,omitempty"`
	ToolChoice        json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls json.RawMessage `json:"parallel_tool_calls,omitempty"`
	MaxTokens         json.RawMessage `json:"max_tokens,omitempty"`
	Temperature       json.RawMessage `json:"temperature,omitempty"`
	TopP              json.RawMessage `json:"top_p,omitempty"`
	ResponseFormat    json.RawMessage `json:"response_format,omitempty"`
	ReasoningEffort   json.RawMessage `json:"reasoning_effort,omitempty"`
	PromptCacheKey    json.RawMessage `json:"prompt_cache_key,omitempty"`
	User              json.RawMessage `json:"user,omitempty"`
	Stream            bool            `json:"stream,omitempty"`
	StreamOptions     *streamOptions  `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	ReasoningContent json.RawMessage `json:"reasoning_content,omitempty"`
	ToolCalls        []chatToolCall  `json:"tool_calls,omitempty"`
	ToolCallID       string          `json:"tool_call_id,omitempty"`
}

type chatToolCall struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Function chatFunctionCall `json:"function"`
}

type chatFunctionCall struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"` // a JSON string
}

// translator builds the chat messages from Responses input items.
type translator struct {
	log       *slog.Logger
	names     *toolNames
	msgs      []chatMessage
	reasoning []byte // reasoning text passed back, for the next assistant message
	err       *apierr.Error
}

// translate builds the chat request of f (without its model).
func translate(f *fields, names *toolNames, log *slog.Logger) (*chatRequest, *apierr.Error) {
	req := &chatRequest{Stream: f.stream}
	if f.stream {
		req.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	req.Tools = translateTools(f.tools, names, log)
	if len(req.Tools) > 0 {
		req.ToolChoice = translateToolChoice(f.toolChoice, names, log)
		req.ParallelToolCalls = raw(f.parallelToolCalls)
	}
	t := &translator{log: log, names: names}
	switch ins := f.instructions; ins.Type {
	case gjson.String:
		if ins.Str != "" {
			t.msgs = append(t.msgs, chatMessage{Role: "system", Content: json.RawMessage(ins.Raw)})
		}
	case gjson.JSON:
		t.items(ins)
	}
	switch in := f.input; {
	case in.Type == gjson.String:
		t.msgs = append(t.msgs, chatMessage{Role: "user", Content: json.RawMessage(in.Raw)})
	case in.IsArray():
		t.items(in)
	default:
		return nil, param(apierr.BadRequest("invalid_input", "input must be a string or an array of input items"), "input")
	}
	if t.err != nil {
		return nil, t.err
	}
	if len(t.msgs) == 0 {
		return nil, param(apierr.BadRequest("invalid_input", "input has no message a chat model can read"), "input")
	}
	req.Messages = t.msgs
	req.MaxTokens = raw(f.maxOutputTokens)
	req.Temperature, req.TopP = raw(f.temperature), raw(f.topP)
	req.ResponseFormat = responseFormat(f.text.Get("format"))
	if e := f.reasoning.Get("effort"); e.Type == gjson.String {
		req.ReasoningEffort = raw(e)
	}
	req.PromptCacheKey, req.User = raw(f.promptCacheKey), raw(f.user)
	return req, nil
}

// marshal encodes req with model. It appends by hand: every raw value is
// valid JSON already (the body was validated, the rest is built here), and
// encoding/json would validate and compact each again (half the cost of a
// 200 KB request). FuzzTranslate checks that the result is always JSON; a
// validation here at run time cost a fifth of the bridge's CPU.
func (req *chatRequest) marshal(model string) ([]byte, error) {
	b := make([]byte, 0, 512+req.size())
	b = append(b, `{"model":`...)
	b = appendString(b, model)
	b = append(b, `,"messages":[`...)
	for i := range req.Messages {
		if i > 0 {
			b = append(b, ',')
		}
		b = req.Messages[i].append(b)
	}
	b = append(b, ']')
	if len(req.Tools) > 0 {
		b = append(b, `,"tools":[`...)
		for i, t := range req.Tools {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":"function","function":{"name":`...)
			b = appendString(b, t.Function.Name)
			b = appendMember(b, "description", t.Function.Description)
			b = appendMember(b, "parameters", t.Function.Parameters)
			b = appendMember(b, "strict", t.Function.Strict)
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	b = appendMember(b, "tool_choice", req.ToolChoice)
	b = appendMember(b, "parallel_tool_calls", req.ParallelToolCalls)
	b = appendMember(b, "max_tokens", req.MaxTokens)
	b = appendMember(b, "temperature", req.Temperature)
	b = appendMember(b, "top_p", req.TopP)
	b = appendMember(b, "response_format", req.ResponseFormat)
	b = appendMember(b, "reasoning_effort", req.ReasoningEffort)
	b = appendMember(b, "prompt_cache_key", req.PromptCacheKey)
	b = appendMember(b, "user", req.User)
	if req.Stream {
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	b = append(b, '}')
	return b, nil
}

// size estimates the encoded size.
func (req *chatRequest) size() int {
	n := 0
	for i := range req.Messages {
		m := &req.Messages[i]
		n += 64 + len(m.Content) + len(m.ReasoningContent)
		for _, tc := range m.ToolCalls {
			n += 64 + len(tc.Function.Arguments)
		}
	}
	for _, t := range req.Tools {
		n += 64 + len(t.Function.Description) + len(t.Function.Parameters)
	}
	return n
}

func (m *chatMessage) append(b []byte) []byte {
	b = append(b, `{"role":`...)
	b = appendString(b, m.Role)
	b = append(b, `,"content":`...)
	b = appendRawOr(b, string(m.Content), "null")
	b = appendMember(b, "reasoning_content", m.ReasoningContent)
	if len(m.ToolCalls) > 0 {
		b = append(b, `,"tool_calls":[`...)
		for i, tc := range m.ToolCalls {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendString(b, tc.ID)
			b = append(b, `,"type":"function","function":{"name":`...)
			b = appendString(b, tc.Function.Name)
			b = append(b, `,"arguments":`...)
			b = appendRawOr(b, string(tc.Function.Arguments), `"{}"`)
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	if m.ToolCallID != "" {
		b = append(b, `,"tool_call_id":`...)
		b = appendString(b, m.ToolCallID)
	}
	return append(b, '}')
}

// appendMember appends ,"name":raw when raw is set.
func appendMember(b []byte, name string, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return append(b, raw...)
}

func param(e *apierr.Error, p string) *apierr.Error {
	e.Param = p
	return e
}

// responseFormat maps text.format to chat's response_format.
func responseFormat(f gjson.Result) json.RawMessage {
	switch f.Get("type").String() {
	case "json_schema":
		b := []byte(`{"type":"json_schema","json_schema":{"name":`)
		b = appendRawOr(b, f.Get("name").Raw, `"response"`)
		if s := f.Get("schema"); s.Exists() {
			b = append(b, `,"schema":`...)
			b = append(b, s.Raw...)
		}
		for _, k := range [...]string{"strict", "description"} {
			if v := f.Get(k); v.Exists() && v.Type != gjson.Null {
				b = append(b, `,"`+k+`":`...)
				b = append(b, v.Raw...)
			}
		}
		return append(b, "}}"...)
	case "json_object":
		return json.RawMessage(`{"type":"json_object"}`)
	}
	return nil
}

// items translates an array of input items.
func (t *translator) items(in gjson.Result) {
	in.ForEach(func(_, it gjson.Result) bool {
		m := readMembers(it)
		typ := m.typ.String()
		if typ == "" && m.role.Exists() {
			typ = "message"
		}
		switch typ {
		case "message":
			t.message(&m)
		case "function_call", "custom_tool_call":
			t.call(&m, typ == "custom_tool_call")
		case "function_call_output", "custom_tool_call_output":
			t.callOutput(&m)
		case "reasoning":
			m.content.ForEach(func(_, p gjson.Result) bool {
				t.reasoning = append(t.reasoning, p.Get("text").String()...)
				return true
			})
		case "item_reference":
			t.fail(param(apierr.BadRequest("stateful_request_unsupported",
				"input items of type item_reference need stored responses, which this gateway's Responses bridge does not keep; send the items themselves"), "input"))
		default:
			t.log.Debug("responses bridge: left out an input item a chat upstream cannot read", "type", typ)
		}
		return t.err == nil
	})
}

func (t *translator) fail(e *apierr.Error) {
	if t.err == nil {
		t.err = e
	}
}

// message translates a message item.
func (t *translator) message(it *members) {
	role := it.role.String()
	switch role {
	case "user":
	case "system", "developer":
		// Many chat servers and chat templates know no developer role.
		role = "system"
	case "assistant":
		t.assistant(it.content)
		return
	default:
		t.fail(param(apierr.BadRequest("invalid_input", "unsupported message role "+quote(role)), "input"))
		return
	}
	t.reasoning = t.reasoning[:0] // reasoning belongs to the assistant turn it preceded
	content := t.parts(it.content)
	if content != nil {
		t.msgs = append(t.msgs, chatMessage{Role: role, Content: content})
	}
}

// assistant translates an assistant message: its text parts joined.
func (t *translator) assistant(c gjson.Result) {
	var text []byte
	if c.Type == gjson.String {
		text = []byte(c.Str)
	} else {
		c.ForEach(func(_, p gjson.Result) bool {
			switch p.Get("type").String() {
			case "output_text", "input_text", "text":
				text = append(text, p.Get("text").String()...)
			case "refusal":
				text = append(text, p.Get("refusal").String()...)
			}
			return true
		})
	}
	m := chatMessage{Role: "assistant", Content: appendString(nil, text)}
	m.ReasoningContent = t.takeReasoning()
	t.msgs = append(t.msgs, m)
}

func (t *translator) takeReasoning() json.RawMessage {
	if len(t.reasoning) == 0 {
		return nil
	}
	r := appendString(nil, t.reasoning)
	t.reasoning = t.reasoning[:0]
	return r
}

// call translates a function or custom tool call the model made earlier. It
// joins the assistant message just before it, as chat expects tool calls to
// hang off one assistant message followed by their results.
func (t *translator) call(it *members, custom bool) {
	name := t.names.flat(toolName{namespace: it.namespace.String(), name: it.name.String(), custom: custom})
	var args json.RawMessage
	if custom {
		in := appendString([]byte(`{"input":`), it.input.String())
		args = appendString(nil, append(in, '}'))
	} else {
		a := it.arguments
		switch a.Type {
		case gjson.String:
			args = json.RawMessage(a.Raw)
		default:
			args = appendString(nil, a.Raw)
		}
	}
	tc := chatToolCall{ID: it.callID.String(), Type: "function", Function: chatFunctionCall{Name: name, Arguments: args}}
	if n := len(t.msgs); n > 0 && t.msgs[n-1].Role == "assistant" {
		last := &t.msgs[n-1]
		last.ToolCalls = append(last.ToolCalls, tc)
		if r := t.takeReasoning(); r != nil && last.ReasoningContent == nil {
			last.ReasoningContent = r
		}
		return
	}
	t.msgs = append(t.msgs, chatMessage{Role: "assistant", ToolCalls: []chatToolCall{tc}, ReasoningContent: t.takeReasoning()})
}

// callOutput translates a tool result. Chat tool messages carry text only.
func (t *translator) callOutput(it *members) {
	out := it.output
	var content json.RawMessage
	if out.Type == gjson.String {
		content = json.RawMessage(out.Raw)
	} else {
		var text []byte
		out.ForEach(func(_, p gjson.Result) bool {
			switch typ := p.Get("type").String(); typ {
			case "input_text", "output_text", "text":
				text = append(text, p.Get("text").String()...)
			default:
				t.log.Debug("responses bridge: left out a non-text part of a tool output", "type", typ)
			}
			return true
		})
		content = appendString(nil, text)
	}
	t.msgs = append(t.msgs, chatMessage{Role: "tool", ToolCallID: it.callID.String(), Content: content})
}

// isText reports whether a content part type carries text.
func isText(typ string) bool { return typ == "input_text" || typ == "output_text" || typ == "text" }

// parts translates user or system content: a string, or parts. Content of
// text parts only becomes one string, which every chat server accepts. Text
// is copied as the client encoded it (the body was validated): texts are
// joined as raw JSON strings, never decoded and encoded again.
func (t *translator) parts(c gjson.Result) json.RawMessage {
	if c.Type == gjson.String {
		return json.RawMessage(c.Raw)
	}
	if !c.IsArray() {
		t.fail(param(apierr.BadRequest("invalid_input", "message content must be a string or an array of content parts"), "input"))
		return nil
	}
	var joined []byte // the texts joined by a line break, as a JSON string
	var out []byte
	texts, onlyText := 0, true
	c.ForEach(func(_, p gjson.Result) bool {
		m := readMembers(p)
		var part []byte
		if typ := m.typ.String(); isText(typ) {
			txt := `""`
			if m.text.Type == gjson.String {
				txt = m.text.Raw
			}
			if texts == 0 {
				joined = append(joined, '"')
			} else {
				joined = append(joined, `\n`...)
			}
			texts++
			joined = append(joined, txt[1:len(txt)-1]...)
			part = append(append([]byte(`{"type":"text","text":`), txt...), '}')
		} else if part = t.part(p, typ); part == nil {
			return t.err == nil
		} else {
			onlyText = false
		}
		out = append(out, ',')
		out = append(out, part...)
		return true
	})
	if onlyText && texts > 0 {
		return append(joined, '"')
	}
	if onlyText {
		return appendString(nil, "")
	}
	out[0] = '['
	return append(out, ']')
}

// part translates one content part other than text, nil when left out.
func (t *translator) part(p gjson.Result, typ string) []byte {
	switch typ {
	case "input_image":
		url := p.Get("image_url")
		if url.Type != gjson.String {
			t.fail(param(apierr.BadRequest("unsupported_content", "input_image needs image_url (a URL or a data URL); file_id needs OpenAI's file storage"), "input"))
			return nil
		}
		b := append([]byte(`{"type":"image_url","image_url":{"url":`), url.Raw...)
		if d := p.Get("detail"); d.Type == gjson.String {
			b = append(append(b, `,"detail":`...), d.Raw...)
		}
		return append(b, "}}"...)
	case "input_file":
		if p.Get("file_url").Exists() {
			t.fail(param(apierr.BadRequest("unsupported_content", "input_file with file_url cannot be sent to a chat completions upstream; send file_data"), "input"))
			return nil
		}
		b := []byte(`{"type":"file","file":{`)
		n := 0
		for _, k := range [...]string{"file_data", "file_id", "filename"} {
			if v := p.Get(k); v.Type == gjson.String {
				if n > 0 {
					b = append(b, ',')
				}
				b = append(b, `"`+k+`":`...)
				b = append(b, v.Raw...)
				n++
			}
		}
		return append(b, "}}"...)
	case "input_audio":
		if !p.Get("input_audio").IsObject() {
			t.fail(param(apierr.BadRequest("invalid_input", "input_audio needs an input_audio object"), "input"))
			return nil
		}
		return append(append([]byte(`{"type":"input_audio","input_audio":`), p.Get("input_audio").Raw...), '}')
	default:
		t.log.Debug("responses bridge: left out a content part a chat upstream cannot read", "type", typ)
		return nil
	}
}

func quote(s string) string { return string(appendString(nil, s)) }
