// Package admin serves the admin JSON API under /admin/: the usage ledger
// (logs and usage reports), gateway key management, upstream health and
// config reload. Every route needs the admin token as a bearer token; without
// a configured token the whole API answers 404, so it cannot be opened by
// accident. Errors use the OpenAI error envelope, like the rest of the
// gateway, so one client-side error path covers both.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/upstream"
)

// maxBody bounds admin request bodies; key settings are tiny.
const maxBody = 1 << 20

// Options configures the admin API. Store and Keys are required when Token
// is set; the function fields are optional unless noted.
type Options struct {
	// Token is the admin bearer token. Empty disables the API: every route
	// answers 404.
	Token string
	// Store serves logs and usage.
	Store store.Store
	// Keys manages gateway keys (the same Manager the CLI uses).
	Keys *auth.Manager
	// Upstreams reports upstream health for GET /admin/upstreams; nil
	// reports none. It must never include API keys (upstream.Status does
	// not).
	Upstreams func() []upstream.Status
	// Reload re-reads the configuration for POST /admin/reload. On error
	// the running configuration must stay in place. Nil answers 404.
	Reload func(ctx context.Context) error
	// Recent returns up to n of the newest records from the live ring,
	// newest first, for GET /admin/recent. Nil answers 404.
	Recent func(n int) []ledger.Record
	// Currency is the deployment currency (config currency) of every
	// amount the API shows and of budgets it is given; empty means USD.
	// Keys should be a Manager with the same Currency.
	Currency string
	// Location is the configured time zone (config timezone) of usage
	// reports' day and hour groups; nil means UTC.
	Location *time.Location
	// Now is the clock for relative times ("24h" back from now); nil means
	// time.Now.
	Now func() time.Time
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
}

// handler holds the API's dependencies; its methods are the routes.
type handler struct {
	opts     Options
	now      func() time.Time
	log      *slog.Logger
	currency string // opts.Currency, upper case, USD when unset
}

// New returns the admin API handler. Its routes include the /admin/ prefix,
// so mount it at "/admin/" without stripping.
func New(opts Options) http.Handler {
	if opts.Token == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeErr(w, openai.NewError(http.StatusNotFound, openai.TypeNotFound, "admin_disabled",
				"admin API disabled: set an admin token to enable it"))
		})
	}
	api := NewAPI(opts)
	authed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.AdminTokenOK(r, opts.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-admin"`)
			writeErr(w, openai.NewError(http.StatusUnauthorized, openai.TypeAuthentication, "invalid_admin_token",
				"missing or invalid admin token: send Authorization: Bearer <admin token>"))
			return
		}
		api.ServeHTTP(w, r)
	})
	// Bearer tokens are not sent by browsers on their own, but a page may
	// hold the token in script; rejecting cross-origin unsafe requests
	// keeps another site from driving it.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, openai.NewError(http.StatusForbidden, openai.TypePermission, "cross_origin",
			"cross-origin request rejected"))
	}))
	return cop.Handler(authed)
}

