// Package jsonscan validates a request body that must be one JSON object and
// hands back its top-level members, without recursion and without allocations
// that grow with nesting depth.
//
// It exists because the gateway reads only a few fields of a body it otherwise
// forwards as bytes, and a hostile body must not be able to crash it (a
// recursive validator overflows the goroutine stack on deep nesting) or make
// the gateway and the upstream disagree on what a field says (case variants
// and duplicates of "model"). Scan is the validator; Object.Field is the
// conflict-aware lookup; String, Bool and Int64 read raw values; ScanForm
// reads the same fields, with the same conflict rules, from multipart and
// urlencoded form bodies.
//
// Typical use:
//
//	obj, err := jsonscan.Scan(body, jsonscan.Options{MaxDepth: 128})
//	if errors.Is(err, jsonscan.ErrTooDeep) { ... 400 "nesting too deep" }
//	raw, ok, err := obj.Field("model")
//	model, err := jsonscan.String(raw)
package jsonscan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// DefaultMaxDepth is the nesting limit Scan applies when Options.MaxDepth is
// zero. Real chat requests nest about 6 levels (body, messages array, message,
// content array, part, image_url); tool JSON schemas rarely pass 20.
const DefaultMaxDepth = 128

// DefaultMaxMembers is the member limit Scan applies when Options.MaxMembers
// is zero. The OpenAI chat API has about 35 top-level parameters; everything
// open-ended (messages, tools, metadata) nests below them.
const DefaultMaxMembers = 1000

// Options bound what Scan accepts.
type Options struct {
	// MaxDepth is the deepest nesting of objects and arrays accepted; the
	// top-level object counts as 1, so {"a":[{}]} has depth 3. Zero means
	// DefaultMaxDepth; a negative value is treated as 1.
	MaxDepth int
	// MaxMembers is the most top-level members accepted. Each costs 48
	// bytes in the Object, so without a bound a 20 MB body of "a":1 pairs
	// would cost 160 MB. Zero or negative means DefaultMaxMembers.
	MaxMembers int
}

func (o Options) maxMembers() int {
	if o.MaxMembers <= 0 {
		return DefaultMaxMembers
	}
	return o.MaxMembers
}

func (o Options) maxDepth() int {
	switch {
	case o.MaxDepth == 0:
		return DefaultMaxDepth
	case o.MaxDepth < 1:
		return 1
	}
	return o.MaxDepth
}

// Sentinel errors, matched with errors.Is. Every error Scan returns is an
// *Error wrapping one of the first four.
var (
	// ErrSyntax means the body is not valid JSON (RFC 8259).
	ErrSyntax = errors.New("invalid JSON")
	// ErrTooDeep means objects and arrays nest deeper than Options.MaxDepth.
	ErrTooDeep = errors.New("JSON nesting too deep")
	// ErrNotObject means the body is valid JSON but not an object.
	ErrNotObject = errors.New("JSON body is not an object")
	// ErrTooManyMembers means the object has more top-level members than
	// Options.MaxMembers.
	ErrTooManyMembers = errors.New("too many JSON members")
	// ErrDuplicate means a member name appears more than once, counting
	// case variants (see Object.Field).
	ErrDuplicate = errors.New("duplicate JSON member")
	// ErrType means a value has the wrong JSON type or range for the
	// helper reading it (String, Bool, Int64).
	ErrType = errors.New("wrong JSON value type")
)

