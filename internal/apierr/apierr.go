// Package apierr is the error a gateway answers with, before any dialect
// shapes it: a status, a kind, a code and a message. The engine, the gate and
// the dialects pass *Error values; each dialect writes them in its own wire
// shape (OpenAI's envelope, Anthropic's {"type":"error"}, ...).
package apierr

import "net/http"

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
