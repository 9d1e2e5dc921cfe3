package fakeupstream

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// The OpenAI Responses API of the fake, so a gateway's passthrough to an
// upstream with `responses: native` is tested over real HTTP:
//
//	POST .../responses   a Response (Options.NativeResponses), or its event stream
//
// Replies follow the rules of chat completions: "echo: " and the last user
// text, or, when function tools are offered (and tool_choice is not none),
// the last input item is no function_call_output and no X-Fake-Reply: text
// asks otherwise, a function_call of the first function tool with arguments
// {"input": <user text>}. Usage: input_tokens is bytes/4 of input and
// instructions (the same streamed or not); with prompt_cache_key half of them
// are reported as cached; with reasoning, half the output tokens as
// reasoning tokens, so every usage field can be checked.

type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Stream          bool            `json:"stream"`
	MaxOutputTokens int             `json:"max_output_tokens"`
	PromptCacheKey  string          `json:"prompt_cache_key"`
	Reasoning       json.RawMessage `json:"reasoning"`
	Tools           []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
}

// responsesUsage is a Response's usage.
type responsesUsage struct{ input, cached, output, reasoning int }

// responsesReply is what a Response answers.
type responsesReply struct {
	*reply
	status string // completed or incomplete
	usage  responsesUsage
}

// lastUserText returns the text of the last user message of a Responses
// input (a string or a list of items), and whether the last item is a
// function call's output.
func lastUserText(raw json.RawMessage) (string, bool) {
	in := gjson.ParseBytes(raw)
	if in.Type == gjson.String {
		return in.Str, false
	}
	user, afterTool := "", false
	in.ForEach(func(_, it gjson.Result) bool {
		typ := it.Get("type").Str
		afterTool = typ == "function_call_output"
		if (typ == "" || typ == "message") && it.Get("role").Str == "user" {
			user = messageText(json.RawMessage(it.Get("content").Raw))
		}
		return true
	})
	return user, afterTool
}

// responses answers POST .../responses. Without Options.NativeResponses a
// non-streamed request is echoed like any unknown path, so a gateway's
// verbatim forwarding can be seen; streams always get Responses events.
func (s *Server) responses(c *call) {
	if !s.opts.NativeResponses && !gjson.GetBytes(c.body, "stream").Bool() {
		s.echo(c)
		return
	}
	var req responsesRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		c.badJSON(err)
		return
	}
	if !c.checkModel(req.Model) {
		return
	}
	user, afterTool := lastUserText(req.Input)
	fn := ""
	for _, t := range req.Tools {
		if t.Type == "function" {
			fn = t.Name
			break
		}
	}
	id := strconv.FormatUint(c.id, 10)
	rp := &responsesReply{reply: &reply{id: "resp_fake_" + id, model: req.Model, created: time.Now().Unix()}, status: "completed"}
	if c.wantsTool(fn != "" && string(req.ToolChoice) != `"none"` && !afterTool) {
		rp.toolID, rp.toolName = "call_fake_"+id, fn
		args := appendString([]byte(`{"input":`), truncate(user, maxEcho))
		rp.pieces = splitEven(string(append(args, '}')), c.chunks)
	} else {
		rp.pieces = splitWords(echoText(user), c.chunks)
		if limit := req.MaxOutputTokens; limit > 0 && limit < len(rp.pieces) {
			rp.pieces, rp.status = rp.pieces[:limit], "incomplete"
		}
	}
	r := gjson.GetManyBytes(c.body, "input", "instructions")
	rp.usage = responsesUsage{input: promptTokens(len(r[0].Raw) + len(r[1].Raw)), output: len(rp.pieces)}
	if req.PromptCacheKey != "" {
		rp.usage.cached = rp.usage.input / 2
	}
	if len(req.Reasoning) > 0 && string(req.Reasoning) != "null" {
		rp.usage.reasoning = rp.usage.output / 2
	}
	if req.Stream {
		c.streamResponse(rp)
		return
	}
	c.writeBody(http.StatusOK, responseJSON(nil, rp, true))
}

// itemID is the id of the reply's one output item.
func (rp *responsesReply) itemID() string {
	if rp.toolID != "" {
		return "fc_fake_" + rp.id[len("resp_fake_"):]
	}
	return "msg_fake_" + rp.id[len("resp_fake_"):]
}

