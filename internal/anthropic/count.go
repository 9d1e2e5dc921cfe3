package anthropic

import (
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// The local token count answers count_tokens for upstreams that do not speak
// Anthropic. An under-count makes Claude Code overflow the context window
// instead of compacting it, so every rule errs high; docs/anthropic.md has
// the measured error against real tokenizers.
const (
	bytesPerToken  = 3    // ASCII bytes per token; real tokenizers average 3.5-4.5 on prose and code
	tokensMessage  = 5    // role and turn framing per message
	tokensBase     = 8    // the request's own framing
	tokensTools    = 400  // the tool-use system prompt Anthropic adds when tools are present (~350)
	tokensPerTool  = 12   // per tool definition framing
	tokensPerImage = 1600 // the most an image costs after Anthropic's resizing (1.15 MP / 750)
)

// textTokens estimates the tokens of s: ASCII bytes / 3, rounded up, and one
// token per non-ASCII character (CJK text is about one token per character
// in every tokenizer we measured, often less).
func textTokens(s string) int64 {
	var ascii, other int64
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		other++
		i += n
	}
	return (ascii+bytesPerToken-1)/bytesPerToken + other
}

// CountTokens estimates the input tokens of a Messages request body,
// conservatively (see the constants above).
func CountTokens(body []byte) int64 {
	root := gjson.ParseBytes(body)
	n := int64(tokensBase)
	if s := root.Get("system"); s.Exists() {
		n += tokensMessage + contentTokens(s)
	}
	root.Get("messages").ForEach(func(_, m gjson.Result) bool {
		n += tokensMessage + contentTokens(m.Get("content"))
		return true
	})
	tools := root.Get("tools")
	if tools.IsArray() && tools.Get("#").Int() > 0 {
		n += tokensTools
		tools.ForEach(func(_, t gjson.Result) bool {
			n += tokensPerTool + textTokens(t.Get("name").Str) + textTokens(t.Get("description").Str) +
				textTokens(t.Get("input_schema").Raw)
			return true
		})
	}
	return n
}

// contentTokens counts a string or an array of content blocks.
func contentTokens(c gjson.Result) int64 {
	if c.Type == gjson.String {
		return textTokens(c.Str)
	}
	var n int64
	c.ForEach(func(_, b gjson.Result) bool {
		n += blockTokens(b)
		return true
	})
	return n
}

func blockTokens(b gjson.Result) int64 {
	switch b.Get("type").Str {
	case "text":
		return textTokens(b.Get("text").Str)
	case "image":
		return tokensPerImage
	case "tool_use", "server_tool_use":
		return tokensMessage + textTokens(b.Get("name").Str) + textTokens(b.Get("input").Raw)
	case "tool_result":
		return tokensMessage + contentTokens(b.Get("content"))
	case "thinking":
		return textTokens(b.Get("thinking").Str)
	case "document":
		// Text documents count as text; a PDF's base64 counted as text is far
		// above what its pages cost.
		return tokensMessage + textTokens(b.Get("source.data").Str) + textTokens(b.Get("source.url").Str)
	}
	return textTokens(b.Raw)
}

// countBody is count_tokens' answer.
func countBody(n int64) []byte {
	b := append(make([]byte, 0, 32), `{"input_tokens":`...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, '}')
}
