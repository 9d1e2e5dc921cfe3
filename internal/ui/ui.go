// Package ui serves the dashboard at /ui/: static files embedded in the
// binary (plain HTML, CSS and ES modules, with uPlot vendored for charts)
// and a small session layer in front of the admin JSON API.
//
// The page is rendered in the browser from JSON; the server renders no
// HTML templates, which keeps html/template (and its cost in binary size)
// out of the binary. Sign-in exchanges the admin token, or a gateway key,
// for an HttpOnly session cookie; the page never holds the admin token.
// Every state-changing request needs the session's CSRF token in the
// X-CSRF-Token header and passes http.CrossOriginProtection.
package ui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/store"
)

// CookieName is the session cookie.
const CookieName = "tollgate_session"

// Defaults.
const (
	DefaultSessionTTL = 12 * time.Hour
	// LoginFailures wrong sign-ins per client per minute are allowed.
	LoginFailures = 5
)

// Options configures the dashboard.
type Options struct {
	// AdminToken signs the admin in; empty allows no admin sign-in (a
	// one-time link from OneTimeLogin still works).
	AdminToken string
	// API is the admin API without its own auth (admin.NewAPI); the
	// dashboard calls it under /ui/api/admin/ with the session's rights.
	API http.Handler
	// LookupKey authenticates a gateway key's plaintext (auth.Cache.Lookup:
	// a SHA-256 lookup); nil disables key-holder sign-in.
	LookupKey func(plaintext string) (*store.Key, error)
	// GetKey re-checks a key holder's key on every request, so revoking
	// or expiring the key ends its sessions. Required with LookupKey.
	GetKey func(ctx context.Context, id string) (store.Key, error)
	// SessionTTL is a session's lifetime; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// TrustedProxies may set X-Forwarded-Proto and X-Forwarded-For.
	// Loopback peers are always trusted (a reverse proxy on the host).
	TrustedProxies []netip.Prefix
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Handler serves /ui/. Mount it at "/ui/" (and "/ui") without stripping.
type Handler struct {
	opts     Options
	now      func() time.Time
	log      *slog.Logger
	assets   *assets
	sessions *sessions
	fails    *failLimiter
	root     http.Handler
}

// New builds the dashboard handler.
func New(opts Options) (*Handler, error) {
	a, err := loadAssets()
	if err != nil {
		return nil, err
	}
	h := &Handler{opts: opts, now: opts.Now, log: opts.Logger, assets: a, sessions: newSessions(),
		fails: newFailLimiter(LoginFailures, time.Minute)}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.opts.SessionTTL <= 0 {
		h.opts.SessionTTL = DefaultSessionTTL
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /ui/{$}", h.index)
	mux.HandleFunc("GET /ui/assets/{version}/{file...}", h.asset)
	mux.HandleFunc("POST /ui/api/login", h.login)
	mux.HandleFunc("GET /ui/api/login/once", h.loginOnce)
	mux.HandleFunc("POST /ui/api/logout", h.logout)
	mux.HandleFunc("GET /ui/api/session", h.sessionInfo)
	mux.HandleFunc("/ui/api/admin/", h.adminAPI)
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, openai.NewError(http.StatusNotFound, openai.TypeNotFound, "not_found",
			fmt.Sprintf("no dashboard route %s %s", r.Method, r.URL.Path)))
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, openai.NewError(http.StatusForbidden, openai.TypePermission, "cross_origin",
			"cross-origin request rejected"))
	}))
	h.root = securityHeaders(cop.Handler(mux))
	return h, nil
}

// ServeHTTP serves the dashboard.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

// AssetVersion is the current asset directory name (for tests and logs).
func (h *Handler) AssetVersion() string { return h.assets.version }

// OneTimeLogin returns a single-use path ("/ui/api/login/once?token=...")
// that signs an admin in once within ttl. serve --demo prints it.
func (h *Handler) OneTimeLogin(ttl time.Duration) string {
	now := h.now()
	return "/ui/api/login/once?token=" + h.sessions.newOnce(now, now.Add(ttl))
}

