package responses

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

// bridge turns a chat completions stream into a Responses event stream.
//
// It keeps only what the final events must repeat: each output item's text or
// arguments, bounded in total by limit; a stream that would exceed it ends
// with response.failed (code output_too_large) instead of growing without end.
//
// Items are emitted one after another, as the Responses API does: a delta for
// another item closes the open one. A tool call the upstream returns to after
// another one started (interleaved parallel calls) cannot be reopened; its
// late fragments are dropped and logged.
type bridge struct {
	meta
	names *toolNames
	log   *slog.Logger
	limit int
	now   func() time.Time

	seq     int64
	started bool // response.created and .in_progress were sent
	done    bool // a terminal event was sent
	sawDone bool // the upstream sent [DONE]
	items   []item
	open    int // index of the item receiving deltas, -1 when none
	calls   []callSlot
	kept    int
	finish  string // the upstream's finish_reason
	usage   proxy.Usage
	failed  *outcome // set by an upstream error chunk or the memory bound
}

// callSlot maps a chat tool_calls index to its output item.
type callSlot struct {
	index int64
	pos   int
}

var _ proxy.Stream = (*bridge)(nil)

// Event translates one upstream chunk.
func (b *bridge) Event(dst []byte, ev sse.Event) ([]byte, error) {
	if b.done {
		return dst, nil
	}
	if !ev.Dispatch {
		// Keep-alive comments keep the client's idle timers (Codex has one)
		// quiet while a slow upstream thinks.
		if len(ev.Raw) > 0 && ev.Raw[0] == ':' {
			dst = append(dst, ": keep-alive\n\n"...)
		}
		return dst, nil
	}
	data := bytes.TrimSpace(ev.Data)
	if string(data) == "[DONE]" {
		b.sawDone = true
		return dst, nil
	}
	if len(data) == 0 || data[0] != '{' || !gjson.ValidBytes(data) {
		b.log.Debug("responses bridge: skipped a chunk that is not a JSON object", "bytes", len(data))
		return dst, nil
	}
	dst = b.start(dst)
	// The strings below alias data only for this call; kept text is copied.
	chunk := gjson.Parse(unsafe.String(&data[0], len(data)))
	if e := chunk.Get("error"); e.Exists() && e.Type != gjson.Null {
		b.failed = upstreamFailure(e)
		return b.terminal(dst, nil), nil
	}
	if u := chunk.Get("usage"); u.IsObject() {
		b.usage = toUsage(openai.ParseUsage(u))
	}
	for _, c := range chunk.Get("choices").Array() {
		if c.Get("index").Int() != 0 {
			continue // n > 1 is not asked for; ignore any other choice
		}
		dst = b.choice(dst, c)
		if b.done {
			return dst, nil
		}
	}
	return dst, nil
}

// upstreamFailure reads an error object a chat upstream put in its stream.
func upstreamFailure(e gjson.Result) *outcome {
	msg := e.Get("message").String()
	if msg == "" {
		msg = e.String()
	}
	code := e.Get("code").String()
	if code == "" {
		code = "server_error"
	}
	return &outcome{status: "failed", errCode: strings.Clone(code), errMessage: strings.Clone(msg)}
}

func toUsage(u openai.Usage) proxy.Usage {
	return proxy.Usage{Prompt: u.PromptTokens, Cached: u.CachedTokens, Completion: u.CompletionTokens, Reasoning: u.ReasoningTokens}
}

// choice handles the first choice of a chunk.
func (b *bridge) choice(dst []byte, c gjson.Result) []byte {
	d := c.Get("delta")
	if !d.Exists() {
		d = c.Get("message") // some servers put whole messages in stream chunks
	}
	if s := reasoningText(d); s != "" {
		dst = b.text(dst, kindReasoning, s)
	}
	if s := d.Get("content"); s.Type == gjson.String && s.Str != "" {
		dst = b.text(dst, kindMessage, s.Str)
	}
	if s := d.Get("refusal"); s.Type == gjson.String && s.Str != "" {
		dst = b.text(dst, kindMessage, s.Str)
	}
	for _, tc := range d.Get("tool_calls").Array() {
		if b.done {
			return dst
		}
		dst = b.toolCall(dst, tc)
	}
	if f := c.Get("finish_reason"); f.Type == gjson.String && f.Str != "" {
		b.finish = strings.Clone(f.Str)
	}
	return dst
}

