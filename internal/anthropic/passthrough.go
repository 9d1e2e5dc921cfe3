package anthropic

import (
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

// maxContent bounds the generated text a stream keeps for usage estimation.
const maxContent = 64 << 10

// usage is Anthropic's usage object. Anthropic's input_tokens excludes cache
// reads and writes; the gateway's convention (proxy.Usage) includes them.
type usage struct {
	input, cacheRead, cacheWrite, output int64
}

// merge takes every count u reports: message_start carries the input side,
// message_delta the output (and, in newer APIs, the input side again).
func (u *usage) merge(v gjson.Result) {
	if !v.IsObject() {
		return
	}
	v.ForEach(func(k, x gjson.Result) bool {
		if x.Type != gjson.Number {
			return true
		}
		switch k.Str {
		case "input_tokens":
			u.input = x.Int()
		case "cache_read_input_tokens":
			u.cacheRead = x.Int()
		case "cache_creation_input_tokens":
			u.cacheWrite = x.Int()
		case "output_tokens":
			u.output = x.Int()
		}
		return true
	})
}

func (u usage) proxy() proxy.Usage {
	return proxy.Usage{
		Prompt:     u.input + u.cacheRead + u.cacheWrite,
		Cached:     u.cacheRead,
		CacheWrite: u.cacheWrite,
		Completion: u.output,
	}
}

// passReply passes an Anthropic upstream's answer through unchanged.
type passReply struct {
	count bool // count_tokens: no usage to read
}

func (p *passReply) Error(status int, h http.Header, body []byte) (int, []byte, string) {
	return passError(status, h, body)
}

func (p *passReply) Stream() proxy.Stream { return &passStream{} }

func (p *passReply) Whole() bool { return true }

func (p *passReply) Body(body []byte) ([]byte, string, proxy.Usage, error) {
	if p.count {
		return body, "application/json", proxy.Usage{}, nil
	}
	var u usage
	u.merge(gjson.GetBytes(body, "usage"))
	return body, "application/json", u.proxy(), nil
}

func (p *passReply) Tail(tail []byte) (proxy.Usage, []byte) {
	return proxy.Usage{}, tail
}

// passStream forwards an Anthropic event stream byte for byte and reads its
// usage and text on the way past.
type passStream struct {
	u       usage
	content []byte
	errored bool // the upstream sent an error event
	stopped bool // message_stop was seen
}

func (s *passStream) Event(dst []byte, ev sse.Event) ([]byte, error) {
	dst = append(dst, ev.Raw...)
	if !ev.Dispatch {
		return dst, nil
	}
	typ := ev.Event
	if typ == "" {
		typ = gjson.GetBytes(ev.Data, "type").Str
	}
	switch typ {
	case "message_start":
		s.u.merge(gjson.GetBytes(ev.Data, "message.usage"))
	case "message_delta":
		s.u.merge(gjson.GetBytes(ev.Data, "usage"))
	case "content_block_delta":
		if len(s.content) < maxContent {
			d := gjson.GetBytes(ev.Data, "delta")
			for _, f := range [...]string{"text", "partial_json", "thinking"} {
				if v := d.Get(f); v.Type == gjson.String {
					s.content = append(s.content, v.Str...)
				}
			}
		}
	case "message_stop":
		s.stopped = true
	case "error":
		s.errored = true
	}
	return dst, nil
}

func (s *passStream) End(dst []byte, fail *apierr.Error) []byte {
	if s.stopped || s.errored {
		return dst
	}
	if fail == nil {
		// A clean end without message_stop is a stream cut short.
		return appendErrorEvent(dst, typeAPI, "the upstream stream ended before message_stop")
	}
	return failEvent(dst, fail)
}

func (s *passStream) Usage() proxy.Usage { return s.u.proxy() }

func (s *passStream) Content() []byte { return s.content }
