// Package apierr is the error a gateway answers with, before any dialect
// shapes it: a status, a kind, a code and a message. The engine, the gate and
// the dialects pass *Error values; each dialect writes them in its own wire
// shape (OpenAI's envelope, Anthropic's {"type":"error"}, ...).
package apierr

import (
	"net/http"
	"regexp"
	"strings"
)

// Kinds of error. The values are OpenAI's type names, so the OpenAI dialect
// writes them unchanged; other dialects map them to their own names.
const (
	InvalidRequest = "invalid_request_error"
	Authentication = "authentication_error"
	Permission     = "permission_error"
	NotFound       = "not_found_error"
	RateLimit      = "rate_limit_error"
	Insufficient   = "insufficient_quota"
	Server         = "server_error"
	Upstream       = "upstream_error"
	Timeout        = "timeout_error"
	Overloaded     = "overloaded_error"
)

// Error is an error the gateway itself answers with. It carries everything a
// dialect needs to write it, so a handler can return it and one place writes it.
type Error struct {
	Status  int
	Type    string // one of the kinds above
	Code    string
	Message string
	Param   string
	Header  http.Header // extra response headers, e.g. Retry-After
}

func (e *Error) Error() string { return e.Message }

// New builds an Error.
func New(status int, typ, code, msg string) *Error {
	return &Error{Status: status, Type: typ, Code: code, Message: msg}
}

// BadRequest is a 400 invalid_request_error.
func BadRequest(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: InvalidRequest, Code: code, Message: msg}
}

// Sanitize keeps error text short, valid UTF-8 and free of what an error from
// net/http may quote: URLs' query strings (credentials travel there) and
// socket addresses.
func Sanitize(s string) string {
	if i := strings.Index(s, "?"); i >= 0 {
		if j := strings.IndexAny(s[i:], "\" "); j >= 0 {
			s = s[:i] + s[i+j:]
		} else {
			s = s[:i]
		}
	}
	s = Redact(s)
	if len(s) > 300 {
		s = s[:300]
	}
	return strings.ToValidUTF8(s, "")
}

// secretPattern matches things that look like credentials: gateway keys,
// provider keys and bearer tokens, even partly masked ones.
var secretPattern = regexp.MustCompile(`(?i)\b(tg-|tg_|sk-|sk_|key-|bearer\s+)[A-Za-z0-9_*\-]{4,}`)

// Redact removes credentials an upstream or a driver may quote in an error.
func Redact(s string) string {
	if !strings.ContainsAny(s, "-_ ") {
		return s
	}
	return secretPattern.ReplaceAllString(s, "[redacted]")
}
