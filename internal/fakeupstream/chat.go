package fakeupstream

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxEcho bounds the echoed user text, so replies stay small and cheap
// whatever the prompt size.
const maxEcho = 256

// missingModel is the model name that always gets a 404 model_not_found.
const missingModel = "missing-model"

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
}

// reply is what a completion answers, in any of its wire shapes.
type reply struct {
	id, model    string
	created      int64
	pieces       []string // content chunks, or tool-call argument fragments
	toolID       string   // set when the reply is a tool call
	toolName     string
	finish       string
	prompt       int
	includeUsage bool
}

func (rp *reply) text() string { return strings.Join(rp.pieces, "") }

// messageText returns a message's text: a JSON string, or the text parts of
// an array of content parts.
func messageText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		json.Unmarshal(raw, &s) //nolint:errcheck // invalid content reads as ""
		return s
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		json.Unmarshal(raw, &parts) //nolint:errcheck // as above
		var sb strings.Builder
		for _, p := range parts {
			sb.WriteString(p.Text)
		}
		return sb.String()
	}
	return ""
}

// echoText is the deterministic reply to a user message.
func echoText(user string) string {
	if user == "" {
		return "echo:"
	}
	return "echo: " + truncate(user, maxEcho)
}

// promptTokens is the deterministic prompt token count: bytes / 4, min 1.
func promptTokens(n int) int { return max(1, n/4) }

// checkModel writes the OpenAI error for an empty or missing model.
func (c *call) checkModel(model string) bool {
	switch model {
	case "":
		writeErrorParam(c.w, http.StatusBadRequest, "invalid_request_error", "", "model", "you must provide a model parameter")
		return false
	case missingModel:
		writeErrorParam(c.w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
			"The model `"+model+"` does not exist or you do not have access to it.")
		return false
	}
	return true
}

// wantsTool reports whether the reply is a tool call: when the request
// offers one (offered) and the fault does not ask for text.
func (c *call) wantsTool(offered bool) bool {
	return offered && c.fault.Reply != ReplyText
}

func (c *call) badJSON(err error) {
	writeError(c.w, http.StatusBadRequest, "invalid_request_error", "",
		"We could not parse the JSON body of your request. ("+err.Error()+")")
}

func (s *Server) chat(c *call) {
	var req chatRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		c.badJSON(err)
		return
	}
	if len(req.Messages) == 0 {
		writeErrorParam(c.w, http.StatusBadRequest, "invalid_request_error", "", "messages", "[] is too short - 'messages'")
		return
	}
	if !c.checkModel(req.Model) {
		return
	}
	size, user, last := 0, "", ""
	for _, m := range req.Messages {
		t := messageText(m.Content)
		size += len(t)
		if m.Role == "user" {
			user = t
		}
		last = m.Role
	}
	rp := &reply{
		id: "chatcmpl-fake-" + strconv.FormatUint(c.id, 10), model: req.Model, created: time.Now().Unix(),
		finish: "stop", prompt: promptTokens(size), includeUsage: req.StreamOptions.IncludeUsage,
	}
	// After a tool result the fake answers in text, so an agent loop ends.
	if c.wantsTool(len(req.Tools) > 0 && string(req.ToolChoice) != `"none"` && last != "tool") {
		rp.toolID = "call_fake_" + strconv.FormatUint(c.id, 10)
		rp.toolName = req.Tools[0].Function.Name
		args := appendString([]byte(`{"input":`), truncate(user, maxEcho))
		rp.pieces = splitEven(string(append(args, '}')), c.chunks)
		rp.finish = "tool_calls"
	} else {
		rp.pieces = splitWords(echoText(user), c.chunks)
		if limit := max(req.MaxTokens, req.MaxCompletionTokens); limit > 0 && limit < len(rp.pieces) {
			rp.pieces, rp.finish = rp.pieces[:limit], "length"
		}
	}
	if req.Stream {
		c.streamChat(rp)
		return
	}
	c.writeBody(http.StatusOK, chatJSON(rp))
}

func appendUsage(b []byte, prompt, completion int) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	return append(b, `,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

// appendHead appends the fields every object of a reply starts with.
func appendHead(b []byte, rp *reply, object string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, rp.id)
	b = append(b, `,"object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, rp.created, 10)
	b = append(b, `,"model":`...)
	return appendString(b, rp.model)
}

func chatJSON(rp *reply) []byte {
	b := make([]byte, 0, 768+len(rp.text()))
	b = appendHead(b, rp, "chat.completion")
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if rp.toolID != "" {
		b = append(b, `null,"tool_calls":[{"id":`...)
		b = appendString(b, rp.toolID)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendString(b, rp.toolName)
		b = append(b, `,"arguments":`...)
		b = appendString(b, rp.text())
		b = append(b, `}}]`...)
	} else {
		b = appendString(b, rp.text())
	}
	b = append(b, `,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"`...)
	b = append(b, rp.finish...)
	b = append(b, `"}],"usage":`...)
	b = appendUsage(b, rp.prompt, len(rp.pieces))
	return append(b, `,"service_tier":"default","system_fingerprint":"fp_fake"}`...)
}

