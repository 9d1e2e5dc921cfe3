package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/store"
)

// maxNameLen bounds key names; they show up in tables and logs.
const maxNameLen = 200

// keyRequest is the body of POST /admin/keys and PATCH /admin/keys/{id}.
// Pointers tell "absent" (PATCH keeps the current value) from zero.
type keyRequest struct {
	Name        *string   `json:"name"`
	Models      *[]string `json:"models"`
	RPM         *int      `json:"rpm"`
	TPM         *int      `json:"tpm"`
	MaxParallel *int      `json:"max_parallel"`
	// Budget in the deployment currency as auth.ParseBudget reads it
	// ("10CNY/day", "10/day"); "" or "none" clears.
	Budget *string `json:"budget"`
	// Expires is a lifetime from now ("30d"); "" or "never" clears the expiry.
	Expires   *string    `json:"expires"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// createdKey is a key info with its plaintext, answered exactly once (on
// create and rotate).
type createdKey struct {
	Key string `json:"key"`
	auth.KeyInfo
}

// options overlays req on base and validates the result, so that a bad
// value is a 400 naming its field rather than an opaque Manager error.
func (req *keyRequest) options(base auth.CreateOptions, now time.Time, currency string) (auth.CreateOptions, *openai.Error) {
	o := base
	if req.Name != nil {
		o.Name = strings.TrimSpace(*req.Name)
		if o.Name == "" {
			return o, badParam("name", "name must not be empty")
		}
		if len(o.Name) > maxNameLen {
			return o, badParam("name", fmt.Sprintf("name is longer than %d bytes", maxNameLen))
		}
	}
	if req.Models != nil {
		o.Models = *req.Models
	}
	for _, f := range []struct {
		name string
		src  *int
		dst  *int
	}{{"rpm", req.RPM, &o.RPM}, {"tpm", req.TPM, &o.TPM}, {"max_parallel", req.MaxParallel, &o.MaxParallel}} {
		if f.src == nil {
			continue
		}
		if *f.src < 0 {
			return o, badParam(f.name, f.name+" must not be negative (0 means the server default)")
		}
		*f.dst = *f.src
	}
	if req.Budget != nil {
		if _, _, err := auth.ParseBudget(*req.Budget, currency); err != nil {
			return o, badParam("budget", err.Error())
		}
		o.Budget = *req.Budget
	}
	if req.Expires != nil && req.ExpiresAt != nil {
		return o, badParam("expires", "give either expires or expires_at, not both")
	}
	if req.Expires != nil {
		o.Expires, o.ExpiresAt = "", time.Time{}
		if e := strings.TrimSpace(*req.Expires); e != "" && !strings.EqualFold(e, "never") {
			d, err := auth.ParseDuration(e)
			if err != nil {
				return o, badParam("expires", err.Error())
			}
			if d <= 0 {
				return o, badParam("expires", "expires must be a positive duration such as 30d")
			}
			o.Expires = e
		}
	}
	if req.ExpiresAt != nil {
		if !req.ExpiresAt.After(now) {
			return o, badParam("expires_at", "expires_at must be in the future")
		}
		o.Expires, o.ExpiresAt = "", *req.ExpiresAt
	}
	if o.Expires == "" && !o.ExpiresAt.IsZero() && !o.ExpiresAt.After(now) {
		return o, badParam("expires", "the key has expired; give a new expires or expires_at to change it")
	}
	return o, nil
}

// keyError maps a Manager error to a response.
func (h *handler) keyError(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeErr(w, notFound(fmt.Sprintf("no key with id %q", r.PathValue("id"))))
	case errors.Is(err, auth.ErrKeyRevoked):
		writeErr(w, openai.NewError(http.StatusConflict, openai.TypeInvalidRequest, "key_revoked",
			"the key is revoked; create a new key instead"))
	default:
		h.internalErr(w, r, op, err)
	}
}

// info returns the listing entry of key id, or an error wrapping
// store.ErrNotFound. The Manager only lists, and key counts are small.
func (h *handler) info(ctx context.Context, id string) (auth.KeyInfo, error) {
	if scope, ok := KeyScope(ctx); ok && scope != id {
		return auth.KeyInfo{}, fmt.Errorf("key %s: %w", id, store.ErrNotFound)
	}
	all, err := h.opts.Keys.List(ctx)
	if err != nil {
		return auth.KeyInfo{}, err
	}
	for _, k := range all {
		if k.ID == id {
			return k, nil
		}
	}
	return auth.KeyInfo{}, fmt.Errorf("key %s: %w", id, store.ErrNotFound)
}

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) {
	all, err := h.opts.Keys.List(r.Context())
	if err != nil {
		h.internalErr(w, r, "list keys", err)
		return
	}
	if scope, ok := KeyScope(r.Context()); ok {
		all = slices.DeleteFunc(all, func(k auth.KeyInfo) bool { return k.ID != scope })
	}
	if all == nil {
		all = []auth.KeyInfo{}
	}
	h.writeJSON(w, r, http.StatusOK, map[string]any{"data": all, "currency": h.currency})
}

func (h *handler) getKey(w http.ResponseWriter, r *http.Request) {
	info, err := h.info(r.Context(), r.PathValue("id"))
	if err != nil {
		h.keyError(w, r, "get key", err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, info)
}

func (h *handler) createKey(w http.ResponseWriter, r *http.Request) {
	var req keyRequest
	if e := decodeBody(w, r, &req); e != nil {
		writeErr(w, e)
		return
	}
	if req.Name == nil {
		writeErr(w, badParam("name", "name is required"))
		return
	}
	opts, e := req.options(auth.CreateOptions{}, h.now(), h.currency)
	if e != nil {
		writeErr(w, e)
		return
	}
	plaintext, k, err := h.opts.Keys.Create(r.Context(), opts)
	if err != nil {
		h.internalErr(w, r, "create key", err)
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "key created via admin API", keyAttrs(k)...)
	h.answerPlaintext(w, r, http.StatusCreated, plaintext, k)
}

// answerPlaintext answers a new secret with the key's listing entry.
func (h *handler) answerPlaintext(w http.ResponseWriter, r *http.Request, status int, plaintext string, k store.Key) {
	info, err := h.info(r.Context(), k.ID)
	if err != nil {
		// The key exists; a failed listing must not lose the only copy
		// of its secret, so answer what we have.
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "key listing failed after change", slog.Any("error", err))
		info = auth.KeyInfo{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Models: k.Models, RPM: k.RPM, TPM: k.TPM,
			MaxParallel: k.MaxParallel, BudgetNano: k.BudgetNano, BudgetPeriod: k.BudgetPeriod,
			ExpiresAt: k.ExpiresAt, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt, Status: "active", Currency: h.currency}
	}
	h.writeJSON(w, r, status, createdKey{Key: plaintext, KeyInfo: info})
}

func (h *handler) updateKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req keyRequest
	if e := decodeBody(w, r, &req); e != nil {
		writeErr(w, e)
		return
	}
	cur, err := h.opts.Store.GetKey(r.Context(), id)
	if err != nil {
		h.keyError(w, r, "update key", err)
		return
	}
	if !cur.RevokedAt.IsZero() {
		h.keyError(w, r, "update key", auth.ErrKeyRevoked)
		return
	}
	base := auth.CreateOptions{
		Name: cur.Name, Models: cur.Models, RPM: cur.RPM, TPM: cur.TPM, MaxParallel: cur.MaxParallel,
		Budget: auth.FormatBudget(cur.BudgetNano, cur.BudgetPeriod, h.currency), ExpiresAt: cur.ExpiresAt,
	}
	opts, e := req.options(base, h.now(), h.currency)
	if e != nil {
		writeErr(w, e)
		return
	}
	k, err := h.opts.Keys.Update(r.Context(), id, opts)
	if err != nil {
		h.keyError(w, r, "update key", err)
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "key updated via admin API", keyAttrs(k)...)
	h.getKey(w, r)
}

func (h *handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.opts.Keys.Revoke(r.Context(), id); err != nil {
		h.keyError(w, r, "revoke key", err)
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "key revoked via admin API", slog.String("key_id", id))
	h.getKey(w, r)
}

func (h *handler) rotateKey(w http.ResponseWriter, r *http.Request) {
	plaintext, k, err := h.opts.Keys.Rotate(r.Context(), r.PathValue("id"))
	if err != nil {
		h.keyError(w, r, "rotate key", err)
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "key rotated via admin API", keyAttrs(k)...)
	h.answerPlaintext(w, r, http.StatusOK, plaintext, k)
}

// keyAttrs describes k for the log: id, name and display prefix, never the
// hash or the secret.
func keyAttrs(k store.Key) []slog.Attr {
	return []slog.Attr{slog.String("key_id", k.ID), slog.String("key_name", k.Name), slog.String("prefix", k.Prefix)}
}