// Error says which rule failed and where. Offset is the byte offset in the
// scanned body of the byte that broke the rule (len(body) when it ended
// too early).
type Error struct {
	Err    error // ErrSyntax, ErrTooDeep, ErrNotObject or ErrTooManyMembers
	Offset int
	Detail string // e.g. "invalid character 'x' after object key"
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v at offset %d", e.Err, e.Offset)
	}
	return fmt.Sprintf("%v at offset %d: %s", e.Err, e.Offset, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

// Scan validates that body is exactly one JSON object (optionally surrounded
// by JSON whitespace) and returns its top-level members. It uses a loop and a
// bit stack, never recursion, so its stack use is constant and its heap use is
// nothing for up to 16 members (more grow a slice of 20-byte spans, and
// a key that needs unescaping is copied), whatever the nesting. Strings are checked for escapes and control characters but, like
// encoding/json.Valid, not for UTF-8 validity.
//
// The returned Object aliases body: do not modify body while using it.
func Scan(body []byte, opts Options) (Object, error) {
	if len(body) > math.MaxInt32 {
		// Members record offsets as int32; no request body is this large.
		return Object{}, &Error{Err: ErrSyntax, Detail: "body larger than 2 GiB"}
	}
	s := scanner{b: body, max: opts.maxDepth(), maxMembers: opts.maxMembers()}
	s.obj.body = body
	if s.max > len(s.inline)*64 {
		s.deep = make([]uint64, (s.max+63)/64)
	}
	err := s.run()
	if err != nil {
		return Object{}, err
	}
	return s.obj, nil
}

// scanner is the state of one Scan. Its stack holds one bit per open
// container: 1 for an object, 0 for an array.
type scanner struct {
	b          []byte
	max        int
	depth      int
	inline     [4]uint64 // the stack up to 256 levels, without allocating
	deep       []uint64  // the stack when MaxDepth is larger
	obj        Object    // the members found so far
	maxMembers int

	// The top-level member being read, when the body is an object.
	record           bool // the top-level value is an object
	keyStart, keyEnd int  // key bytes inside the quotes
	keyEsc           bool // the key needs unquoting
	valStart         int
}

func (s *scanner) fail(kind error, off int, format string, args ...any) error {
	return &Error{Err: kind, Offset: off, Detail: fmt.Sprintf(format, args...)}
}

// unexpected reports the byte at off (or the end of input) as out of place.
func (s *scanner) unexpected(off int, where string) error {
	if off >= len(s.b) {
		return s.fail(ErrSyntax, len(s.b), "unexpected end of input %s", where)
	}
	return s.fail(ErrSyntax, off, "invalid character %s %s", quoteByte(s.b[off]), where)
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("0x%02x", c)
}

func (s *scanner) push(obj bool, off int) error {
	if s.depth >= s.max {
		return s.fail(ErrTooDeep, off, "more than %d levels", s.max)
	}
	w, bit := s.word(s.depth), uint(s.depth%64)
	if obj {
		*w |= 1 << bit
	} else {
		*w &^= 1 << bit
	}
	s.depth++
	return nil
}

// inObject reports whether the innermost open container is an object.
func (s *scanner) inObject() bool {
	d := s.depth - 1
	return *s.word(d)>>(uint(d%64))&1 == 1
}

// word returns the stack word holding the bit of level d.
func (s *scanner) word(d int) *uint64 {
	if s.deep != nil {
		return &s.deep[d/64]
	}
	return &s.inline[d/64]
}

// isSpace is JSON whitespace (RFC 8259 section 2).
func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func (s *scanner) ws(i int) int {
	for i < len(s.b) && isSpace(s.b[i]) {
		i++
	}
	return i
}

// run scans the whole body. The loop alternates between two phases: at the
// top of the loop i is at the start of a value; step consumes a scalar or an
// opening bracket (and, for an object, its first key), and after consumes
// closing brackets and the separator before the next value.
func (s *scanner) run() error {
	i := s.ws(0)
	if i >= len(s.b) {
		return s.fail(ErrSyntax, i, "empty body")
	}
	s.record = s.b[i] == '{'
	for {
		if s.depth == 1 {
			s.valStart = i
		}
		next, opened, err := s.step(i)
		if err != nil {
			return err
		}
		if !opened {
			next, err = s.after(next)
			if err != nil {
				return err
			}
			if next < 0 {
				break
			}
		}
		i = next
	}
	if !s.record {
		return s.fail(ErrNotObject, s.ws(0), "")
	}
	return nil
}

// step consumes the value starting at i: a whole scalar, or the opening
// bracket of a container (opened is true then, and i is returned at the
// container's first value, past its first key in an object). An empty
// container is consumed whole.
func (s *scanner) step(i int) (next int, opened bool, err error) {
	switch c := s.b[i]; c {
	case '{', '[':
		if err = s.push(c == '{', i); err != nil {
			return 0, false, err
		}
		i = s.ws(i + 1)
		if i >= len(s.b) {
			return 0, false, s.unexpected(i, "after opening bracket")
		}
		if (c == '{' && s.b[i] == '}') || (c == '[' && s.b[i] == ']') {
			s.depth--
			return i + 1, false, nil
		}
		if c == '{' {
			i, err = s.member(i)
		}
		return i, err == nil, err
	case '"':
		next, err = s.str(i + 1)
	case 't':
		next, err = s.lit(i, "true")
	case 'f':
		next, err = s.lit(i, "false")
	case 'n':
		next, err = s.lit(i, "null")
	default:
		next, err = s.num(i)
	}
	return next, false, err
}

// after runs once a value has ended at i: it records a top-level member,
// consumes closing brackets (recording again when a container at depth 1
// closes) and the next separator. It returns the start of the next value, or
// -1 when the top-level value ended and only whitespace follows.
func (s *scanner) after(i int) (int, error) {
	for {
		if s.depth == 1 && s.record {
			if err := s.addMember(i); err != nil {
				return 0, err
			}
		}
		if s.depth == 0 {
			if j := s.ws(i); j < len(s.b) {
				return 0, s.fail(ErrSyntax, j, "invalid character %s after top-level value", quoteByte(s.b[j]))
			}
			return -1, nil
		}
		i = s.ws(i)
		if i >= len(s.b) {
			return 0, s.unexpected(i, "in object or array")
		}
		c, obj := s.b[i], s.inObject()
		switch {
		case c == ',':
			i = s.ws(i + 1)
			if obj {
				return s.member(i)
			}
			if i >= len(s.b) {
				return 0, s.unexpected(i, "after array element")
			}
			return i, nil
		case (obj && c == '}') || (!obj && c == ']'):
			s.depth--
			i++
		case obj:
			return 0, s.unexpected(i, "after object member")
		default:
			return 0, s.unexpected(i, "after array element")
		}
	}
}

// member reads `"key" :` and the whitespace after it, starting at the
// opening quote, and returns the position of the value. Top-level keys are
// remembered for addMember.
func (s *scanner) member(i int) (int, error) {
	if i >= len(s.b) || s.b[i] != '"' {
		return 0, s.unexpected(i, "looking for beginning of object key string")
	}
	var err error
	if s.depth == 1 && s.record {
		s.keyStart = i + 1
		i, s.keyEsc, err = s.key(i + 1)
		s.keyEnd = i - 1
	} else {
		i, err = s.str(i + 1)
	}
	if err != nil {
		return 0, err
	}
	i = s.ws(i)
	if i >= len(s.b) || s.b[i] != ':' {
		return 0, s.unexpected(i, "after object key")
	}
	i = s.ws(i + 1)
	if i >= len(s.b) {
		return 0, s.unexpected(i, "after object key and colon")
	}
	return i, nil
}

// addMember records the top-level member whose value ends at end.
func (s *scanner) addMember(end int) error {
	if s.obj.n >= s.maxMembers {
		return s.fail(ErrTooManyMembers, s.keyStart-1, "more than %d", s.maxMembers)
	}
	sp := span{ks: int32(s.keyStart), ke: int32(s.keyEnd), vs: int32(s.valStart), ve: int32(end)}
	if s.keyEsc {
		sp.esc = true
		sp.ks = int32(len(s.obj.keys))
		s.obj.keys = unquote(s.obj.keys, s.b[s.keyStart:s.keyEnd])
		sp.ke = int32(len(s.obj.keys))
	}
	s.obj.add(sp)
	return nil
}

// key scans a top-level key like str, and also reports whether it holds an
// escape or a non-ASCII byte (then it is unquoted to match encoding/json,
// which replaces invalid UTF-8 with U+FFFD).
func (s *scanner) key(i int) (int, bool, error) {
	start := i
	for ; i < len(s.b); i++ {
		c := s.b[i]
		if c == '"' {
			return i + 1, false, nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
	}
	end, err := s.str(i)
	if err != nil {
		return 0, false, err
	}
	return end, needsUnquote(s.b[start : end-1]), nil
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special returns a mask with the high bit set in each of the 8
// little-endian bytes of v that is '"', '\\' or a control character (< 0x20):
// the bytes that end a fast string run. The terms are the "has a zero byte"
// and "has a byte < n" tests from Bit Twiddling Hacks; a borrow can also flag
// a byte above a true hit, never below one, so the lowest flagged byte is
// exact.
func special(v uint64) uint64 {
	q := v ^ (lsb * '"')
	bs := v ^ (lsb * '\\')
	return ((q-lsb)&^q | (bs-lsb)&^bs | (v-lsb*0x20)&^v) & msb
}

// str scans a string body starting after its opening quote and returns the
// offset after the closing quote.
func (s *scanner) str(i int) (int, error) {
	b := s.b
	for {
		for {
			if i+8 > len(b) {
				// The tail: byte by byte.
				for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
					i++
				}
				break
			}
			if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return 0, s.unexpected(i, "in string literal")
		}
		switch b[i] {
		case '"':
			return i + 1, nil
		case '\\':
		default:
			return 0, s.fail(ErrSyntax, i, "invalid character %s in string literal", quoteByte(b[i]))
		}
		if i+1 >= len(b) {
			return 0, s.unexpected(i+1, "in string escape code")
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			for k := i + 2; k < i+6; k++ {
				if k >= len(b) || !isHex(b[k]) {
					return 0, s.unexpected(k, "in \\u hexadecimal character escape")
				}
			}
			i += 6
		default:
			return 0, s.fail(ErrSyntax, i+1, "invalid character %s in string escape code", quoteByte(b[i+1]))
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (s *scanner) lit(i int, want string) (int, error) {
	for k := 0; k < len(want); k++ {
		if i+k >= len(s.b) {
			return 0, s.unexpected(i+k, "in literal "+want)
		}
		if s.b[i+k] != want[k] {
			return 0, s.unexpected(i+k, "in literal "+want)
		}
	}
	return i + len(want), nil
}

// num scans a number per RFC 8259 section 6:
// -? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?
// What follows it is checked by the caller (so "01" fails there).
func (s *scanner) num(i int) (int, error) {
	b := s.b
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, s.unexpected(i, "looking for beginning of value")
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i = digits(b, i+1)
	case i == start:
		return 0, s.unexpected(i, "looking for beginning of value")
	default:
		return 0, s.unexpected(i, "in numeric literal")
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return 0, s.unexpected(j, "after decimal point in numeric literal")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return 0, s.unexpected(j, "in exponent of numeric literal")
		}
		i = j
	}
	return i, nil
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
