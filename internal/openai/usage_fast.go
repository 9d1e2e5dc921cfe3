package openai

// A usage object read without gjson. Every copied-through response is
// metered from its tail; gjson's ForEach built a Result for each member
// (~1 µs a call, ~2% of a non-stream call's CPU at saturation). The fast
// path takes only the usual shape: plain keys, integer token counts, detail
// objects; anything else (escapes, floats, strings, literals where a count
// is read, malformed JSON) reports false and ParseUsage decides, so both
// give the same answer (FuzzParseUsageFast). One difference, on purpose:
// gjson.Parse of the tail took the rest of the body as the object, and its
// ForEach read members past the usage object's end; the fast path stops
// there, as UsageFromBody always did.

// parseUsageFast reads the object at the start of b (after optional
// space) as ParseUsage would; false when it cannot be sure to agree.
func parseUsageFast(b []byte) (Usage, bool) {
	var out Usage
	ok := eachMember(b, func(key, val []byte) bool {
		switch string(key) {
		case "prompt_tokens", "input_tokens":
			return count(val, &out.PromptTokens)
		case "completion_tokens", "output_tokens":
			return count(val, &out.CompletionTokens)
		case "total_tokens":
			return count(val, &out.TotalTokens)
		case "prompt_tokens_details", "input_tokens_details":
			return detail(val, "cached_tokens", &out.CachedTokens) &&
				detail(val, "cache_write_tokens", &out.CacheWriteTokens)
		case "cache_creation_input_tokens":
			if out.CacheWriteTokens == 0 {
				return count(val, &out.CacheWriteTokens)
			}
		case "prompt_cache_hit_tokens":
			if out.CachedTokens == 0 {
				return count(val, &out.CachedTokens)
			}
		case "completion_tokens_details", "output_tokens_details":
			out.ReasoningTokens = 0 // ParseUsage sets it even when absent
			return detail(val, "reasoning_tokens", &out.ReasoningTokens)
		}
		return true
	})
	if !ok {
		return Usage{}, false
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out, true
}

// detail sets *dst from the first member name of obj, an object or null; a
// missing member leaves *dst alone.
func detail(obj []byte, name string, dst *int64) bool {
	if string(obj) == "null" {
		return true
	}
	found := false
	return eachMember(obj, func(key, val []byte) bool {
		if found || string(key) != name {
			return true
		}
		found = true
		return count(val, dst)
	})
}

// count sets *dst from an integer of at most 18 digits.
func count(val []byte, dst *int64) bool {
	neg := len(val) > 0 && val[0] == '-'
	digits := val
	if neg {
		digits = val[1:]
	}
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	*dst = n
	return true
}

// eachMember calls f with each member of the object at the start of b (key
// without quotes, value as its raw bytes), in order, until f returns false.
// It reports false for anything but a well-formed object whose keys have no
// escapes, or when f did.
func eachMember(b []byte, f func(key, val []byte) bool) bool {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for {
		if i == len(b) || b[i] != '"' {
			return false
		}
		end := i + 1
		for end < len(b) && b[end] != '"' && b[end] != '\\' && b[end] >= 0x20 {
			end++
		}
		if end == len(b) || b[end] != '"' {
			return false
		}
		key := b[i+1 : end]
		i = skipSpace(b, end+1)
		if i == len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend, ok := skipValue(b, i, 0)
		if !ok || !f(key, b[i:vend]) {
			return false
		}
		i = skipSpace(b, vend)
		if i == len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return true
		case ',':
			i = skipSpace(b, i+1)
		default:
			return false
		}
	}
}

// skipValue returns the end of the JSON value at b[i:]. Nesting is bounded
// (a usage object is shallow); deeper input is left to gjson.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i == len(b) || depth > 8 {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1, true
			}
		}
		return 0, false
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			if c == '{' {
				end, ok := skipValue(b, i, depth+1)
				if !ok || b[i] != '"' {
					return 0, false
				}
				i = skipSpace(b, end)
				if i == len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipSpace(b, i+1)
			}
			end, ok := skipValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			i = skipSpace(b, end)
			if i == len(b) {
				return 0, false
			}
			if b[i] == closer {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipSpace(b, i+1)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		j := i + 1
		for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
			j++
		}
		return j, true
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
				return i + len(lit), true
			}
		}
		return 0, false
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}
