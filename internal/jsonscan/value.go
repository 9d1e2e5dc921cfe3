package jsonscan

import (
	"fmt"
	"math"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The helpers below read one raw JSON value, as Object.Field returns it. They
// check the value themselves, so they are safe on bytes Scan did not see, and
// they never consult anything but the value.

// IsNull reports whether raw is the JSON literal null. Callers usually treat
// a null member like an absent one.
func IsNull(raw []byte) bool { return string(raw) == "null" }

// String returns the JSON string raw unescaped as encoding/json does: escapes
// decoded, a lone or mismatched \u surrogate and invalid UTF-8 replaced by
// U+FFFD. Any other type, null included, is an error wrapping ErrType.
func String(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", typeErr(raw, "a string")
	}
	s := scanner{b: raw}
	end, err := s.str(1)
	if err != nil {
		return "", err
	}
	if end != len(raw) {
		return "", typeErr(raw, "a string")
	}
	body := raw[1 : len(raw)-1]
	if !needsUnquote(body) {
		return string(body), nil
	}
	return string(unquote(make([]byte, 0, len(body)), body)), nil
}

// AppendUnquote appends the decoded form (as String decodes it) of the JSON
// string b starts with to dst, and returns the bytes of b after it. b may go
// on past the string: a stream chunk's member is read where it stands,
// without scanning the rest of the chunk.
func AppendUnquote(dst, b []byte) (out, rest []byte, err error) {
	if len(b) < 2 || b[0] != '"' {
		return dst, b, typeErr(b[:min(len(b), 1)], "a string")
	}
	s := scanner{b: b}
	end, err := s.str(1)
	if err != nil {
		return dst, b, err
	}
	body := b[1 : end-1]
	if !needsUnquote(body) {
		return append(dst, body...), b[end:], nil
	}
	return unquote(dst, body), b[end:], nil
}

// Bool returns the JSON literal true or false in raw. Anything else, null
// and the strings "true"/"false" included, is an error wrapping ErrType.
func Bool(raw []byte) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, typeErr(raw, "true or false")
}

// Int64 returns the JSON number raw as an int64 under the rules
// encoding/json applies when decoding into an int64: the number must be
// written as an integer (no fraction or exponent, so 1.0 and 1e3 are
// errors) and must fit in 64 bits. -0 is 0. Such errors, and any other type,
// wrap ErrType: a non-integer or huge max_tokens or n must not be metered as
// something else.
func Int64(raw []byte) (int64, error) {
	s := scanner{b: raw}
	end, err := s.num(0)
	if err != nil || end != len(raw) {
		return 0, typeErr(raw, "a number")
	}
	neg := raw[0] == '-'
	d := raw
	if neg {
		d = d[1:]
	}
	var n uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, typeErr(raw, "an integer")
		}
		if n > (math.MaxUint64-9)/10 {
			return 0, typeErr(raw, "an integer that fits in 64 bits")
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case !neg && n <= math.MaxInt64:
		return int64(n), nil
	case neg && n <= 1<<63:
		return int64(-n), nil // two's complement: -(1<<63) wraps to MinInt64
	}
	return 0, typeErr(raw, "an integer that fits in 64 bits")
}

func typeErr(raw []byte, want string) error {
	return fmt.Errorf("%w: got %s, want %s", ErrType, quoteKey(raw), want)
}

// needsUnquote reports whether the string body s (between the quotes)
// differs from its decoded form: it has an escape, or bytes that are not
// valid UTF-8 and would be replaced by U+FFFD.
func needsUnquote(s []byte) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			return true
		}
		if c >= utf8.RuneSelf {
			return !utf8.Valid(s[i:])
		}
	}
	return false
}

// unquote appends the decoded form of the string body s, which str has
// already validated, to dst. It follows encoding/json's unquoteBytes
// (decode.go) so keys compare the way an upstream decoding them sees them.
func unquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if s[i+1] != 'u' {
				dst = append(dst, unescape(s[i+1]))
				i += 2
				continue
			}
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, hex4(s[i+2:i+6])); dec != unicode.ReplacementChar {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, r)
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += n
		}
	}
	return dst
}

func unescape(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // '"', '\\', '/'
}

// hex4 decodes four hex digits that str has already checked.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
