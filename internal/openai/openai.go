// Package openai holds the small part of the OpenAI wire protocol the gateway
// touches: the request head it reads (model, stream, stream_options, user), the
// usage it meters, and the error envelope every gateway error is written in.
//
// Everything else in a request or response passes through as bytes.
package openai

import (
	"bytes"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Head is what the gateway reads from a request body.
type Head struct {
	Model        string
	Stream       bool
	IncludeUsage bool // stream_options.include_usage was true
	User         string
	HasMessages  bool  // "messages" is a non-empty array
	MaxTokens    int64 // max_completion_tokens or max_tokens, 0 when absent
	N            int64 // choices asked for ("n"), 0 when absent
}

// ParseHead reads the request head from a JSON body with a partial parser:
// one pass over the top-level members, skipping over values it does not need
// (so a 200 KB prompt costs one scan, not one per field). It reports ok=false
// when the body is not a valid JSON object.
func ParseHead(body []byte) (h Head, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !gjson.ValidBytes(body) {
		return Head{}, false
	}
	// The string aliases body only while parsing; kept values are cloned.
	gjson.Parse(unsafe.String(&body[0], len(body))).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			h.Model = strings.Clone(v.String())
		case "stream":
			h.Stream = v.Bool()
		case "stream_options":
			h.IncludeUsage = v.Get("include_usage").Bool()
		case "user":
			h.User = strings.Clone(v.String())
		case "messages":
			h.HasMessages = nonEmptyArray(v)
		case "max_completion_tokens":
			h.MaxTokens = v.Int()
		case "max_tokens":
			if h.MaxTokens == 0 {
				h.MaxTokens = v.Int()
			}
		case "n":
			h.N = v.Int()
		}
		return true
	})
	return h, true
}

// nonEmptyArray reports whether v is an array with at least one element,
// without materialising the elements.
func nonEmptyArray(v gjson.Result) bool {
	if !v.IsArray() {
		return false
	}
	inner := strings.TrimSpace(v.Raw[1:])
	return inner != "" && inner[0] != ']'
}

// SetModel returns body with "model" set to model.
func SetModel(body []byte, model string) ([]byte, error) {
	return sjson.SetBytes(body, "model", model)
}

// SetIncludeUsage returns body with stream_options.include_usage set to true,
// so a stream ends with a usage chunk the gateway can meter.
func SetIncludeUsage(body []byte) ([]byte, error) {
	return sjson.SetBytes(body, "stream_options.include_usage", true)
}

// Usage is token usage as reported by an upstream, normalised: cached and
// reasoning tokens are parts of prompt and completion tokens respectively.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	CachedTokens     int64 // cache reads, part of PromptTokens
	CacheWriteTokens int64 // cache writes, part of PromptTokens
	ReasoningTokens  int64
}

// Known reports whether any token count was reported.
func (u Usage) Known() bool { return u.PromptTokens > 0 || u.CompletionTokens > 0 || u.TotalTokens > 0 }

// ParseUsage reads the "usage" object of a response or chunk. Providers name
// cached tokens differently; all known spellings are folded into CachedTokens.
func ParseUsage(u gjson.Result) Usage {
	if !u.IsObject() {
		return Usage{}
	}
	var out Usage
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "prompt_tokens", "input_tokens":
			out.PromptTokens = v.Int()
		case "completion_tokens", "output_tokens":
			out.CompletionTokens = v.Int()
		case "total_tokens":
			out.TotalTokens = v.Int()
		case "prompt_tokens_details", "input_tokens_details":
			if c := v.Get("cached_tokens"); c.Exists() {
				out.CachedTokens = c.Int()
			}
			if c := v.Get("cache_write_tokens"); c.Exists() { // OpenRouter
				out.CacheWriteTokens = c.Int()
			}
		case "cache_creation_input_tokens": // Anthropic-style counts on an OpenAI response
			if out.CacheWriteTokens == 0 {
				out.CacheWriteTokens = v.Int()
			}
		case "prompt_cache_hit_tokens": // DeepSeek
			if out.CachedTokens == 0 {
				out.CachedTokens = v.Int()
			}
		case "completion_tokens_details", "output_tokens_details":
			out.ReasoningTokens = v.Get("reasoning_tokens").Int()
		}
		return true
	})
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out
}

// UsageFromBody finds the "usage" object of a complete JSON response.
func UsageFromBody(body []byte) Usage {
	return ParseUsage(gjson.GetBytes(body, "usage"))
}

// UsageFromTail finds the last "usage" object in the tail of a response body
// that may have been cut at the front. OpenAI puts usage last, so keeping a
// bounded tail while streaming a large body through is enough to meter it.
func UsageFromTail(tail []byte) Usage {
	i := bytes.LastIndex(tail, []byte(`"usage"`))
	if i < 0 {
		return Usage{}
	}
	// `{` + `"usage":{...}, ...}` is a JSON object whose first member is usage.
	obj := make([]byte, 0, len(tail)-i+1)
	obj = append(obj, '{')
	obj = append(obj, tail[i:]...)
	return ParseUsage(gjson.GetBytes(obj, "usage"))
}