// reasoningText is a delta's reasoning: DeepSeek and vLLM call it
// reasoning_content, OpenRouter and newer vLLM reasoning.
func reasoningText(d gjson.Result) string {
	if s := d.Get("reasoning_content"); s.Type == gjson.String {
		return s.Str
	}
	if s := d.Get("reasoning"); s.Type == gjson.String {
		return s.Str
	}
	return ""
}

// keep accounts for n more retained bytes and reports whether they fit.
func (b *bridge) keep(n int) bool {
	b.kept += n
	return b.kept <= b.limit
}

// overflow ends the stream when the retained output would exceed the bound.
func (b *bridge) overflow(dst []byte) []byte {
	b.failed = &outcome{status: "failed", errCode: "output_too_large",
		errMessage: "the response exceeds the gateway's limit of " + strconv.Itoa(b.limit) + " bytes of output per response"}
	return b.terminal(dst, nil)
}

// text appends a message or reasoning delta.
func (b *bridge) text(dst []byte, kind int, s string) []byte {
	if b.open < 0 || b.items[b.open].kind != kind {
		dst = b.closeOpen(dst, "completed")
		dst = b.add(dst, item{kind: kind, id: b.itemID(kind, len(b.items))})
	}
	if !b.keep(len(s)) {
		return b.overflow(dst)
	}
	it := &b.items[b.open]
	it.text = append(it.text, s...)
	typ := "response.output_text.delta"
	if kind == kindReasoning {
		typ = "response.reasoning_text.delta"
	}
	dst = b.head(dst, typ)
	dst = b.itemRef(dst, b.open, true)
	dst = append(dst, `,"delta":`...)
	dst = appendString(dst, s)
	if kind == kindMessage {
		dst = append(dst, `,"logprobs":[]`...)
	}
	return b.tail(dst)
}

// toolCall handles one element of a delta's tool_calls.
func (b *bridge) toolCall(dst []byte, tc gjson.Result) []byte {
	index := tc.Get("index").Int()
	id := tc.Get("id").String()
	fn := tc.Get("function")
	name := fn.Get("name").String()
	var args string
	switch a := fn.Get("arguments"); a.Type {
	case gjson.String:
		args = a.Str
	case gjson.JSON: // some servers send the arguments as an object
		args = a.Raw
	}
	pos := b.slot(index, id)
	if pos >= 0 && pos != b.open {
		b.log.Debug("responses bridge: dropped a late fragment of a closed tool call", "index", index)
		return dst
	}
	if pos < 0 {
		dst = b.closeOpen(dst, "completed")
		callID := strings.Clone(id)
		if callID == "" {
			callID = "call_" + b.id + "_" + strconv.Itoa(len(b.items))
		}
		dst = b.add(dst, item{kind: kindFunction, callID: callID})
		pos = b.open
		b.calls = append(b.calls, callSlot{index: index, pos: pos})
	}
	if !b.keep(len(name) + len(args)) {
		return b.overflow(dst)
	}
	it := &b.items[pos]
	if !it.added && name != "" {
		it.flat += strings.Clone(name) // name aliases the reader's buffer
	}
	if args == "" {
		return dst
	}
	if !it.added {
		dst = b.announce(dst, pos)
	}
	it = &b.items[pos]
	it.text = append(it.text, args...)
	if it.kind == kindCustom {
		return dst // a custom tool's input is extracted from the whole arguments at the end
	}
	dst = b.head(dst, "response.function_call_arguments.delta")
	dst = b.itemRef(dst, pos, false)
	dst = append(dst, `,"delta":`...)
	dst = appendString(dst, args)
	return b.tail(dst)
}

