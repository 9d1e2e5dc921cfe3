package openai

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/upstreamerr"
)

// Error types used in the envelope, as OpenAI names them.
const (
	TypeInvalidRequest = apierr.InvalidRequest
	TypeAuthentication = apierr.Authentication
	TypePermission     = apierr.Permission
	TypeNotFound       = apierr.NotFound
	TypeRateLimit      = apierr.RateLimit
	TypeInsufficient   = apierr.Insufficient
	TypeServer         = apierr.Server
	TypeUpstream       = apierr.Upstream
	TypeTimeout        = apierr.Timeout
)

// Error is the gateway's error value (see apierr); the OpenAI dialect writes
// it in OpenAI's envelope.
type Error = apierr.Error

// BadRequest is a 400 invalid_request_error.
func BadRequest(code, msg string) *Error { return apierr.BadRequest(code, msg) }

// NewError builds an Error.
func NewError(status int, typ, code, msg string) *Error { return apierr.New(status, typ, code, msg) }

type envelope struct {
	Error envelopeBody `json:"error"`
}

type envelopeBody struct {
	Message   string  `json:"message"`
	Type      string  `json:"type"`
	Param     *string `json:"param"`
	Code      *string `json:"code"`
	RequestID string  `json:"request_id,omitempty"`
}

// Marshal returns the JSON envelope of e. The request id is appended to the
// message and carried in its own field so a user can quote it.
func Marshal(e *Error, requestID string) []byte {
	msg := e.Message
	if requestID != "" {
		msg += " (request id: " + requestID + ")"
	}
	b := envelopeBody{Message: msg, Type: e.Type, RequestID: requestID}
	if e.Param != "" {
		b.Param = &e.Param
	}
	if e.Code != "" {
		b.Code = &e.Code
	}
	out, _ := json.Marshal(envelope{Error: b}) // cannot fail: strings only
	return out
}

// WriteError writes e as an OpenAI error envelope.
func WriteError(w http.ResponseWriter, e *Error, requestID string) {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	body := Marshal(e, requestID)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Content-Encoding")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// SSEError returns an SSE event carrying e in the error envelope, for a
// stream that breaks after its first byte reached the client.
func SSEError(e *Error, requestID string) []byte {
	body := Marshal(e, requestID)
	out := make([]byte, 0, len(body)+8)
	out = append(out, "data: "...)
	out = append(out, body...)
	out = append(out, "\n\n"...)
	return out
}

// WrapUpstreamError shapes an upstream error response for an OpenAI client:
// an OpenAI-shaped JSON error passes through unchanged (SDKs and users match
// on the upstream's own wording) unless it quotes an address or a credential;
// anything else (a text/plain 404, a CDN's HTML 502) is wrapped in the
// envelope with a short, sanitized message. The status is kept.
func WrapUpstreamError(status int, contentType string, body []byte) (int, []byte, string) {
	v := upstreamerr.Inspect(status, contentType, body)
	if v.PassThrough {
		return status, body, "application/json"
	}
	e := &Error{Status: status, Type: typeForStatus(status), Code: "upstream_error", Message: v.Message}
	return status, Marshal(e, ""), "application/json"
}

// typeForStatus is the envelope type of a wrapped upstream status.
func typeForStatus(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return TypeAuthentication
	case status == http.StatusForbidden:
		return TypePermission
	case status == http.StatusNotFound:
		return TypeNotFound
	case status == http.StatusTooManyRequests:
		return TypeRateLimit
	case status >= 500:
		return TypeUpstream
	}
	return TypeInvalidRequest
}
