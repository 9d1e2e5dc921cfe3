package jsonscan

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// inlineMembers is how many members an Object holds without allocating:
// more than a chat request's usual top-level fields.
const inlineMembers = 16

// span locates one member in the body: the value at body[vs:ve], the key at
// body[ks:ke], or at keys[ks:ke] when it needed unescaping. Spans hold no
// pointers, which makes the overflow slice cheap for the allocator.
type span struct {
	ks, ke, vs, ve int32
	esc            bool
}

// Object is the list of top-level members of a scanned JSON object, in body
// order, duplicates included. The zero Object has no members. Its methods
// take a pointer because an Object holds its first members inline.
type Object struct {
	body   []byte
	keys   []byte // unescaped keys
	n      int
	inline [inlineMembers]span
	more   []span
}

func (o *Object) add(sp span) {
	if o.n < inlineMembers {
		o.inline[o.n] = sp
	} else {
		o.more = append(o.more, sp)
	}
	o.n++
}

func (o *Object) span(i int) *span {
	if i < inlineMembers {
		return &o.inline[i]
	}
	return &o.more[i-inlineMembers]
}

// Len returns the number of top-level members, duplicates included.
func (o *Object) Len() int { return o.n }

// Member returns member i (0 <= i < Len) in body order. key is the member
// name, unescaped as encoding/json does ("mod\u0065l" is "model"; invalid
// UTF-8 and lone surrogates become U+FFFD). value is the raw JSON value,
// without surrounding whitespace. Both alias the scanned body or the Object:
// do not modify them.
func (o *Object) Member(i int) (key, value []byte) {
	sp := o.span(i)
	return o.key(sp), o.body[sp.vs:sp.ve:sp.ve]
}

func (o *Object) key(sp *span) []byte {
	if sp.esc {
		return o.keys[sp.ks:sp.ke:sp.ke]
	}
	return o.body[sp.ks:sp.ke:sp.ke]
}

// Field returns the raw value of the member named name, matching names the
// way encoding/json matches struct fields: case-insensitively under Unicode
// simple folding, so "MODEL", "Model" and "MODEL" spelled with U+212A KELVIN
// SIGN for a "k" all match. Many upstreams decode with encoding/json (or
// another case-insensitive decoder), so a body carrying both "model" and
// "MODEL" is ambiguous: the gateway might route on one while the upstream
// serves the other. Field therefore returns an error wrapping ErrDuplicate
// when more than one member matches, exact duplicates included.
//
// found is false (with a nil error) when no member matches.
func (o *Object) Field(name string) (raw []byte, found bool, err error) {
	first := -1
	for i := range o.n {
		if !foldEqual(o.key(o.span(i)), name) {
			continue
		}
		if first >= 0 {
			return nil, false, fmt.Errorf("%w: %s and %s both name %q",
				ErrDuplicate, quoteKey(o.key(o.span(first))), quoteKey(o.key(o.span(i))), name)
		}
		first = i
	}
	if first < 0 {
		return nil, false, nil
	}
	_, v := o.Member(first)
	return v, true, nil
}

// Exact returns the raw value of the first member whose key equals name byte
// for byte, ignoring case variants and duplicates. It is for fields that do
// not decide routing, permissions or metering.
func (o *Object) Exact(name string) (raw []byte, found bool) {
	for i := range o.n {
		if k, v := o.Member(i); string(k) == name {
			return v, true
		}
	}
	return nil, false
}

// foldEqual reports whether key equals name under the folding encoding/json
// uses for field names: its foldName maps each rune to the smallest rune of
// its unicode.SimpleFold orbit, so two names match exactly when
// bytes.EqualFold says so (json/fold.go). A fast path handles the common
// all-ASCII key.
func foldEqual(key []byte, name string) bool {
	if len(key) == len(name) {
		i := 0
		for ; i < len(key); i++ {
			a, b := key[i], name[i]
			if a >= utf8.RuneSelf || b >= utf8.RuneSelf {
				break
			}
			if a != b && lower(a) != lower(b) {
				return false
			}
		}
		if i == len(key) {
			return true
		}
	}
	// Non-ASCII runes can fold to ASCII (U+212A KELVIN SIGN to 'k', U+017F
	// LATIN SMALL LETTER LONG S to 's'), so lengths may differ. A rune is at
	// most 4 bytes per ASCII byte of name.
	if len(key) > 4*len(name) && len(name) > 0 {
		return false
	}
	return bytes.EqualFold(key, []byte(name))
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// quoteKey quotes a client-sent key for an error message, cut short so a
// megabyte key cannot make a megabyte error.
func quoteKey(k []byte) string {
	const max = 40
	if len(k) <= max {
		return fmt.Sprintf("%q", k)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(k[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", k[:cut])
}
