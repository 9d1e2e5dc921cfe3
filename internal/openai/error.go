package openai

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error types used in the envelope, as OpenAI names them.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeInsufficient   = "insufficient_quota"
	TypeServer         = "server_error"
	TypeUpstream       = "upstream_error"
	TypeTimeout        = "timeout_error"
)

// Error is an error the gateway itself answers with. It carries everything
// needed to write the OpenAI envelope, so a handler can return it and one
// place writes it.
type Error struct {
	Status  int
	Type    string
	Code    string
	Message string
	Param   string
	Header  http.Header // extra response headers, e.g. Retry-After
}

func (e *Error) Error() string { return e.Message }

// Errorf-style constructors for the common cases.

// BadRequest is a 400 invalid_request_error.
func BadRequest(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Code: code, Message: msg}
}

// NewError builds an Error.
func NewError(status int, typ, code, msg string) *Error {
	return &Error{Status: status, Type: typ, Code: code, Message: msg}
}

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
func (e *Error) Marshal(requestID string) []byte {
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
	body := e.Marshal(requestID)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Content-Encoding")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// SSEError returns an SSE event carrying e in the error envelope, for a
// stream that breaks after its first byte reached the client.
func SSEError(e *Error, requestID string) []byte {
	body := e.Marshal(requestID)
	out := make([]byte, 0, len(body)+8)
	out = append(out, "data: "...)
	out = append(out, body...)
	out = append(out, "\n\n"...)
	return out
}