// slot finds the item of a chat tool call index, or -1. An id different from
// the one the index had starts a new call (some servers send every call at
// index 0).
func (b *bridge) slot(index int64, id string) int {
	for i := len(b.calls) - 1; i >= 0; i-- {
		s := b.calls[i]
		if s.index != index {
			continue
		}
		if id != "" && b.items[s.pos].callID != id {
			return -1
		}
		return s.pos
	}
	return -1
}

// add appends an item and makes it the open one. Messages and reasoning are
// announced at once; a call waits for its name (see announce).
func (b *bridge) add(dst []byte, it item) []byte {
	it.status = "in_progress"
	b.items = append(b.items, it)
	b.open = len(b.items) - 1
	if it.kind == kindFunction {
		return dst
	}
	return b.announce(dst, b.open)
}

// announce sends output_item.added (and content_part.added for text items).
func (b *bridge) announce(dst []byte, pos int) []byte {
	it := &b.items[pos]
	if it.kind == kindFunction {
		it.namespace, it.name, it.kind = b.names.resolve(it.flat)
		it.id = b.itemID(it.kind, pos)
		it.flat = ""
	}
	it.added = true
	dst = b.head(dst, "response.output_item.added")
	dst = append(dst, `,"output_index":`...)
	dst = appendInt(dst, int64(pos))
	dst = append(dst, `,"item":`...)
	dst = appendItem(dst, it)
	dst = b.tail(dst)
	switch it.kind {
	case kindMessage:
		dst = b.head(dst, "response.content_part.added")
		dst = b.itemRef(dst, pos, true)
		dst = append(dst, `,"part":`...)
		dst = appendTextPart(dst, nil)
		dst = b.tail(dst)
	case kindReasoning:
		dst = b.head(dst, "response.content_part.added")
		dst = b.itemRef(dst, pos, true)
		dst = append(dst, `,"part":`...)
		dst = appendReasoningPart(dst, nil)
		dst = b.tail(dst)
	}
	return dst
}

// closeOpen finishes the open item with the given status.
func (b *bridge) closeOpen(dst []byte, status string) []byte {
	if b.open < 0 {
		return dst
	}
	pos := b.open
	b.open = -1
	it := &b.items[pos]
	if !it.added {
		dst = b.announce(dst, pos)
	}
	switch it.kind {
	case kindMessage, kindReasoning:
		doneType, partType := "response.output_text.done", "response.content_part.done"
		if it.kind == kindReasoning {
			doneType = "response.reasoning_text.done"
		}
		dst = b.head(dst, doneType)
		dst = b.itemRef(dst, pos, true)
		dst = append(dst, `,"text":`...)
		dst = appendString(dst, it.text)
		if it.kind == kindMessage {
			dst = append(dst, `,"logprobs":[]`...)
		}
		dst = b.tail(dst)
		dst = b.head(dst, partType)
		dst = b.itemRef(dst, pos, true)
		dst = append(dst, `,"part":`...)
		if it.kind == kindMessage {
			dst = appendTextPart(dst, it.text)
		} else {
			dst = appendReasoningPart(dst, it.text)
		}
		dst = b.tail(dst)
	case kindFunction:
		if len(it.text) == 0 {
			// A call without arguments: send "{}" so that the deltas add
			// up to the arguments and every client can parse them.
			it.text = append(it.text, "{}"...)
			dst = b.head(dst, "response.function_call_arguments.delta")
			dst = b.itemRef(dst, pos, false)
			dst = append(dst, `,"delta":"{}"`...)
			dst = b.tail(dst)
		}
		dst = b.head(dst, "response.function_call_arguments.done")
		dst = b.itemRef(dst, pos, false)
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, it.name)
		dst = append(dst, `,"arguments":`...)
		dst = appendString(dst, it.text)
		dst = b.tail(dst)
	case kindCustom:
		input := customInput(it.text)
		if input != "" {
			dst = b.head(dst, "response.custom_tool_call_input.delta")
			dst = b.itemRef(dst, pos, false)
			dst = append(dst, `,"delta":`...)
			dst = appendString(dst, input)
			dst = b.tail(dst)
		}
		dst = b.head(dst, "response.custom_tool_call_input.done")
		dst = b.itemRef(dst, pos, false)
		dst = append(dst, `,"input":`...)
		dst = appendString(dst, input)
		dst = b.tail(dst)
	}
	it.status = status
	dst = b.head(dst, "response.output_item.done")
	dst = append(dst, `,"output_index":`...)
	dst = appendInt(dst, int64(pos))
	dst = append(dst, `,"item":`...)
	dst = appendItem(dst, it)
	return b.tail(dst)
}

