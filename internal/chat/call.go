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
	"regexp"
	"strings"
	"time"

	"github.com/tidwall/gjson"

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

// readRequest reads and validates the body.
func readRequest(w http.ResponseWriter, r *http.Request) (*chatRequest, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
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

// upstreamBody builds the /v1/chat/completions body for msgs.
func (t *turn) upstreamBody(msgs []wireMessage, stream bool) []byte {
	u := upstreamRequest{Model: t.model, Messages: msgs, Temperature: t.req.Temperature, MaxTokens: t.req.MaxTokens}
	if stream {
		u.Stream = true
		u.StreamOptions = &streamOptions{IncludeUsage: true} // the final event reports tokens
	}
	b, _ := json.Marshal(u) // strings and numbers only: cannot fail
	return b
}

// internalRequest builds the request handed to the proxy: the client's
// credentials and request id, the end user (for the ledger; the proxy does
// not forward X-Tollgate-* headers), labelled with the chat endpoint.
func internalRequest(r *http.Request, endpoint, user string, body []byte) *http.Request {
	ctx := proxy.WithEndpoint(r.Context(), endpoint)
	ir, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/chat/completions", bytes.NewReader(body)) // constant URL: cannot fail
	ir.RemoteAddr = r.RemoteAddr
	ir.Host = r.Host
	ir.Header.Set("Content-Type", "application/json")
	if user != "" {
		ir.Header.Set("X-Tollgate-User", user)
	}
	for _, h := range []string{"Authorization", "X-Api-Key", "X-Request-Id", "Traceparent", "Tracestate"} {
		if v := r.Header.Values(h); len(v) > 0 {
			ir.Header[h] = v
		}
	}
	return ir
}

// serveProxy runs the proxy, recovering the abort it uses to cut a broken
// response (net/http would close the connection; here the caller reports it).
func (s *Service) serveProxy(w http.ResponseWriter, r *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			aborted = true
		}
	}()
	s.opts.Proxy.ServeHTTP(w, r)
	return false
}

// newHeader starts the header of an internal response writer with the
// request id, which the proxy uses as the ledger row id.
func newHeader(w http.ResponseWriter, r *http.Request) http.Header {
	h := http.Header{}
	if id := requestID(w, r); id != "" {
		h.Set("X-Request-Id", id)
	}
	return h
}

// maxCaptured bounds a captured (non-stream) proxy response.
const maxCaptured = 16 << 20

var errCaptureFull = errors.New("chat: upstream response too large")

// captureWriter is the ResponseWriter a non-stream call hands the proxy: it
// keeps the status, header and body for the service to translate.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.body.Len()+len(p) > maxCaptured {
		return 0, errCaptureFull
	}
	return c.body.Write(p)
}

// Flush is a no-op: the whole body is kept.
func (c *captureWriter) Flush() {}

// completion is a successful non-stream answer.
type completion struct {
	content string
	usage   openai.Usage
	model   string
	header  http.Header // for the client: x-ratelimit-*
}

// complete makes one non-stream call through the proxy.
func (s *Service) complete(w http.ResponseWriter, r *http.Request, endpoint, user string, body []byte) (*completion, *apiError) {
	cw := &captureWriter{header: newHeader(w, r)}
	aborted := s.serveProxy(cw, internalRequest(r, endpoint, user, body))
	switch {
	case aborted:
		return nil, &apiError{Status: http.StatusBadGateway, Message: "the upstream response broke off",
			Header: passHeaders(cw.header)}
	case cw.status == 0:
		if r.Context().Err() != nil {
			return nil, &apiError{Status: 499, Message: "the request was cancelled"}
		}
		return nil, &apiError{Status: http.StatusBadGateway, Message: "the gateway produced no response"}
	case cw.status != http.StatusOK:
		return nil, proxyError(cw.status, cw.header, cw.body.Bytes())
	}
	c, e := parseCompletion(cw.body.Bytes())
	if c != nil {
		c.header = passHeaders(cw.header)
	}
	return c, e
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

// secretPattern matches things that look like credentials: gateway keys,
// provider keys and bearer tokens, even partly masked ones.
var secretPattern = regexp.MustCompile(`(?i)\b(tg-|sk-|sk_|key-|bearer\s+)[A-Za-z0-9_*\-]{4,}`)

// redact removes credentials an upstream or a driver may quote in an error.
func redact(s string) string {
	return secretPattern.ReplaceAllString(s, "[redacted]")
}

// beginTurn validates the request, resolves the conversation and takes its
// lock. With a gateway key that does not authenticate, the bare message is
// still sent through the proxy, so the refusal is answered and recorded
// exactly as on /v1; its answer is returned as the error.
func (s *Service) beginTurn(w http.ResponseWriter, r *http.Request, endpoint string) (*turn, func(), *apiError) {
	req, e := readRequest(w, r)
	if e != nil {
		return nil, nil, e
	}
	t := &turn{req: req, model: req.Model, asked: time.Now(), endpoint: endpoint}
	if t.model == "" {
		t.model = s.opts.DefaultModel
	}
	keyID, authErr := s.keyID(r)
	if authErr != nil {
		if authErr.Status == http.StatusUnauthorized {
			body := t.upstreamBody([]wireMessage{{Role: "user", Content: req.message}}, false)
			if _, e := s.complete(w, r, endpoint, req.User, body); e != nil {
				return nil, nil, e
			}
			// Only a proxy without a gate gets here; the key still failed.
		}
		return nil, nil, authErr
	}
	if t.key, e = conversationKey(r, keyID, req.User, req.Conversation); e != nil {
		return nil, nil, e
	}
	release, e := s.lock(r.Context(), t.key)
	if e != nil {
		return nil, nil, e
	}
	return t, release, nil
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
	t, release, e := s.beginTurn(w, r, endpoint)
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
	if stream {
		s.stream(w, r, t, msgs)
		return
	}
	c, e := s.complete(w, r, endpoint, t.key.User, t.upstreamBody(msgs, false))
	if e != nil {
		s.writeError(w, e)
		return
	}
	if c.model == "" {
		c.model = t.model
	}
	for k, v := range c.header {
		w.Header()[k] = v
	}
	out := map[string]any{"success": true, "response": c.content, "usage": toUsage(c.usage),
		"model": c.model, "conversation": t.key.Conversation}
	if err := s.remember(r.Context(), t.key, t.req.message, c.content, t.asked); err != nil {
		s.logRememberFailure(w, r, err)
		out["warning"] = "the reply could not be saved to the conversation history"
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) logRememberFailure(w http.ResponseWriter, r *http.Request, err error) {
	s.log.LogAttrs(r.Context(), slog.LevelError, "chat: saving the turn failed",
		slog.String("request_id", requestID(w, r)), slog.String("error", redact(err.Error())))
}
