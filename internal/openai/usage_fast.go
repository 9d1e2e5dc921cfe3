package openai

import "github.com/tidwall/gjson"

// A usage object read without gjson. Every copied-through response is
// metered from its tail; gjson's ForEach built a Result for each member
// (~1 µs a call, ~2% of a non-stream call's CPU at saturation). The fast
// path takes only the usual shape: plain keys, integer token counts, detail
// objects; anything else (escapes, floats, strings, literals where a count
// is read, malformed JSON) reports false and ParseUsage decides, so both
// give the same answer (FuzzParseUsageFast). Which member sets which count
// is foldUsage's, shared with ParseUsage. One difference, on purpose:
// gjson.Parse of the tail took the rest of the body as the object, and its
// ForEach read members past the usage object's end; the fast path stops
// there, as UsageFromBody always did.

// parseUsageFast reads the object at the start of b (after optional
// space) as ParseUsage would; false when it cannot be sure to agree.
func parseUsageFast(b []byte) (Usage, bool) {
	var out Usage
	if !eachMember(b, func(key, val []byte) bool { return foldUsage(&out, string(key), rawValue(val)) }) {
		return Usage{}, false
	}
	return out.withTotal(), true
}

// rawValue is a member's value as its JSON bytes. It reads only integers
// of at most 18 digits, and objects (or null) for their members.
type rawValue []byte

func (v rawValue) count() (int64, bool) {
	neg := len(v) > 0 && v[0] == '-'
	digits := v
	if neg {
		digits = v[1:]
	}
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func (v rawValue) member(name string) (m rawValue, found, ok bool) {
	if string(v) == "null" {
		return nil, false, true // gjson finds no member in null either
	}
	ok = eachMember(v, func(key, val []byte) bool {
		if !found && string(key) == name {
			m, found = val, true
		}
		return true
	})
	return m, found, ok
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

// usageIn is ParseUsage(uj) for a usage object uj found in data, read by
// parseUsageFast where it can: a chunk's usage costs a third of the time,
// and gjson's float parsing under ForEach was the deepest call of a
// stream's goroutine (docs/perf.md, thirteenth session).
func usageIn(data []byte, uj gjson.Result) Usage {
	if end := uj.Index + len(uj.Raw); uj.Index > 0 && end <= len(data) {
		if u, ok := parseUsageFast(data[uj.Index:end]); ok {
			return u
		}
	}
	return ParseUsage(uj)
}
