package jsonscan

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// Member is one top-level member of a scanned object.
type Member struct {
	// Key is the member name, unescaped as encoding/json does ("mod\u0065l"
	// is "model"; invalid UTF-8 becomes U+FFFD). It aliases the scanned
	// body when the name needed no unescaping.
	Key []byte
	// Value is the raw JSON value: a sub-slice of the scanned body, without
	// surrounding whitespace.
	Value []byte
}

// Object is the list of top-level members of a scanned JSON object, in body
// order, duplicates included. The zero Object has no members.
type Object struct {
	members []Member
}

// Len returns the number of top-level members, duplicates included.
func (o Object) Len() int { return len(o.members) }

// Members returns the members in body order. The slice is shared: do not
// modify it.
func (o Object) Members() []Member { return o.members }

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
func (o Object) Field(name string) (raw []byte, found bool, err error) {
	first := -1
	for i := range o.members {
		if !foldEqual(o.members[i].Key, name) {
			continue
		}
		if first >= 0 {
			return nil, false, fmt.Errorf("%w: %s and %s both name %q",
				ErrDuplicate, quoteKey(o.members[first].Key), quoteKey(o.members[i].Key), name)
		}
		first = i
	}
	if first < 0 {
		return nil, false, nil
	}
	return o.members[first].Value, true, nil
}

// Exact returns the raw value of the first member whose key equals name byte
// for byte, ignoring case variants and duplicates. It is for fields that do
// not decide routing, permissions or metering.
func (o Object) Exact(name string) (raw []byte, found bool) {
	for i := range o.members {
		if string(o.members[i].Key) == name {
			return o.members[i].Value, true
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