// streamChat sends the role chunk, one chunk per piece, the finish chunk,
// the usage chunk when asked for, and [DONE].
func (c *call) streamChat(rp *reply) {
	st := c.startStream()
	head := appendHead(nil, rp, "chat.completion.chunk")
	head = append(head, `,"system_fingerprint":"fp_fake","choices":[`...)
	tail := "]}"
	if rp.includeUsage {
		tail = `],"usage":null}` // as OpenAI does when usage is requested
	}
	chunk := func(delta func([]byte) []byte, finish string) bool {
		b := append(st.data(), head...)
		b = append(b, `{"index":0,"delta":`...)
		b = delta(b)
		b = append(b, `,"logprobs":null,"finish_reason":`...)
		b = appendStringOrNull(b, finish)
		b = append(b, '}')
		return st.send(append(b, tail...))
	}
	ok := chunk(func(b []byte) []byte {
		if rp.toolID == "" {
			return append(b, `{"role":"assistant","content":"","refusal":null}`...)
		}
		b = append(b, `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":`...)
		b = appendString(b, rp.toolID)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendString(b, rp.toolName)
		return append(b, `,"arguments":""}}],"refusal":null}`...)
	}, "")
	for _, p := range rp.pieces {
		if !ok {
			return
		}
		ok = chunk(func(b []byte) []byte {
			if rp.toolID == "" {
				return append(appendString(append(b, `{"content":`...), p), '}')
			}
			b = appendString(append(b, `{"tool_calls":[{"index":0,"function":{"arguments":`...), p)
			return append(b, "}}]}"...)
		}, "")
	}
	if !ok || !chunk(func(b []byte) []byte { return append(b, "{}"...) }, rp.finish) {
		return
	}
	if rp.includeUsage {
		b := append(st.data(), head...)
		b = append(b, `],"usage":`...)
		b = appendUsage(b, rp.prompt, len(rp.pieces))
		if !st.send(append(b, '}')) {
			return
		}
	}
	st.doneEvent()
}

type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens int `json:"max_tokens"`
}

// completions answers the legacy text completion API. The prompt may be a
// string or an array of strings (the first is echoed; token arrays echo "").
func (s *Server) completions(c *call) {
	var req completionRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		c.badJSON(err)
		return
	}
	if !c.checkModel(req.Model) {
		return
	}
	prompt := messageText(req.Prompt)
	if len(req.Prompt) > 0 && req.Prompt[0] == '[' {
		var ps []string
		json.Unmarshal(req.Prompt, &ps) //nolint:errcheck // token arrays are not strings
		if len(ps) > 0 {
			prompt = ps[0]
		}
	}
	rp := &reply{
		id: "cmpl-fake-" + strconv.FormatUint(c.id, 10), model: req.Model, created: time.Now().Unix(),
		finish: "stop", prompt: promptTokens(len(prompt)), includeUsage: req.StreamOptions.IncludeUsage,
		pieces: splitWords(echoText(prompt), c.chunks),
	}
	if req.MaxTokens > 0 && req.MaxTokens < len(rp.pieces) {
		rp.pieces, rp.finish = rp.pieces[:req.MaxTokens], "length"
	}
	if !req.Stream {
		b := appendHead(nil, rp, "text_completion")
		b = append(b, `,"choices":[{"text":`...)
		b = appendString(b, rp.text())
		b = append(b, `,"index":0,"logprobs":null,"finish_reason":"`...)
		b = append(b, rp.finish...)
		b = append(b, `"}],"usage":`...)
		b = appendUsage(b, rp.prompt, len(rp.pieces))
		c.writeBody(http.StatusOK, append(b, '}'))
		return
	}
	st := c.startStream()
	head := appendHead(nil, rp, "text_completion")
	head = append(head, `,"choices":[{"text":`...)
	for i := 0; i <= len(rp.pieces); i++ {
		b := append(st.data(), head...)
		text, finish := "", rp.finish
		if i < len(rp.pieces) {
			text, finish = rp.pieces[i], ""
		}
		b = appendString(b, text)
		b = append(b, `,"index":0,"logprobs":null,"finish_reason":`...)
		b = appendStringOrNull(b, finish)
		if !st.send(append(b, "}]}"...)) {
			return
		}
	}
	if rp.includeUsage {
		b := appendHead(st.data(), rp, "text_completion")
		b = append(b, `,"choices":[],"usage":`...)
		if !st.send(append(appendUsage(b, rp.prompt, len(rp.pieces)), '}')) {
			return
		}
	}
	st.doneEvent()
}
