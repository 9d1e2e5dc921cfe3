package fakeupstream

import (
	"bytes"
	"encoding/json"
	"github.com/tidwall/gjson"
	"net/http"
	"strconv"
)

// The Anthropic Messages dialect of the fake, so a gateway's passthrough to
// an `api: anthropic` upstream is tested over real HTTP:
//
//	POST .../messages                 a message, or its event stream
//	POST .../messages/count_tokens    {"input_tokens": N}
//
// Replies follow the same rules as chat completions: "echo: " and the last
// user text, or, when tools are offered (and tool_choice is not none) and the
// last user turn carries no tool_result and no X-Fake-Reply: text asks
// otherwise, a tool_use of the first tool with input {"input": <user text>}. Usage: a prompt of bytes/4 tokens; when the
// request uses cache_control, half of it is reported as cache reads and a
// quarter as cache writes, so cache accounting can be checked.

type anthropicRequest struct {
	Model     string `json:"model"`
	MaxTokens *int   `json:"max_tokens"`
	Stream    bool   `json:"stream"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name string `json:"name"`
	} `json:"tools"`
	ToolChoice struct {
		Type string `json:"type"`
	} `json:"tool_choice"`
}

// isAnthropicPath reports whether p is one of the Messages endpoints.
func isAnthropicPath(p string) bool {
	p = trimSlash(p)
	return hasSuffix(p, "/messages") || hasSuffix(p, "/messages/count_tokens")
}

// anthropicErrorType is Anthropic's error type for a status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529, http.StatusServiceUnavailable:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

func anthropicErrorBody(typ, msg string) []byte {
	b := append(make([]byte, 0, 96+len(msg)), `{"type":"error","error":{"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	return append(b, "}}"...)
}

// writeAnthropicError writes an error in Anthropic's shape.
func writeAnthropicError(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusServiceUnavailable {
		status = 529 // Anthropic says overloaded with 529
	}
	writeJSON(w, status, anthropicErrorBody(anthropicErrorType(status), msg))
}

// blocksText returns the text of a content value and whether it holds a
// tool_result block.
func blocksText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return messageText(raw), false
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &blocks) //nolint:errcheck // invalid content reads as ""
	text, result := "", false
	for _, b := range blocks {
		text += b.Text
		result = result || b.Type == "tool_result"
	}
	return text, result
}

func (s *Server) messages(c *call) {
	var req anthropicRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		writeAnthropicError(c.w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return
	}
	switch {
	case req.Model == "":
		writeAnthropicError(c.w, http.StatusBadRequest, "model: Field required")
		return
	case req.MaxTokens == nil:
		writeAnthropicError(c.w, http.StatusBadRequest, "max_tokens: Field required")
		return
	case len(req.Messages) == 0:
		writeAnthropicError(c.w, http.StatusBadRequest, "messages: at least one message is required")
		return
	case req.Model == missingModel:
		writeAnthropicError(c.w, http.StatusNotFound, "model: "+req.Model)
		return
	}
	user, toolResult := "", false
	for _, m := range req.Messages {
		if m.Role == "user" {
			user, toolResult = blocksText(m.Content)
		}
	}
	rp := &reply{
		id: "msg_fake_" + strconv.FormatUint(c.id, 10), model: req.Model,
		finish: "end_turn", prompt: anthropicPrompt(c.body),
	}
	if c.wantsTool(len(req.Tools) > 0 && req.ToolChoice.Type != "none" && !toolResult) {
		rp.toolID = "toolu_fake_" + strconv.FormatUint(c.id, 10)
		rp.toolName = req.Tools[0].Name
		args := appendString([]byte(`{"input":`), truncate(user, maxEcho))
		rp.pieces = splitEven(string(append(args, '}')), c.chunks)
		rp.finish = "tool_use"
	} else {
		rp.pieces = splitWords(echoText(user), c.chunks)
		if limit := *req.MaxTokens; limit > 0 && limit < len(rp.pieces) {
			rp.pieces, rp.finish = rp.pieces[:limit], "max_tokens"
		}
	}
	u := fakeAnthropicUsage(rp.prompt, bytes.Contains(c.body, []byte(`"cache_control"`)))
	if req.Stream {
		c.streamMessage(rp, u)
		return
	}
	c.writeBody(http.StatusOK, messageJSON(rp, u))
}