// start sends response.created and response.in_progress once.
func (b *bridge) start(dst []byte) []byte {
	if b.started {
		return dst
	}
	b.started = true
	for _, typ := range [...]string{"response.created", "response.in_progress"} {
		dst = b.head(dst, typ)
		dst = append(dst, `,"response":`...)
		dst = b.appendResponse(dst, nil, nil)
		dst = b.tail(dst)
	}
	return dst
}

// End closes the stream: fail is nil when the upstream ended cleanly.
func (b *bridge) End(dst []byte, fail *apierr.Error) []byte {
	if b.done {
		return dst
	}
	return b.terminal(b.start(dst), fail)
}

// terminal closes the open item and sends the one terminal event.
func (b *bridge) terminal(dst []byte, fail *apierr.Error) []byte {
	out := b.outcome(fail)
	itemStatus := "completed"
	if out.status != "completed" {
		itemStatus = "incomplete"
	}
	dst = b.closeOpen(dst, itemStatus)
	out.usage = &b.usage
	b.done = true
	dst = b.head(dst, "response."+out.status)
	dst = append(dst, `,"response":`...)
	dst = b.appendResponse(dst, b.items, &out)
	return b.tail(dst)
}

// outcome decides how the response ended.
func (b *bridge) outcome(fail *apierr.Error) outcome {
	switch {
	case b.failed != nil:
		return *b.failed
	case fail != nil:
		code := fail.Code
		if code == "" {
			code = "server_error"
		}
		return outcome{status: "failed", errCode: code, errMessage: fail.Message}
	case b.finish == "length":
		return outcome{status: "incomplete", reason: "max_output_tokens"}
	case b.finish == "content_filter":
		return outcome{status: "incomplete", reason: "content_filter"}
	case b.finish == "" && !b.sawDone:
		return outcome{status: "failed", errCode: "server_error",
			errMessage: "the upstream ended the stream before it finished"}
	}
	return outcome{status: "completed", completed: b.now().Unix()}
}

// head starts an SSE event of type typ with its sequence number; the caller
// appends the remaining fields and calls tail.
func (b *bridge) head(dst []byte, typ string) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, typ...)
	dst = append(dst, "\ndata: {\"type\":\""...)
	dst = append(dst, typ...)
	dst = append(dst, `","sequence_number":`...)
	dst = appendInt(dst, b.seq)
	b.seq++
	return dst
}

func (b *bridge) tail(dst []byte) []byte { return append(dst, "}\n\n"...) }

// itemRef appends item_id and output_index (and content_index for parts).
func (b *bridge) itemRef(dst []byte, pos int, part bool) []byte {
	dst = append(dst, `,"item_id":`...)
	dst = appendString(dst, b.items[pos].id)
	dst = append(dst, `,"output_index":`...)
	dst = appendInt(dst, int64(pos))
	if part {
		dst = append(dst, `,"content_index":0`...)
	}
	return dst
}

// itemID names the item at pos of this response.
func (b *bridge) itemID(kind, pos int) string {
	prefix := "msg_"
	switch kind {
	case kindReasoning:
		prefix = "rs_"
	case kindFunction:
		prefix = "fc_"
	case kindCustom:
		prefix = "ctc_"
	}
	return prefix + b.id[len("resp_"):] + "_" + strconv.Itoa(pos)
}

// Usage is the usage the upstream reported so far.
func (b *bridge) Usage() proxy.Usage { return b.usage }

// Content is the text and arguments generated so far (bounded by limit).
func (b *bridge) Content() []byte {
	var out []byte
	for i := range b.items {
		out = append(out, b.items[i].text...)
	}
	return out
}
