// Package chat is tollgate's plain JSON conversation API, for applications
// that do not want the OpenAI shape:
//
//	POST   /api/chat             {message, model?, user?, conversation?, system?, temperature?, max_tokens?}
//	POST   /api/chat/stream      the same body, answered as SSE {"content": ...} events
//	GET    /api/models           the models the caller's key may use
//	GET    /api/chat/history     ?user=&conversation=
//	DELETE /api/chat/history     ?user=&conversation=
//
// Every model call runs THROUGH the /v1 proxy as an internal
// POST /v1/chat/completions carrying the client's credentials, so gateway
// keys, model permissions, rate limits, budgets, retries, routing and the
// ledger apply exactly as they do for /v1 (the ledger row's endpoint is
// "/api/chat" or "/api/chat/stream").
//
// Conversations are remembered per (gateway key, user, conversation): one key
// can never read or clear another key's history. Within one process, calls on
// the same conversation are serialized, so a second call's context includes
// the first call's turn. Across replicas each turn is appended atomically,
// but two simultaneous calls on different replicas may not see each other's
// turn in their context.
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/store"
)

// Defaults applied to zero Options fields.
const (
	DefaultContextMessages = 10
	DefaultKeepMessages    = 20
	// MaxBody bounds a request body of the conversation API.
	MaxBody = 1 << 20
	// maxNameLen bounds user and conversation ids (they are store keys).
	maxNameLen = 256
	// maxInFlight bounds the conversations with a call in flight in this
	// process, which bounds the lock table.
	maxInFlight = 10_000
	// storeTimeout bounds store calls that must outlive the client.
	storeTimeout = 10 * time.Second
)

// Options configures a Service. Proxy and Store are required.
type Options struct {
	// Engine runs every model call (admission, routing, the ledger).
	Engine Engine
	// Store keeps conversation history.
	Store store.ConversationStore
	// Keys authenticates the caller's gateway key to scope history and the
	// model list; nil means auth is disabled and every caller shares the
	// key id "".
	Keys *auth.Cache
	// Models lists the models the gateway serves (for GET /api/models);
	// nil answers an empty list.
	Models func(ctx context.Context) ([]string, error)
	// DefaultModel is used when a request names none; when it is empty too
	// the proxy's default applies.
	DefaultModel string
	// ContextMessages is how many history messages are sent upstream with
	// a new message: 0 means DefaultContextMessages, negative means none.
	ContextMessages int
	// KeepMessages is how many messages a conversation keeps: 0 means
	// DefaultKeepMessages, negative means all.
	KeepMessages int
	// ContextTokens, when > 0, drops the oldest context messages until the
	// estimated prompt fits (the new message is always sent).
	ContextTokens int
	// SystemPrompt is sent first unless the request has its own "system".
	SystemPrompt string
	// Development adds error details to error answers.
	Development bool
	// Estimate estimates the tokens of a text for ContextTokens; nil uses
	// one token per four bytes.
	Estimate func([]byte) int64
	// Logger receives warnings (never message content); nil discards.
	Logger *slog.Logger
}

// Service is the conversation API, an http.Handler to mount at "/api/".
type Service struct {
	opts  Options
	log   *slog.Logger
	locks *keyedLocks
}

// New returns a Service with defaults applied.
func New(opts Options) *Service {
	if opts.ContextMessages == 0 {
		opts.ContextMessages = DefaultContextMessages
	}
	if opts.KeepMessages == 0 {
		opts.KeepMessages = DefaultKeepMessages
	}
	if opts.Estimate == nil {
		opts.Estimate = func(b []byte) int64 { return int64(len(b)+3) / 4 }
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{opts: opts, log: log, locks: newKeyedLocks(maxInFlight)}
}

// ServeHTTP routes the /api/ requests.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var allow string
	switch r.URL.Path {
	case "/api/chat":
		if r.Method == http.MethodPost {
			s.handleChat(w, r, false)
			return
		}
		allow = "POST"
	case "/api/chat/stream":
		if r.Method == http.MethodPost {
			s.handleChat(w, r, true)
			return
		}
		allow = "POST"
	case "/api/models":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.handleModels(w, r)
			return
		}
		allow = "GET"
	case "/api/chat/history":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.handleHistory(w, r)
			return
		case http.MethodDelete:
			s.handleClear(w, r)
			return
		}
		allow = "GET, DELETE"
	default:
		s.writeError(w, &apiError{Status: http.StatusNotFound, Message: "unknown URL: " + r.Method + " " + r.URL.Path})
		return
	}
	w.Header().Set("Allow", allow)
	s.writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " not allowed; use " + allow})
}

// apiError is an error answer: {success:false, error, details?}.
type apiError struct {
	Status  int
	Message string
	// Details are shown only in development.
	Details map[string]any
	// Header is copied to the response (Retry-After, x-ratelimit-*).
	Header http.Header
}

func (e *apiError) Error() string { return e.Message }

