// Package auth handles gateway keys: their format, generation and hashing,
// the management operations shared by the CLI and the admin API (Manager),
// the in-memory cache that authenticates every request without touching the
// database (Cache), and the small request helpers around them.
//
// A key is "tg-" followed by crypto/rand.Text() (26 base32 characters, about
// 130 bits). Only its hex SHA-256 hash and an 11-character display prefix are
// stored; a slow KDF would add latency for no gain on secrets this random.
// Plaintext keys never appear in errors or logs produced by this package.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/internal/store"
)

// KeyPrefix starts every gateway key.
const KeyPrefix = "tg-"

// displayChars is how many random characters the display prefix keeps:
// enough to tell keys apart in a list, far too few to guess the rest.
const displayChars = 8

// GenerateKey returns a new random key, its hex SHA-256 hash (what the store
// keeps) and its display prefix ("tg-ABCD1234").
func GenerateKey() (plaintext, hash, prefix string) {
	plaintext = KeyPrefix + rand.Text()
	return plaintext, HashKey(plaintext), plaintext[:len(KeyPrefix)+displayChars]
}

// HashKey returns the hex SHA-256 of k, as stored in store.Key.Hash.
func HashKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:])
}

// KeyFromRequest returns the gateway key a client sent, from
// "Authorization: Bearer <key>" (as OpenAI SDKs send it) or, failing that,
// the "x-api-key" header (as Anthropic-style clients send it). It returns ""
// when neither is present.
func KeyFromRequest(r *http.Request) string {
	if k, ok := bearer(r); ok {
		return k
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key"))
}

// bearer extracts the token of an "Authorization: Bearer" header; the scheme
// is case-insensitive (RFC 9110 section 11.1).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(h[len(scheme):]), true
}

// AdminTokenOK reports whether r carries "Authorization: Bearer <token>". An
// empty token never matches, so an unset admin token disables admin access
// rather than opening it. The comparison takes constant time; both sides
// are hashed first so that not even the length leaks.
func AdminTokenOK(r *http.Request, token string) bool {
	if token == "" {
		return false
	}
	got, ok := bearer(r)
	if !ok {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// ModelAllowed reports whether key k may call model. k.Models holds patterns
// in which '*' matches any run of characters, '/' included (so "openai/*"
// and "*" both cover "openai/gpt-4o"); every other character matches
// itself, case-sensitively. An empty list allows every model.
func ModelAllowed(k *store.Key, model string) bool {
	if len(k.Models) == 0 {
		return true
	}
	for _, p := range k.Models {
		if globMatch(p, model) {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern where '*' is the only wildcard. It
// backtracks to the last star only, so it runs in O(len(pattern)*len(s)) at
// worst and allocates nothing.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			if c := pattern[px]; c == '*' {
				starPx, starSx = px, sx+1
				px++
				continue
			} else if sx < len(s) && s[sx] == c {
				px++
				sx++
				continue
			}
		}
		if starPx >= 0 && starSx <= len(s) {
			px, sx = starPx, starSx
			continue
		}
		return false
	}
	return true
}
