package anthropic

import (
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

// Content block kinds of the translated stream.
const (
	blockNone = iota
	blockText
	blockThinking
	blockTool
)

// toolBlock is one streamed tool call: the upstream's tool_calls index and
// the content block it became.
type toolBlock struct {
	index int64 // tool_calls[].index upstream
	block int   // content block index
}

// chatStream translates a chat.completion.chunk stream into Messages events.
//
// The shape it guarantees, whatever the upstream sends: message_start first;
// content blocks opened and closed one at a time, numbered from 0;
// message_delta (stop reason and usage) only once the upstream's usage chunk
// arrived, which comes after the finish_reason, or at the end of the stream;
// then message_stop. A stream that breaks ends with an error event instead.
type chatStream struct {
	r *chatReply

	started  bool // message_start was sent
	ended    bool // message_stop or an error event was sent
	done     bool // the upstream sent [DONE]
	finished bool // a finish_reason arrived
	counted  bool // a usage object arrived

	kind   int // the open block's kind, blockNone when none is open
	open   int // the open block's index
	blocks int // blocks started so far
	tools  []toolBlock

	stop    string // Anthropic stop_reason
	stopSeq string
	u       proxy.Usage
	content []byte
}

func newChatStream(r *chatReply) *chatStream {
	return &chatStream{r: r}
}

func (s *chatStream) Usage() proxy.Usage { return s.u }

func (s *chatStream) Content() []byte { return s.content }

func (s *chatStream) keep(text string) {
	if n := maxContent - len(s.content); n > 0 {
		s.content = append(s.content, text[:min(n, len(text))]...)
	}
}

// Event translates one upstream event.
func (s *chatStream) Event(dst []byte, ev sse.Event) ([]byte, error) {
	if s.ended {
		return dst, nil
	}
	if !ev.Dispatch {
		if s.started {
			// Keep the client's idle timer alive while the upstream is.
			dst = append(dst, "event: ping\ndata: {\"type\": \"ping\"}\n\n"...)
		}
		return dst, nil
	}
	if string(ev.Data) == "[DONE]" {
		s.done = true
		return s.finish(dst), nil
	}
	if !gjson.ValidBytes(ev.Data) {
		return dst, nil // not a chunk: nothing a client could use
	}
	root := gjson.ParseBytes(ev.Data)
	if e := root.Get("error"); e.Exists() {
		s.ended = true
		msg := upstreamMessage(0, ev.Data)
		typ := typeAPI
		if overloaded(500, ev.Data) {
			typ = typeOverloaded
		}
		return appendErrorEvent(dst, typ, msg), nil
	}
	if !s.started {
		dst = s.start(dst, root.Get("id").Str)
	}
	if u := root.Get("usage"); u.IsObject() {
		s.u, s.counted = chatUsage(u), true
	}
	root.Get("choices").ForEach(func(_, c gjson.Result) bool {
		if c.Get("index").Int() == 0 {
			dst = s.choice(dst, c)
		}
		return true
	})
	if s.finished && s.counted {
		dst = s.finish(dst)
	}
	return dst, nil
}

// start appends message_start.
func (s *chatStream) start(dst []byte, id string) []byte {
	s.started = true
	dst = append(dst, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
	dst = appendString(dst, messageID(id))
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendString(dst, s.r.model)
	dst = append(dst, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	dst = appendUsage(dst, proxy.Usage{})
	return append(dst, "}}\n\n"...)
}

// choice translates the delta and finish_reason of choice 0.
func (s *chatStream) choice(dst []byte, c gjson.Result) []byte {
	if s.finished {
		return dst // only the usage chunk is still awaited
	}
	d := c.Get("delta")
	if r := reasoning(d); r.Str != "" {
		dst = s.ensure(dst, blockThinking)
		dst = s.delta(dst, s.open, `{"type":"thinking_delta","thinking":`, r.Raw)
		s.keep(r.Str)
	}
	if t := d.Get("content"); t.Type == gjson.String && t.Str != "" {
		dst = s.ensure(dst, blockText)
		dst = s.delta(dst, s.open, `{"type":"text_delta","text":`, t.Raw)
		s.keep(t.Str)
	}
	d.Get("tool_calls").ForEach(func(k, tc gjson.Result) bool {
		dst = s.toolCall(dst, k.Int(), tc)
		return true
	})
	if f := c.Get("finish_reason"); f.Type == gjson.String && f.Str != "" {
		s.finished = true
		s.stop = stopReason(f.Str, len(s.tools) > 0)
		if seq := stopSequence(c); seq != "" && s.stop == "end_turn" {
			s.stop, s.stopSeq = "stop_sequence", seq
		}
		dst = s.close(dst)
	}
	return dst
}

// toolCall translates one tool_calls entry; pos is its array position, the
// index when the upstream gives none.
func (s *chatStream) toolCall(dst []byte, pos int64, tc gjson.Result) []byte {
	idx := pos
	if v := tc.Get("index"); v.Type == gjson.Number {
		idx = v.Int()
	}
	block := -1
	for _, t := range s.tools {
		if t.index == idx {
			block = t.block
			break
		}
	}
	if block < 0 {
		dst = s.close(dst)
		block = s.blocks
		s.blocks++
		s.kind, s.open = blockTool, block
		s.tools = append(s.tools, toolBlock{index: idx, block: block})
		id := tc.Get("id").Str
		if id == "" {
			id = "toolu_" + strconv.Itoa(block)
		}
		dst = append(dst, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
		dst = strconv.AppendInt(dst, int64(block), 10)
		dst = append(dst, `,"content_block":{"type":"tool_use","id":`...)
		dst = appendString(dst, id)
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, s.r.names.client(tc.Get("function.name").Str))
		dst = append(dst, `,"input":{}}}`+"\n\n"...)
	}
	// A delta for a call whose block was closed (an upstream interleaving
	// calls) still goes to that call's index: dropping arguments is worse.
	if a := tc.Get("function.arguments"); a.Type == gjson.String && a.Str != "" {
		dst = s.delta(dst, block, `{"type":"input_json_delta","partial_json":`, a.Raw)
		s.keep(a.Str)
	}
	return dst
}

// ensure opens a block of kind unless one is open, closing another kind.
func (s *chatStream) ensure(dst []byte, kind int) []byte {
	if s.kind == kind {
		return dst
	}
	dst = s.close(dst)
	s.kind, s.open = kind, s.blocks
	s.blocks++
	dst = append(dst, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(s.open), 10)
	if kind == blockThinking {
		dst = append(dst, `,"content_block":{"type":"thinking","thinking":"","signature":""}}`+"\n\n"...)
	} else {
		dst = append(dst, `,"content_block":{"type":"text","text":""}}`+"\n\n"...)
	}
	return dst
}

// delta appends a content_block_delta; head opens the delta object and raw
// is the JSON string that completes it.
func (s *chatStream) delta(dst []byte, index int, head, raw string) []byte {
	dst = append(dst, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	dst = append(dst, `,"delta":`...)
	dst = append(dst, head...)
	dst = append(dst, raw...)
	return append(dst, "}}\n\n"...)
}

// close appends content_block_stop for the open block, if any.
func (s *chatStream) close(dst []byte) []byte {
	if s.kind == blockNone {
		return dst
	}
	if s.kind == blockThinking {
		// Anthropic ends a thinking block with its signature; a translated
		// one has none to give.
		dst = s.delta(dst, s.open, `{"type":"signature_delta","signature":`, `""`)
	}
	s.kind = blockNone
	dst = append(dst, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(s.open), 10)
	return append(dst, "}\n\n"...)
}

// finish appends message_delta and message_stop.
func (s *chatStream) finish(dst []byte) []byte {
	if s.ended {
		return dst
	}
	if !s.started {
		dst = s.start(dst, "")
	}
	dst = s.close(dst)
	s.ended = true
	stop := s.stop
	if stop == "" {
		stop = stopReason("", len(s.tools) > 0)
	}
	dst = append(dst, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""...)
	dst = append(dst, stop...)
	dst = append(dst, `","stop_sequence":`...)
	if s.stopSeq != "" {
		dst = appendString(dst, s.stopSeq)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `},"usage":`...)
	dst = appendUsage(dst, s.u)
	dst = append(dst, "}\n\n"...)
	return append(dst, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

// End closes the stream: with message_delta and message_stop when the
// upstream finished, with an error event when it broke or stopped short.
func (s *chatStream) End(dst []byte, fail *apierr.Error) []byte {
	if s.ended {
		return dst
	}
	if fail == nil && (s.finished || s.done) {
		return s.finish(dst)
	}
	s.ended = true
	if fail == nil {
		return appendErrorEvent(dst, typeAPI, "the upstream stream ended before it finished")
	}
	return failEvent(dst, fail)
}
