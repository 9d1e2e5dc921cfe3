package ui

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/internal/openai"
)

// loginRequest is the body of POST /ui/api/login: exactly one of the two.
type loginRequest struct {
	Token string `json:"token"` // the admin token
	Key   string `json:"key"`   // a gateway key
}

// sessionView is what the page learns about its session. The CSRF token is
// readable by the page on purpose: it must send it back in a header, which
// another origin cannot make it do.
type sessionView struct {
	Role    string `json:"role"` // "" when not signed in
	KeyID   string `json:"key_id,omitempty"`
	KeyName string `json:"key_name,omitempty"`
	CSRF    string `json:"csrf_token,omitempty"`
	Expires string `json:"expires_at,omitempty"`
}

func view(s session) sessionView {
	return sessionView{Role: s.role, KeyID: s.keyID, KeyName: s.keyName, CSRF: s.csrf,
		Expires: s.expires.UTC().Format("2006-01-02T15:04:05Z")}
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	client := h.clientIP(r)
	now := h.now()
	if blocked, wait := h.fails.blocked(client, now); blocked {
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		writeErr(w, openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, "too_many_sign_ins",
			"too many failed sign-ins from this address; wait a minute"))
		return
	}
	var req loginRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, openai.BadRequest("invalid_json", `send {"token": "<admin token>"} or {"key": "<gateway key>"}`))
		return
	}
	req.Token, req.Key = strings.TrimSpace(req.Token), strings.TrimSpace(req.Key)
	var s session
	switch {
	case req.Token != "" && req.Key != "":
		writeErr(w, openai.BadRequest("invalid_login", "give the admin token or a gateway key, not both"))
		return
	case req.Token != "":
		if !tokenEqual(req.Token, h.opts.AdminToken) {
			h.failed(w, r, client, "wrong admin token")
			return
		}
		s = session{role: RoleAdmin}
	case req.Key != "":
		if h.opts.LookupKey == nil {
			h.failed(w, r, client, "key sign-in is not available")
			return
		}
		k, err := h.opts.LookupKey(req.Key)
		if err != nil {
			h.failed(w, r, client, "unknown, revoked or expired gateway key")
			return
		}
		s = session{role: RoleKey, keyID: k.ID, keyName: k.Name}
	default:
		writeErr(w, openai.BadRequest("invalid_login", `send {"token": "<admin token>"} or {"key": "<gateway key>"}`))
		return
	}
	h.startSession(w, r, s)
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "dashboard sign-in", slog.String("role", s.role),
		slog.String("key_id", s.keyID), slog.String("client_ip", client))
}

// failed counts a wrong sign-in and answers 401 without saying which part
// was wrong beyond the kind of credential.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, client, msg string) {
	h.fails.fail(client, h.now())
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "dashboard sign-in refused", slog.String("client_ip", client),
		slog.String("reason", msg))
	writeErr(w, openai.NewError(http.StatusUnauthorized, openai.TypeAuthentication, "invalid_credentials", msg))
}

// startSession stores s, sets its cookie and answers the session view.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, s session) {
	s.expires = h.now().Add(h.opts.SessionTTL)
	id := h.sessions.create(s, h.now())
	s, _ = h.sessions.get(id, h.now())
	http.SetCookie(w, h.cookie(r, id, int(h.opts.SessionTTL.Seconds())))
	if r.Method == http.MethodGet {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, view(s))
}

func (h *Handler) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/ui", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.secure(r)}
}

// loginOnce signs an admin in with a one-time token (from serve --demo).
// It is a GET because it is opened from a terminal; the token is spent on
// first use, so a replayed or prefetched link signs nobody in twice.
func (h *Handler) loginOnce(w http.ResponseWriter, r *http.Request) {
	client := h.clientIP(r)
	if blocked, _ := h.fails.blocked(client, h.now()); blocked {
		writeErr(w, openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, "too_many_sign_ins",
			"too many failed sign-ins from this address; wait a minute"))
		return
	}
	if !h.sessions.useOnce(r.URL.Query().Get("token"), h.now()) {
		h.failed(w, r, client, "this sign-in link is used up or expired")
		return
	}
	h.startSession(w, r, session{role: RoleAdmin})
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	s, id, ok := h.current(r)
	if ok {
		if !tokenEqual(r.Header.Get("X-CSRF-Token"), s.csrf) {
			forbidden(w, "csrf_token", "missing or wrong X-CSRF-Token header")
			return
		}
		h.sessions.delete(id)
	}
	http.SetCookie(w, h.cookie(r, "", -1))
	writeJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
}

func (h *Handler) sessionInfo(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.current(r)
	if !ok {
		// 200, not 401: asking is how the page learns to show the sign-in
		// form, and is not an error.
		writeJSON(w, http.StatusOK, sessionView{})
		return
	}
	writeJSON(w, http.StatusOK, view(s))
}