// NewAPI returns the admin routes without any authentication (Token is
// ignored): the caller has authenticated the request already, as the
// dashboard does with its session cookie. Requests whose context carries a
// key scope (WithKeyScope) see only that key's data, read-only.
func NewAPI(opts Options) http.Handler {
	h := &handler{opts: opts, now: opts.Now, log: opts.Logger, currency: strings.ToUpper(opts.Currency)}
	if h.currency == "" {
		h.currency = auth.DefaultCurrency
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	// route registers pattern; scoped says whether a key holder may call it
	// (the handler then narrows the answer to the key).
	route := func(pattern string, scoped bool, f http.HandlerFunc) {
		keyRoute := strings.Contains(pattern, "/admin/keys")
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if _, ok := KeyScope(r.Context()); ok && !scoped {
				writeErr(w, openai.NewError(http.StatusForbidden, openai.TypePermission, "admin_only",
					"this route needs the admin; a key holder sees only its own key's data"))
				return
			}
			if keyRoute && h.opts.Keys == nil {
				writeErr(w, notFound("key management is off: gateway keys are disabled (TOLLGATE_AUTH=disabled)"))
				return
			}
			f(w, r)
		})
	}
	route("GET /admin/logs", true, h.listLogs)
	route("GET /admin/logs/{id}", true, h.getLog)
	route("GET /admin/usage", true, h.usage)
	route("GET /admin/keys", true, h.listKeys)
	route("POST /admin/keys", false, h.createKey)
	route("GET /admin/keys/{id}", true, h.getKey)
	route("PATCH /admin/keys/{id}", false, h.updateKey)
	route("POST /admin/keys/{id}/revoke", false, h.revokeKey)
	route("DELETE /admin/keys/{id}", false, h.revokeKey)
	route("POST /admin/keys/{id}/rotate", false, h.rotateKey)
	route("GET /admin/upstreams", false, h.upstreams)
	route("GET /admin/recent", true, h.recent)
	route("POST /admin/reload", false, h.reload)
	// The catch-all keeps unknown routes (and known paths with another
	// method) in the OpenAI envelope instead of the mux's plain text.
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, openai.NewError(http.StatusNotFound, openai.TypeNotFound, "not_found",
			fmt.Sprintf("no admin route %s %s", r.Method, r.URL.Path)))
	})
	return mux
}

// writeErr writes e in the OpenAI envelope with the request id the server
// middleware put on the response.
func writeErr(w http.ResponseWriter, e *openai.Error) {
	openai.WriteError(w, e, w.Header().Get("X-Request-Id"))
}

// badParam is a 400 naming the offending parameter.
func badParam(param, msg string) *openai.Error {
	e := openai.BadRequest("invalid_parameter", msg)
	e.Param = param
	return e
}

func notFound(msg string) *openai.Error {
	return openai.NewError(http.StatusNotFound, openai.TypeNotFound, "not_found", msg)
}

// internalErr logs err and answers a 500 that does not repeat it: store
// errors can name files, hosts or SQL.
func (h *handler) internalErr(w http.ResponseWriter, r *http.Request, op string, err error) {
	h.log.LogAttrs(r.Context(), slog.LevelError, "admin request failed",
		slog.String("op", op), slog.String("path", r.URL.Path),
		slog.String("request_id", w.Header().Get("X-Request-Id")), slog.Any("error", err))
	writeErr(w, openai.NewError(http.StatusInternalServerError, openai.TypeServer, "internal_error",
		op+" failed; see the server log"))
}

// writeJSON writes v with status.
func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.internalErr(w, r, "encode response", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // bodies may carry plaintext keys
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeBody reads one JSON object into dst, refusing unknown fields (a
// misspelled limit must not be silently ignored) and bodies over maxBody.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) *openai.Error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return openai.NewError(http.StatusRequestEntityTooLarge, openai.TypeInvalidRequest, "body_too_large",
				fmt.Sprintf("request body over %d bytes", maxBody))
		case errors.Is(err, io.EOF):
			return openai.BadRequest("invalid_json", "request body is empty; send a JSON object")
		}
		return openai.BadRequest("invalid_json", "invalid JSON body: "+err.Error())
	}
	if dec.More() {
		return openai.BadRequest("invalid_json", "request body must hold one JSON object")
	}
	return nil
}

func (h *handler) upstreams(w http.ResponseWriter, r *http.Request) {
	data := []upstream.Status{}
	if h.opts.Upstreams != nil {
		if s := h.opts.Upstreams(); s != nil {
			data = s
		}
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"data": data})
}

func (h *handler) reload(w http.ResponseWriter, r *http.Request) {
	if h.opts.Reload == nil {
		writeErr(w, notFound("config reload is not available"))
		return
	}
	if err := h.opts.Reload(r.Context()); err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "admin reload rejected", slog.Any("error", err))
		writeErr(w, openai.BadRequest("invalid_config", "reload failed, the running configuration stays: "+err.Error()))
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "config reloaded via admin API")
	h.writeJSON(w, r, http.StatusOK, map[string]bool{"reloaded": true})
}
