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
	tokensMessage  = 5    // role and turn framing per message
	tokensBase     = 8    // the request's own framing
	tokensTools    = 400  // the tool-use system prompt Anthropic adds when tools are present (~350)
	tokensPerTool  = 12   // per tool definition framing
	tokensPerImage = 1600 // the most an image costs after Anthropic's resizing (1.15 MP / 750)
)

// textTokens estimates the tokens of s the way BPE tokenizers cut text,
// erring high. In tenths of a token:
//   - a run of letters: one token per 4, plus one for a case change inside
//     (camelCase); a run mixing letters and digits or changing case more than
//     twice (hashes, base64, ids): one per 1.33 characters; digits: one per 2;
//   - a single space is free (it joins the next word), longer runs one per 3;
//     each tab or line break is one;
//   - punctuation runs: one per 1.5 characters;
//   - each non-ASCII character 1.2 (CJK is about one token per character in
//     every tokenizer measured).
func textTokens(s string) int64 {
	var t10 int64 // tenths of a token
	for i := 0; i < len(s); {
		c := s[i]
		j := i + 1
		switch {
		case isAlnum(c):
			digits, changes := int64(0), int64(0)
			if isDigit(c) {
				digits++
			}
			for ; j < len(s) && isAlnum(s[j]); j++ {
				if isDigit(s[j]) {
					digits++
				}
				if isUpper(s[j]) != isUpper(s[j-1]) {
					changes++
				}
			}
			n := int64(j - i)
			switch {
			case digits == n:
				t10 += ceilDiv(n, 2) * 10
			case digits > 0 || changes > 2:
				t10 += ceilDiv(3*n, 4) * 10
			default:
				t10 += ceilDiv(n, 4) * 10
				if changes > 0 {
					t10 += 10
				}
			}
		case c == ' ':
			for j < len(s) && s[j] == ' ' {
				j++
			}
			if n := int64(j - i); n > 1 {
				t10 += ceilDiv(n, 3) * 10
			}
		case c == '\t' || c == '\n' || c == '\r':
			t10 += 10
		case c < utf8.RuneSelf:
			for j < len(s) && s[j] < utf8.RuneSelf && !isAlnum(s[j]) && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' && s[j] != '\r' {
				j++
			}
			t10 += ceilDiv(2*int64(j-i), 3) * 10
		default:
			_, n := utf8.DecodeRuneInString(s[i:])
			j = i + n
			t10 += 12
		}
		i = j
	}
	return ceilDiv(t10, 10)
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isUpper(c byte) bool      { return c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool      { return isDigit(c) || isUpper(c) || c >= 'a' && c <= 'z' }
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

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