// csp allows only same-origin scripts, styles, images and connections, and
// no framing. uPlot styles its elements through the CSSOM (element.style),
// which style-src does not govern, so no 'unsafe-inline' is needed.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	h.assets.index.serve(w, r, "no-cache")
}

func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	f, ok := h.assets.files[r.PathValue("file")]
	if !ok || r.PathValue("version") != h.assets.version {
		// An old version's URL after an upgrade: a 404 (not stale bytes
		// under an immutable header); the page reloads index.html.
		writeErr(w, openai.NewError(http.StatusNotFound, openai.TypeNotFound, "not_found", "no such asset"))
		return
	}
	f.serve(w, r, "public, max-age=31536000, immutable")
}

// writeErr writes e in the OpenAI envelope, like the rest of the gateway.
func writeErr(w http.ResponseWriter, e *openai.Error) {
	w.Header().Set("Cache-Control", "no-store")
	openai.WriteError(w, e, w.Header().Get("X-Request-Id"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func unauthorized(w http.ResponseWriter, msg string) {
	writeErr(w, openai.NewError(http.StatusUnauthorized, openai.TypeAuthentication, "no_session", msg))
}

func forbidden(w http.ResponseWriter, code, msg string) {
	writeErr(w, openai.NewError(http.StatusForbidden, openai.TypePermission, code, msg))
}

// current returns the request's live session and its cookie value. A key
// holder's session ends as soon as its key is revoked or expires.
func (h *Handler) current(r *http.Request) (session, string, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return session{}, "", false
	}
	s, ok := h.sessions.get(c.Value, h.now())
	if !ok {
		return s, "", false
	}
	if s.role == RoleKey {
		if h.opts.GetKey == nil {
			return s, "", false
		}
		k, err := h.opts.GetKey(r.Context(), s.keyID)
		if err != nil || !k.RevokedAt.IsZero() || (!k.ExpiresAt.IsZero() && !h.now().Before(k.ExpiresAt)) {
			h.sessions.delete(c.Value)
			return s, "", false
		}
	}
	return s, c.Value, true
}

// adminAPI forwards /ui/api/admin/X to the admin API's /admin/X with the
// session's rights: the admin's in full, a key holder's scoped to its key.
func (h *Handler) adminAPI(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.current(r)
	if !ok {
		unauthorized(w, "sign in first (no session, or it expired)")
		return
	}
	if !safeMethod(r.Method) && !tokenEqual(r.Header.Get("X-CSRF-Token"), s.csrf) {
		forbidden(w, "csrf_token", "missing or wrong X-CSRF-Token header")
		return
	}
	if h.opts.API == nil {
		writeErr(w, openai.NewError(http.StatusNotFound, openai.TypeNotFound, "not_found", "the admin API is not available"))
		return
	}
	r2 := r.Clone(r.Context())
	if s.role == RoleKey {
		r2 = r2.WithContext(admin.WithKeyScope(r.Context(), s.keyID))
	}
	r2.URL.Path = "/admin/" + strings.TrimPrefix(r.URL.Path, "/ui/api/admin/")
	r2.URL.RawPath = ""
	h.opts.API.ServeHTTP(w, r2)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// tokenEqual compares secrets in constant time; an empty want never matches.
func tokenEqual(got, want string) bool {
	if want == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// clientIP is the peer address, or the first X-Forwarded-For hop when the
// peer is a trusted proxy.
func (h *Handler) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if h.trusted(host) {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			last := strings.TrimSpace(xff[strings.LastIndexByte(xff, ',')+1:])
			if _, err := netip.ParseAddr(last); err == nil {
				return last
			}
		}
	}
	return host
}

func (h *Handler) trusted(host string) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	for _, p := range h.opts.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// secure reports whether the browser reached us over TLS: directly, or
// through a trusted proxy that says so.
func (h *Handler) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return h.trusted(host) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