// anthropicUsage is the input side of a reply's usage.
type anthropicUsage struct{ input, cacheRead, cacheWrite int }

func fakeAnthropicUsage(prompt int, cached bool) anthropicUsage {
	if !cached {
		return anthropicUsage{input: prompt}
	}
	u := anthropicUsage{cacheRead: prompt / 2, cacheWrite: prompt / 4}
	u.input = prompt - u.cacheRead - u.cacheWrite
	return u
}

func appendAnthropicUsage(b []byte, u anthropicUsage, output int) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.input), 10)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.cacheWrite), 10)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.cacheRead), 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(output), 10)
	return append(b, '}')
}

func messageHead(b []byte, rp *reply) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, rp.id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	return appendString(b, rp.model)
}

func messageJSON(rp *reply, u anthropicUsage) []byte {
	b := messageHead(make([]byte, 0, 512+len(rp.text())), rp)
	b = append(b, `,"content":[`...)
	if rp.toolID != "" {
		b = append(b, `{"type":"tool_use","id":`...)
		b = appendString(b, rp.toolID)
		b = append(b, `,"name":`...)
		b = appendString(b, rp.toolName)
		b = append(b, `,"input":`...)
		b = append(b, rp.text()...)
	} else {
		b = append(b, `{"type":"text","text":`...)
		b = appendString(b, rp.text())
	}
	b = append(b, `}],"stop_reason":"`...)
	b = append(b, rp.finish...)
	b = append(b, `","stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, u, len(rp.pieces))
	return append(b, '}')
}

// streamMessage sends message_start, ping, one content block with a delta
// per piece, message_delta with the usage, and message_stop.
func (c *call) streamMessage(rp *reply, u anthropicUsage) {
	st := c.startStream()
	b := append(st.named("message_start"), `{"type":"message_start","message":`...)
	b = messageHead(b, rp)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, u, 1)
	if !st.send(append(b, "}}"...)) {
		return
	}
	if !st.send(append(st.named("ping"), `{"type": "ping"}`...)) {
		return
	}
	b = append(st.named("content_block_start"), `{"type":"content_block_start","index":0,"content_block":`...)
	if rp.toolID != "" {
		b = append(b, `{"type":"tool_use","id":`...)
		b = appendString(b, rp.toolID)
		b = append(b, `,"name":`...)
		b = appendString(b, rp.toolName)
		b = append(b, `,"input":{}}}`...)
	} else {
		b = append(b, `{"type":"text","text":""}}`...)
	}
	if !st.send(b) {
		return
	}
	for _, p := range rp.pieces {
		b = append(st.named("content_block_delta"), `{"type":"content_block_delta","index":0,"delta":`...)
		if rp.toolID != "" {
			b = appendString(append(b, `{"type":"input_json_delta","partial_json":`...), p)
		} else {
			b = appendString(append(b, `{"type":"text_delta","text":`...), p)
		}
		if !st.send(append(b, "}}"...)) {
			return
		}
	}
	if !st.send(append(st.named("content_block_stop"), `{"type":"content_block_stop","index":0}`...)) {
		return
	}
	b = append(st.named("message_delta"), `{"type":"message_delta","delta":{"stop_reason":"`...)
	b = append(b, rp.finish...)
	b = append(b, `","stop_sequence":null},"usage":`...)
	b = appendAnthropicUsage(b, u, len(rp.pieces))
	if !st.send(append(b, '}')) {
		return
	}
	st.send(append(st.named("message_stop"), `{"type":"message_stop"}`...))
}

func (s *Server) countTokens(c *call) {
	var req anthropicRequest
	if err := json.Unmarshal(c.body, &req); err != nil || req.Model == "" || len(req.Messages) == 0 {
		writeAnthropicError(c.w, http.StatusBadRequest, "model and messages are required")
		return
	}
	b := strconv.AppendInt([]byte(`{"input_tokens":`), int64(anthropicPrompt(c.body)), 10)
	c.writeBody(http.StatusOK, append(b, '}'))
}

// anthropicPrompt counts the prompt from the messages and the system prompt
// only, so the same request streamed or not reports the same input tokens.
func anthropicPrompt(body []byte) int {
	r := gjson.GetManyBytes(body, "messages", "system")
	return promptTokens(len(r[0].Raw) + len(r[1].Raw))
}
