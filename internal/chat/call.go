package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/store"
)

// chatRequest is the body of POST /api/chat and /api/chat/stream. Unknown
// fields are ignored.
type chatRequest struct {
	Message      json.RawMessage `json:"message"`
	Model        string          `json:"model"`
	User         string          `json:"user"`
	Conversation string          `json:"conversation"`
	System       string          `json:"system"`
	Temperature  *float64        `json:"temperature"`
	MaxTokens    *int            `json:"max_tokens"`

	message string // Message decoded
}

// upstreamRequest is the body sent through the proxy.
type upstreamRequest struct {
	Model         string         `json:"model,omitempty"`
	Messages      []wireMessage  `json:"messages"`
	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
	Temperature   *float64       `json:"temperature,omitempty"`
	MaxTokens     *int           `json:"max_tokens,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// usageJSON is the usage the API reports.
type usageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

func toUsage(u openai.Usage) usageJSON {
	return usageJSON{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
}

// bodyTimeout bounds reading a request body.
const bodyTimeout = 60 * time.Second

// readRequest reads and validates the body.
func readRequest(w http.ResponseWriter, r *http.Request) (*chatRequest, *apiError) {
	// A slow sender is cut off, as on /v1: the connection closes after the answer.
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(bodyTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err == nil && deadline {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		w.Header().Set("Connection", "close")
		return nil, &apiError{Status: http.StatusRequestTimeout, Message: "the request body was not received in time"}
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("the request body exceeds %d bytes", MaxBody)}
		}
		return nil, &apiError{Status: http.StatusBadRequest, Message: "could not read the request body"}
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Message: "the request body is not valid JSON: " + jsonProblem(err)}
	}
	raw := bytes.TrimSpace(req.Message)
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &req.message) != nil || strings.TrimSpace(req.message) == "" {
		return nil, &apiError{Status: http.StatusBadRequest, Message: "'message' must be a non-empty string"}
	}
	if req.MaxTokens != nil && *req.MaxTokens <= 0 {
		return nil, &apiError{Status: http.StatusBadRequest, Message: "'max_tokens' must be a positive integer"}
	}
	req.User, req.Conversation = strings.TrimSpace(req.User), strings.TrimSpace(req.Conversation)
	return &req, nil
}

// jsonProblem describes a decoding error without echoing the body.
func jsonProblem(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type.String())
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "expected a JSON object"
}

// turn is one conversation call being served.
type turn struct {
	req      *chatRequest
	key      store.ConversationKey
	model    string
	asked    time.Time
	endpoint string
}

// upstreamBody builds the /v1/chat/completions body for msgs, asking model.
func (t *turn) upstreamBody(model string, msgs []wireMessage, stream bool) []byte {
	u := upstreamRequest{Model: model, Messages: msgs, Temperature: t.req.Temperature, MaxTokens: t.req.MaxTokens}
	if stream {
		u.Stream = true
		u.StreamOptions = &streamOptions{IncludeUsage: true} // the final event reports tokens
	}
	b, _ := json.Marshal(u) // strings and numbers only: cannot fail
	return b
}

// completion is a successful non-stream answer.
type completion struct {
	content string
	usage   openai.Usage
	model   string
}

// parseCompletion reads a chat.completion body.
func parseCompletion(b []byte) (*completion, *apiError) {
	if !gjson.ValidBytes(b) {
		return nil, &apiError{Status: http.StatusBadGateway, Message: "the upstream answered with invalid JSON"}
	}
	r := gjson.GetManyBytes(b, "choices.0.message.content", "usage", "model", "error")
	if r[3].Exists() {
		return nil, proxyError(http.StatusBadGateway, nil, b)
	}
	return &completion{content: r[0].String(), usage: openai.ParseUsage(r[1]), model: r[2].String()}, nil
}

// proxyError turns an error the proxy wrote (its own envelope or an
// upstream's, passed through) into the API's error, keeping the meaning of
// the status: client errors, 429 and timeouts as they are, other upstream
// failures as 502.
func proxyError(status int, h http.Header, body []byte) *apiError {
	out := status
	switch {
	case status >= 400 && status < 500, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
	default:
		out = http.StatusBadGateway
	}
	r := gjson.GetManyBytes(body, "error.message", "error", "message", "error.type", "error.code")
	msg := r[0].String()
	if msg == "" && r[1].Type == gjson.String {
		msg = r[1].Str
	}
	if msg == "" {
		msg = r[2].String()
	}
	if msg == "" {
		msg = http.StatusText(status)
		if msg == "" {
			msg = fmt.Sprintf("the upstream answered %d", status)
		}
	}
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	details := map[string]any{"status": status}
	if v := r[3].String(); v != "" {
		details["type"] = v
	}
	if v := r[4].String(); v != "" {
		details["code"] = v
	}
	return &apiError{Status: out, Message: redact(msg), Details: details, Header: passHeaders(h)}
}

// passHeaders picks the proxy's response headers a client should see.
func passHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if k == "Retry-After" || strings.HasPrefix(k, "X-Ratelimit-") {
			out[k] = v
		}
	}
	return out
}

// redact removes credentials an upstream or a driver may quote in an error.
func redact(s string) string { return apierr.Redact(s) }

// beginTurn validates the request, resolves the conversation and takes its
// lock. With a gateway key that does not authenticate, the bare message is
// still handed to the engine, so the refusal is answered and recorded
// exactly as on /v1; done then reports that the answer was written.
func (s *Service) beginTurn(w http.ResponseWriter, r *http.Request, endpoint string, stream bool) (t *turn, release func(), done bool, e *apiError) {
	req, e := readRequest(w, r)
	if e != nil {
		return nil, nil, false, e
	}
	t = &turn{req: req, model: req.Model, asked: time.Now(), endpoint: endpoint}
	if t.model == "" {
		t.model = s.opts.DefaultModel
	}
	keyID, authErr := s.keyID(r)
	if authErr != nil {
		if authErr.Status == http.StatusUnauthorized {
			t.key.User = req.User
			c := &call{s: s, t: t, msgs: []wireMessage{{Role: "user", Content: req.message}}, stream: stream,
				finish: func(string) string { return "" }}
			s.serve(w, r, c)
			return nil, nil, true, nil
		}
		return nil, nil, false, authErr
	}
	if t.key, e = conversationKey(r, keyID, req.User, req.Conversation); e != nil {
		return nil, nil, false, e
	}
	release, e = s.lock(r.Context(), t.key)
	if e != nil {
		return nil, nil, false, e
	}
	return t, release, false, nil
}

// serve runs a call through the engine. A response that broke after its
// first byte closes the connection, as on /v1.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, c *call) {
	res := s.opts.Engine.Serve(w, r, proxy.Exchange{Dialect: dialect{s}, Request: c, Endpoint: c.t.endpoint})
	if res.Aborted {
		panic(http.ErrAbortHandler)
	}
}

// messages loads the context and builds the upstream messages.
func (s *Service) messages(ctx context.Context, t *turn) ([]wireMessage, error) {
	var history []store.Message
	if s.opts.ContextMessages > 0 {
		var err error
		if history, err = s.opts.Store.History(ctx, t.key, s.opts.ContextMessages); err != nil {
			return nil, err
		}
	}
	system := t.req.System
	if system == "" {
		system = s.opts.SystemPrompt
	}
	return s.buildMessages(system, history, t.req.message), nil
}

// handleChat serves POST /api/chat and, for stream, /api/chat/stream.
func (s *Service) handleChat(w http.ResponseWriter, r *http.Request, stream bool) {
	endpoint := "/api/chat"
	if stream {
		endpoint = "/api/chat/stream"
	}
	t, release, done, e := s.beginTurn(w, r, endpoint, stream)
	if done {
		return
	}
	if e != nil {
		s.writeError(w, e)
		return
	}
	defer release()
	msgs, err := s.messages(r.Context(), t)
	if err != nil {
		s.writeError(w, s.internalError(w, r, "could not read the conversation history", err))
		return
	}
	c := &call{s: s, t: t, msgs: msgs, stream: stream}
	c.finish = func(reply string) string {
		if err := s.remember(r.Context(), t.key, t.req.message, reply, t.asked); err != nil {
			s.logRememberFailure(w, r, err)
			return "the reply could not be saved to the conversation history"
		}
		return ""
	}
	s.serve(w, r, c)
}

func (s *Service) logRememberFailure(w http.ResponseWriter, r *http.Request, err error) {
	s.log.LogAttrs(r.Context(), slog.LevelError, "chat: saving the turn failed",
		slog.String("request_id", requestID(w, r)), slog.String("error", redact(err.Error())))
}