func (s *Service) writeError(w http.ResponseWriter, e *apiError) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	body := map[string]any{"success": false, "error": e.Message}
	if s.opts.Development && len(e.Details) > 0 {
		body["details"] = e.Details
	}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain values are written; cannot happen
		status, b = http.StatusInternalServerError, []byte(`{"success":false,"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// internalError answers a failure of the gateway itself (the store); the
// cause is logged and shown only in development.
func (s *Service) internalError(w http.ResponseWriter, r *http.Request, what string, err error) *apiError {
	s.log.LogAttrs(r.Context(), slog.LevelError, "chat: "+what,
		slog.String("request_id", requestID(w, r)), slog.String("error", redact(err.Error())))
	return &apiError{Status: http.StatusInternalServerError, Message: what,
		Details: map[string]any{"cause": redact(err.Error())}}
}

// requestID is the id the server middleware put on the response, or the one
// the client sent.
func requestID(w http.ResponseWriter, r *http.Request) string {
	if id := w.Header().Get("X-Request-Id"); id != "" {
		return id
	}
	return r.Header.Get("X-Request-Id")
}

// caller authenticates the caller's gateway key; nil with auth off.
func (s *Service) caller(r *http.Request) (*store.Key, *apiError) {
	if s.opts.Keys == nil {
		return nil, nil
	}
	k, err := s.opts.Keys.Lookup(auth.KeyFromRequest(r))
	if err != nil {
		if errors.Is(err, auth.ErrNotReady) {
			return nil, &apiError{Status: http.StatusServiceUnavailable, Message: err.Error(),
				Header: http.Header{"Retry-After": {"1"}}}
		}
		// auth's messages are written for clients and never quote the key.
		return nil, &apiError{Status: http.StatusUnauthorized, Message: err.Error()}
	}
	return k, nil
}

// keyID is the caller's key id ("" with auth off).
func (s *Service) keyID(r *http.Request) (string, *apiError) {
	k, e := s.caller(r)
	if k == nil {
		return "", e
	}
	return k.ID, nil
}

// conversationKey builds the store key from the caller's key id and the
// user and conversation names (body values win over the fallbacks).
func conversationKey(r *http.Request, keyID, user, conv string) (store.ConversationKey, *apiError) {
	if user == "" {
		user = strings.TrimSpace(r.Header.Get("X-Tollgate-User"))
	}
	if user == "" {
		user = "default"
	}
	if conv == "" {
		conv = "default"
	}
	if len(user) > maxNameLen || len(conv) > maxNameLen {
		return store.ConversationKey{}, &apiError{Status: http.StatusBadRequest,
			Message: "user and conversation must be at most 256 bytes"}
	}
	return store.ConversationKey{KeyID: keyID, User: user, Conversation: conv}, nil
}

// handleModels answers GET /api/models, filtered by the caller's key.
func (s *Service) handleModels(w http.ResponseWriter, r *http.Request) {
	key, e := s.caller(r)
	if e != nil {
		s.writeError(w, e)
		return
	}
	models := []string{}
	if s.opts.Models != nil {
		all, err := s.opts.Models(r.Context())
		if err != nil {
			s.writeError(w, &apiError{Status: http.StatusBadGateway, Message: "could not list models",
				Details: map[string]any{"cause": redact(err.Error())}})
			return
		}
		for _, m := range all {
			if key == nil || auth.ModelAllowed(key, m) {
				models = append(models, m)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "models": models})
}

// historyKey resolves the caller and the query's user and conversation.
func (s *Service) historyKey(r *http.Request) (store.ConversationKey, *apiError) {
	keyID, e := s.keyID(r)
	if e != nil {
		return store.ConversationKey{}, e
	}
	q := r.URL.Query()
	return conversationKey(r, keyID, strings.TrimSpace(q.Get("user")), strings.TrimSpace(q.Get("conversation")))
}

// handleHistory answers GET /api/chat/history.
func (s *Service) handleHistory(w http.ResponseWriter, r *http.Request) {
	ck, e := s.historyKey(r)
	if e != nil {
		s.writeError(w, e)
		return
	}
	msgs, err := s.opts.Store.History(r.Context(), ck, 0)
	if err != nil {
		s.writeError(w, s.internalError(w, r, "could not read the conversation history", err))
		return
	}
	if msgs == nil {
		msgs = []store.Message{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "user": ck.User,
		"conversation": ck.Conversation, "messages": msgs})
}

// handleClear answers DELETE /api/chat/history. It waits for a call in
// flight on the conversation, so that call's turn cannot reappear after it.
func (s *Service) handleClear(w http.ResponseWriter, r *http.Request) {
	ck, e := s.historyKey(r)
	if e != nil {
		s.writeError(w, e)
		return
	}
	release, e := s.lock(r.Context(), ck)
	if e != nil {
		s.writeError(w, e)
		return
	}
	defer release()
	n, err := s.opts.Store.ClearHistory(r.Context(), ck)
	if err != nil {
		s.writeError(w, s.internalError(w, r, "could not clear the conversation history", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "deleted": n})
}