// appendItem appends the output item, complete or (done false) as it is
// announced before its deltas.
func appendItem(b []byte, rp *responsesReply, done bool) []byte {
	status, text := "in_progress", ""
	if done {
		status, text = rp.status, rp.text()
	}
	b = append(b, `{"id":`...)
	b = appendString(b, rp.itemID())
	if rp.toolID != "" {
		b = append(b, `,"type":"function_call","status":"`...)
		b = append(b, status...)
		b = append(b, `","call_id":`...)
		b = appendString(b, rp.toolID)
		b = append(b, `,"name":`...)
		b = appendString(b, rp.toolName)
		b = append(b, `,"arguments":`...)
		return append(appendString(b, text), '}')
	}
	b = append(b, `,"type":"message","status":"`...)
	b = append(b, status...)
	b = append(b, `","role":"assistant","content":[`...)
	if done {
		b = appendTextPart(b, text)
	}
	return append(b, "]}"...)
}

func appendTextPart(b []byte, text string) []byte {
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":`...)
	return append(appendString(b, text), '}')
}

// responseJSON appends the Response object; final carries the output and
// the usage, else it is the in-progress Response of response.created.
func responseJSON(b []byte, rp *responsesReply, final bool) []byte {
	status := "in_progress"
	if final {
		status = rp.status
	}
	b = append(b, `{"id":`...)
	b = appendString(b, rp.id)
	b = append(b, `,"object":"response","created_at":`...)
	b = strconv.AppendInt(b, rp.created, 10)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, `","error":null,"incomplete_details":`...)
	if final && rp.status == "incomplete" {
		b = append(b, `{"reason":"max_output_tokens"}`...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"model":`...)
	b = appendString(b, rp.model)
	b = append(b, `,"output":[`...)
	if !final {
		return append(b, `],"store":false,"usage":null}`...)
	}
	b = appendItem(b, rp, true)
	u := rp.usage
	b = append(b, `],"store":false,"usage":{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.input), 10)
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(u.cached), 10)
	b = append(b, `},"output_tokens":`...)
	b = strconv.AppendInt(b, int64(u.output), 10)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, int64(u.reasoning), 10)
	b = append(b, `},"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.input+u.output), 10)
	return append(b, "}}"...)
}

// streamResponse sends the events OpenAI sends for one output item:
// response.created, .in_progress, output_item.added, the content part or
// argument events, output_item.done, and response.completed (or
// .incomplete) with the usage.
func (c *call) streamResponse(rp *responsesReply) {
	st := c.startStream()
	seq := 0
	event := func(typ string) []byte {
		b := append(st.named(typ), `{"type":"`...)
		b = append(b, typ...)
		b = append(b, `","sequence_number":`...)
		b = strconv.AppendInt(b, int64(seq), 10)
		seq++
		return b
	}
	itemEvent := func(typ string) []byte {
		b := append(event(typ), `,"output_index":0,"item_id":`...)
		return appendString(b, rp.itemID())
	}
	ok := st.send(append(responseJSON(append(event("response.created"), `,"response":`...), rp, false), '}')) &&
		st.send(append(responseJSON(append(event("response.in_progress"), `,"response":`...), rp, false), '}')) &&
		st.send(append(appendItem(append(event("response.output_item.added"), `,"output_index":0,"item":`...), rp, false), '}'))
	kind := "output_text"
	if rp.toolID != "" {
		kind = "function_call_arguments"
	} else {
		ok = ok && st.send(append(itemEvent("response.content_part.added"), `,"content_index":0,"part":{"type":"output_text","annotations":[],"text":""}}`...))
	}
	for _, p := range rp.pieces {
		b := itemEvent("response." + kind + ".delta")
		if rp.toolID == "" {
			b = append(b, `,"content_index":0`...)
		}
		b = append(b, `,"delta":`...)
		ok = ok && st.send(append(appendString(b, p), '}'))
	}
	if rp.toolID != "" {
		b := append(itemEvent("response.function_call_arguments.done"), `,"arguments":`...)
		ok = ok && st.send(append(appendString(b, rp.text()), '}'))
	} else {
		b := append(itemEvent("response.output_text.done"), `,"content_index":0,"text":`...)
		ok = ok && st.send(append(appendString(b, rp.text()), '}'))
		b = appendTextPart(append(itemEvent("response.content_part.done"), `,"content_index":0,"part":`...), rp.text())
		ok = ok && st.send(append(b, '}'))
	}
	ok = ok && st.send(append(appendItem(append(event("response.output_item.done"), `,"output_index":0,"item":`...), rp, true), '}'))
	if ok {
		b := append(event("response."+rp.status), `,"response":`...)
		st.send(append(responseJSON(b, rp, true), '}'))
	}
}
