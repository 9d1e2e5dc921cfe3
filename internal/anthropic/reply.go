package anthropic

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
)

// chatReply translates a chat completions answer into a Messages answer.
type chatReply struct {
	model  string // the model the client asked for, echoed back
	names  toolNames
	stream bool
	log    *slog.Logger
}

func (c *chatReply) Error(status int, _ http.Header, body []byte) (int, []byte, string) {
	return translateError(status, body)
}

func (c *chatReply) Stream() proxy.Stream { return newChatStream(c) }

func (c *chatReply) Whole() bool { return true }

func (c *chatReply) Tail(tail []byte) (proxy.Usage, []byte) { return proxy.Usage{}, tail }

// stopReason maps a chat finish_reason to Anthropic's stop_reason.
func stopReason(finish string, tools bool) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	if tools {
		return "tool_use" // some upstreams say "stop" after tool calls
	}
	return "end_turn"
}

// stopSequence returns the stop string a vLLM-style upstream reports in
// choice.stop_reason, "" when it reports none.
func stopSequence(choice gjson.Result) string {
	if v := choice.Get("stop_reason"); v.Type == gjson.String {
		return v.Str
	}
	return ""
}

// chatUsage is the upstream's usage in the gateway's convention.
func chatUsage(v gjson.Result) proxy.Usage {
	u := openai.ParseUsage(v)
	return proxy.Usage{
		Prompt:     u.PromptTokens,
		Cached:     min(u.CachedTokens, u.PromptTokens),
		Completion: u.CompletionTokens,
		Reasoning:  u.ReasoningTokens,
	}
}

// appendUsage appends Anthropic's usage object for u: input_tokens excludes
// the cache reads and writes that the gateway's Prompt includes.
func appendUsage(b []byte, u proxy.Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, max(0, u.Prompt-u.Cached-u.CacheWrite), 10)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = strconv.AppendInt(b, u.CacheWrite, 10)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = strconv.AppendInt(b, u.Cached, 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, u.Completion, 10)
	return append(b, '}')
}

// messageID makes an Anthropic-looking id from the upstream's.
func messageID(id string) string {
	if strings.HasPrefix(id, "msg_") {
		return id
	}
	if id == "" {
		id = "gateway"
	}
	return "msg_" + id
}

// toolArgs returns the tool input for a chat arguments string: the JSON
// object itself, or {} when it is empty or not an object (Anthropic's input
// is always an object).
func toolArgs(args string) (string, bool) {
	s := strings.TrimSpace(args)
	if s == "" {
		return "{}", true
	}
	if s[0] == '{' && gjson.Valid(s) {
		return s, true
	}
	return "{}", false
}

// Body translates a whole chat.completion into a Messages response.
func (c *chatReply) Body(body []byte) ([]byte, string, proxy.Usage, error) {
	if !gjson.ValidBytes(body) {
		return nil, "", proxy.Usage{}, apierr.New(http.StatusBadGateway, apierr.Upstream, "bad_upstream_response",
			"the upstream answered with a body that is not JSON")
	}
	root := gjson.ParseBytes(body)
	if e := root.Get("error"); e.Exists() && !root.Get("choices").Exists() {
		return nil, "", proxy.Usage{}, apierr.New(http.StatusBadGateway, apierr.Upstream, "upstream_error",
			upstreamMessage(http.StatusBadGateway, body))
	}
	u := chatUsage(root.Get("usage"))
	choice := root.Get("choices.0")
	msg := choice.Get("message")

	out := make([]byte, 0, len(body)+128)
	out = append(out, `{"id":`...)
	out = appendString(out, messageID(root.Get("id").Str))
	out = append(out, `,"type":"message","role":"assistant","model":`...)
	out = appendString(out, c.model)
	out = append(out, `,"content":[`...)
	n := 0
	sep := func() {
		if n > 0 {
			out = append(out, ',')
		}
		n++
	}
	if r := reasoning(msg); r.Str != "" {
		sep()
		out = append(out, `{"type":"thinking","thinking":`...)
		out = append(out, r.Raw...)
		out = append(out, `,"signature":""}`...)
	}
	if t := msg.Get("content"); t.Type == gjson.String && t.Str != "" {
		sep()
		out = append(out, `{"type":"text","text":`...)
		out = append(out, t.Raw...)
		out = append(out, '}')
	}
	calls := 0
	msg.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
		sep()
		id := tc.Get("id").Str
		if id == "" {
			id = "toolu_" + strconv.Itoa(calls)
		}
		calls++
		out = append(out, `{"type":"tool_use","id":`...)
		out = appendString(out, id)
		out = append(out, `,"name":`...)
		out = appendString(out, c.names.client(tc.Get("function.name").Str))
		out = append(out, `,"input":`...)
		in, ok := toolArgs(tc.Get("function.arguments").Str)
		if !ok {
			c.log.Debug("anthropic: upstream tool arguments are not a JSON object; sent {}")
		}
		out = append(out, in...)
		out = append(out, '}')
		return true
	})
	out = append(out, `],"stop_reason":"`...)
	stop := stopReason(choice.Get("finish_reason").Str, calls > 0)
	seq := stopSequence(choice)
	if seq != "" && stop == "end_turn" {
		stop = "stop_sequence"
	}
	out = append(out, stop...)
	out = append(out, `","stop_sequence":`...)
	if stop == "stop_sequence" {
		out = appendString(out, seq)
	} else {
		out = append(out, "null"...)
	}
	out = append(out, `,"usage":`...)
	out = appendUsage(out, u)
	return append(out, '}'), "application/json", u, nil
}

// reasoning is the reasoning text of a message or delta: DeepSeek and vLLM
// call it reasoning_content, OpenRouter and Ollama reasoning.
func reasoning(v gjson.Result) gjson.Result {
	if r := v.Get("reasoning_content"); r.Type == gjson.String && r.Str != "" {
		return r
	}
	if r := v.Get("reasoning"); r.Type == gjson.String {
		return r
	}
	return gjson.Result{}
}
