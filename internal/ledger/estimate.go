package ledger

import (
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Token estimation for responses whose upstream reported no usage (a stream
// without the usage chunk, a cancelled request). Records carrying estimates
// have Estimated set.
//
// Method: BPE tokenizers of current models average about 4 bytes of
// English/code per token, while each CJK character (Han, kana, Hangul) and
// each emoji usually costs a token of its own. So EstimateTokens counts one
// token per CJK character or pictograph, and ceil(n/4) tokens for the n bytes
// of everything else (Latin, Cyrillic and other scripts, whose 2-byte
// letters come out near two letters per token, close to what tokenizers
// do). Zero-width joiners, variation selectors and skin-tone modifiers inside
// emoji sequences count nothing. Expect ±25% on typical text.

// EstimateTokens estimates how many tokens text is.
func EstimateTokens(text []byte) int64 {
	var tokens, other int64
	for i := 0; i < len(text); {
		if text[i] < utf8.RuneSelf { // ASCII fast path: most prompts are mostly ASCII
			other++
			i++
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		i += size
		switch {
		case r < utf8.RuneSelf:
			other++
		case isJoiner(r):
			// part of an emoji sequence: free
		case isCJK(r) || isPictograph(r):
			tokens++
		default:
			other += int64(size)
		}
	}
	return tokens + (other+3)/4
}

func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) ||
		(r >= 0x3000 && r <= 0x303F) || // CJK punctuation
		(r >= 0xFF00 && r <= 0xFFEF) // full-width forms
}

func isPictograph(r rune) bool {
	return (r >= 0x1F000 && r <= 0x1FAFF) || (r >= 0x2600 && r <= 0x27BF)
}

func isJoiner(r rune) bool {
	return r == 0x200D || (r >= 0xFE00 && r <= 0xFE0F) || (r >= 0x1F3FB && r <= 0x1F3FF)
}

// EstimatePromptTokens estimates the prompt of an OpenAI chat or completion
// request body: the text of every message (string content or the "text" of
// content parts) plus the usual overhead of 4 tokens per message and 3 for
// the reply primer; for bodies with "prompt" or "input" instead, their text.
func EstimatePromptTokens(body []byte) int64 {
	var n int64
	msgs := gjson.GetBytes(body, "messages")
	if msgs.IsArray() {
		msgs.ForEach(func(_, m gjson.Result) bool {
			n += 4 + estimateValue(m.Get("content"))
			if name := m.Get("name"); name.Exists() {
				n += EstimateTokens([]byte(name.String()))
			}
			return true
		})
		return n + 3
	}
	for _, field := range []string{"prompt", "input"} {
		if v := gjson.GetBytes(body, field); v.Exists() {
			n += estimateValue(v)
		}
	}
	return n
}

// estimateValue counts a string, an array of strings, or an array of content
// parts ({"type":"text","text":...}); other parts (images, audio) count 0.
func estimateValue(v gjson.Result) int64 {
	switch {
	case v.Type == gjson.String:
		return EstimateTokens([]byte(v.String()))
	case v.IsArray():
		var n int64
		v.ForEach(func(_, p gjson.Result) bool {
			if p.Type == gjson.String {
				n += EstimateTokens([]byte(p.String()))
			} else if t := p.Get("text"); t.Exists() {
				n += EstimateTokens([]byte(t.String()))
			}
			return true
		})
		return n
	}
	return 0
}
