package anthropic

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/jsonscan"
)

// Anthropic's error types (https://docs.anthropic.com/en/api/errors).
const (
	typeInvalidRequest = "invalid_request_error"
	typeAuthentication = "authentication_error"
	typeBilling        = "billing_error"
	typePermission     = "permission_error"
	typeNotFound       = "not_found_error"
	typeTooLarge       = "request_too_large"
	typeRateLimit      = "rate_limit_error"
	typeAPI            = "api_error"
	typeTimeout        = "timeout_error"
	typeOverloaded     = "overloaded_error"
)

// StatusOverloaded is Anthropic's status for an overloaded API.
const StatusOverloaded = 529

// errorType is the Anthropic error type for a status, with the gateway's
// kind deciding where a status alone does not.
func errorType(status int, kind string) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusUnprocessableEntity:
		return typeInvalidRequest
	case http.StatusUnauthorized:
		return typeAuthentication
	case http.StatusPaymentRequired:
		return typeBilling
	case http.StatusForbidden:
		return typePermission
	case http.StatusNotFound:
		return typeNotFound
	case http.StatusRequestEntityTooLarge:
		return typeTooLarge
	case http.StatusTooManyRequests:
		return typeRateLimit
	case http.StatusGatewayTimeout:
		return typeTimeout
	case StatusOverloaded:
		return typeOverloaded
	}
	switch kind {
	case apierr.Overloaded:
		return typeOverloaded
	case apierr.Timeout:
		return typeTimeout
	case apierr.Insufficient:
		return typeBilling
	case apierr.Authentication:
		return typeAuthentication
	case apierr.Permission:
		return typePermission
	case apierr.NotFound:
		return typeNotFound
	case apierr.RateLimit:
		return typeRateLimit
	}
	if status >= 500 || status == 0 {
		return typeAPI
	}
	return typeInvalidRequest
}

// appendError appends Anthropic's error object.
func appendError(b []byte, typ, msg, requestID string) []byte {
	b = append(b, `{"type":"error","error":{"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	b = append(b, '}')
	if requestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendString(b, requestID)
	}
	return append(b, '}')
}

// ErrorBody returns e in Anthropic's error shape.
func ErrorBody(e *apierr.Error, requestID string) []byte {
	return appendError(make([]byte, 0, 96+len(e.Message)), errorType(e.Status, e.Type), e.Message, requestID)
}

// WriteError writes a gateway refusal in Anthropic's shape, with the status
// and extra headers (Retry-After) the error carries.
func (d *Dialect) WriteError(w http.ResponseWriter, e *apierr.Error, requestID string) {
	WriteError(w, e, requestID)
}

// WriteError writes e in Anthropic's shape (also used for GET /v1/models).
func WriteError(w http.ResponseWriter, e *apierr.Error, requestID string) {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	body := ErrorBody(e, requestID)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if requestID != "" {
		h.Set("Request-Id", requestID)
	}
	h.Del("Content-Encoding")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// appendErrorEvent appends an SSE error event, as Anthropic ends a stream
// that failed after it started.
func appendErrorEvent(dst []byte, typ, msg string) []byte {
	dst = append(dst, "event: error\ndata: "...)
	dst = appendError(dst, typ, msg, "")
	return append(dst, "\n\n"...)
}

// failEvent appends the error event for a gateway error that broke a stream.
func failEvent(dst []byte, fail *apierr.Error) []byte {
	status := fail.Status
	if status == 0 {
		status = http.StatusBadGateway
	}
	return appendErrorEvent(dst, errorType(status, fail.Type), fail.Message)
}

// maxErrorMessage bounds an upstream message copied into an error.
const maxErrorMessage = 2048

// upstreamMessage extracts a human message from an upstream error body:
// OpenAI's error.message, Anthropic's, a top-level message or detail, or
// the text itself when it is short plain text.
func upstreamMessage(status int, body []byte) string {
	if gjson.ValidBytes(body) {
		for _, p := range [...]string{"error.message", "message", "error", "detail"} {
			if v := gjson.GetBytes(body, p); v.Type == gjson.String && v.Str != "" {
				return clip(v.Str)
			}
		}
	} else if t := strings.TrimSpace(string(body)); t != "" && utf8.ValidString(t) && !looksLikeHTML(t) {
		return clip(t)
	}
	return "upstream error: " + strconv.Itoa(status) + " " + http.StatusText(status)
}

func looksLikeHTML(s string) bool {
	return strings.HasPrefix(s, "<") || strings.Contains(s[:min(len(s), 256)], "<html")
}

func clip(s string) string {
	if len(s) <= maxErrorMessage {
		return s
	}
	n := maxErrorMessage
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// overloaded reports whether an upstream error says it is overloaded.
func overloaded(status int, body []byte) bool {
	if status == StatusOverloaded {
		return true
	}
	if status != http.StatusServiceUnavailable && status != http.StatusTooManyRequests && status < 500 {
		return false
	}
	return bytes.Contains(bytes.ToLower(body[:min(len(body), 4096)]), []byte("overload"))
}

// translateError rewrites an OpenAI-compatible upstream's error in
// Anthropic's shape with Anthropic's statuses.
func translateError(status int, body []byte) (int, []byte, string) {
	out := status
	typ := errorType(status, "")
	switch {
	case overloaded(status, body) && status != http.StatusTooManyRequests:
		out, typ = StatusOverloaded, typeOverloaded
	case status == http.StatusServiceUnavailable, status == http.StatusBadGateway:
		typ = typeAPI
	}
	if gjson.GetBytes(body, "error.code").String() == "context_length_exceeded" {
		typ = typeInvalidRequest
	}
	return out, appendError(nil, typ, upstreamMessage(status, body), ""), "application/json"
}

// passError returns an Anthropic upstream's error unchanged when it is JSON
// (clients match on its wording) and wraps anything else.
func passError(status int, h http.Header, body []byte) (int, []byte, string) {
	if isJSON(h.Get("Content-Type")) && gjson.ValidBytes(body) {
		return status, body, "application/json"
	}
	typ := errorType(status, "")
	if overloaded(status, body) {
		typ = typeOverloaded
	}
	return status, appendError(nil, typ, upstreamMessage(status, body), ""), "application/json"
}

func isJSON(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(ct))
	return strings.HasPrefix(ct, "application/json") || (strings.HasPrefix(ct, "application/") && strings.Contains(ct, "+json"))
}

// appendString and appendStringBody write JSON strings (jsonscan's writer).
func appendString(b []byte, s string) []byte { return jsonscan.AppendString(b, s) }

func appendStringBody(b []byte, s string) []byte { return jsonscan.AppendStringBody(b, s) }
