package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/limit"
	"github.com/tollgate/tollgate/internal/store"
)

// KeyStore is the part of store.KeyStore the Manager uses.
type KeyStore interface {
	CreateKey(ctx context.Context, k store.Key) error
	UpdateKey(ctx context.Context, k store.Key) error
	GetKey(ctx context.Context, id string) (store.Key, error)
	ListKeys(ctx context.Context) ([]store.Key, error)
	KeySpend(ctx context.Context, keyID string, since time.Time) (int64, error)
	KeysLastUsed(ctx context.Context) (map[string]time.Time, error)
}

// ErrKeyRevoked is returned when rotating or updating a revoked key.
var ErrKeyRevoked = errors.New("the key is revoked")

// Manager creates, lists, rotates and revokes gateway keys. It is the one
// implementation behind both `tollgate keys ...` and the admin API.
type Manager struct {
	ks  KeyStore
	now func() time.Time

	// Currency is the deployment currency (config currency): budgets are
	// given and shown in it. Empty means USD. Set it before use.
	Currency string
	// Location is the time zone of budget periods (config timezone), as
	// the limiters use it, so that listed spend covers the same period the
	// budget is enforced over. Nil means UTC. Set it before use.
	Location *time.Location

	// OnChange, if set, is called after every successful change, typically
	// with Cache.Invalidate so this replica sees the change at once. Set it
	// before the Manager is used.
	OnChange func()
}

// NewManager returns a Manager over ks; now nil means time.Now.
func NewManager(ks KeyStore, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	return &Manager{ks: ks, now: now}
}

// CreateOptions describes a key to create (or, for Update, the new settings).
type CreateOptions struct {
	Name string
	// Models lists the models the key may call, with '*' globs ("gpt-4o",
	// "claude-*"); empty allows all. See ModelAllowed.
	Models []string
	// RPM, TPM and MaxParallel cap requests per minute, tokens per minute
	// and requests in flight; 0 means the server's default.
	RPM, TPM, MaxParallel int
	// Budget is a spend limit in the Manager's currency as ParseBudget
	// reads it ("10CNY/day"); empty means none.
	Budget string
	// Expires is a lifetime from now as ParseDuration reads it ("30d");
	// ExpiresAt is an absolute expiry. Set at most one; neither means never.
	Expires   string
	ExpiresAt time.Time
}

// KeyInfo is what listings show about a key: everything but its hash.
type KeyInfo struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Prefix      string   `json:"prefix"`
	Models      []string `json:"models"`
	RPM         int      `json:"rpm"`
	TPM         int      `json:"tpm"`
	MaxParallel int      `json:"max_parallel"`
	// BudgetNano is in nano-units of Currency (the JSON name predates the
	// currency setting and is kept for compatibility); so is the spend.
	BudgetNano   int64     `json:"budget_nano_usd"`
	BudgetPeriod string    `json:"budget_period"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// SpendThisPeriod is the ledger's spend since PeriodStart (all time
	// when the key has no budget), in nano-units of Currency.
	SpendThisPeriod int64 `json:"spend_this_period_nano_usd"`
	// PeriodStart is the start of the current budget period in the
	// configured time zone; zero for "total" or no budget.
	PeriodStart time.Time `json:"period_start,omitzero"`
	// Currency is the deployment currency of the amounts.
	Currency string `json:"currency"`
	// LastUsed is the time of the key's newest ledger row; zero if never.
	LastUsed time.Time `json:"last_used,omitzero"`
	// Status is "active", "revoked" or "expired" at listing time.
	Status string `json:"status"`
}

// keyStatus reports "active", "revoked" or "expired".
func keyStatus(k *store.Key, now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}

// newKeyID returns a random key id ("key_" and 16 base32 characters). Ids
// are public: they appear in URLs, logs and the ledger.
func newKeyID() string {
	return "key_" + strings.ToLower(rand.Text()[:16])
}

// apply validates opts and copies them onto k.
func (o CreateOptions) apply(k *store.Key, now time.Time, currency string) error {
	if o.RPM < 0 || o.TPM < 0 || o.MaxParallel < 0 {
		return errors.New("rpm, tpm and max_parallel must not be negative")
	}
	nano, period, err := ParseBudget(o.Budget, currency)
	if err != nil {
		return err
	}
	var expires time.Time
	switch {
	case o.Expires != "" && !o.ExpiresAt.IsZero():
		return errors.New("give either a lifetime or an expiry time, not both")
	case o.Expires != "":
		d, err := ParseDuration(o.Expires)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("expiry must be in the future")
		}
		expires = now.Add(d).UTC()
	case !o.ExpiresAt.IsZero():
		if !o.ExpiresAt.After(now) {
			return errors.New("expiry must be in the future")
		}
		expires = o.ExpiresAt.UTC()
	}
	var models []string
	for _, m := range o.Models {
		if m = strings.TrimSpace(m); m != "" {
			models = append(models, m)
		}
	}
	k.Name = strings.TrimSpace(o.Name)
	k.Models = models
	k.RPM, k.TPM, k.MaxParallel = o.RPM, o.TPM, o.MaxParallel
	k.BudgetNano, k.BudgetPeriod = nano, period
	k.ExpiresAt = expires
	return nil
}

// Create makes a new key and returns its plaintext, which is shown once and
// never stored.
func (m *Manager) Create(ctx context.Context, opts CreateOptions) (string, store.Key, error) {
	now := m.now().UTC()
	var k store.Key
	if err := opts.apply(&k, now, m.Currency); err != nil {
		return "", store.Key{}, fmt.Errorf("auth: create key: %w", err)
	}
	if k.Name == "" {
		return "", store.Key{}, errors.New("auth: create key: a name is required")
	}
	plaintext, hash, prefix := GenerateKey()
	k.ID, k.Hash, k.Prefix = newKeyID(), hash, prefix
	k.CreatedAt, k.UpdatedAt = now, now
	if err := m.ks.CreateKey(ctx, k); err != nil {
		return "", store.Key{}, fmt.Errorf("auth: create key: %w", err)
	}
	m.changed()
	return plaintext, k, nil
}

// Update replaces the settings of key id with opts (an empty Name keeps
// the current name). The secret does not change.
func (m *Manager) Update(ctx context.Context, id string, opts CreateOptions) (store.Key, error) {
	k, err := m.ks.GetKey(ctx, id)
	if err != nil {
		return store.Key{}, fmt.Errorf("auth: update key %s: %w", id, err)
	}
	if !k.RevokedAt.IsZero() {
		return store.Key{}, fmt.Errorf("auth: update key %s: %w", id, ErrKeyRevoked)
	}
	now := m.now().UTC()
	name := k.Name
	if err := opts.apply(&k, now, m.Currency); err != nil {
		return store.Key{}, fmt.Errorf("auth: update key %s: %w", id, err)
	}
	if k.Name == "" {
		k.Name = name
	}
	k.UpdatedAt = now
	if err := m.ks.UpdateKey(ctx, k); err != nil {
		return store.Key{}, fmt.Errorf("auth: update key %s: %w", id, err)
	}
	m.changed()
	return k, nil
}

// List returns every key, revoked ones included, oldest first, with its
// spend this period and last use. It costs one spend query per key, so it
// is for management pages, not for the request path.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	keys, err := m.ks.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	lastUsed, err := m.ks.KeysLastUsed(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	now := m.now()
	out := make([]KeyInfo, 0, len(keys))
	for i := range keys {
		k := &keys[i]
		// An unknown period (none) starts at the zero time: all time.
		start, _ := limit.PeriodStartIn(k.BudgetPeriod, now, m.Location)
		spend, err := m.ks.KeySpend(ctx, k.ID, start)
		if err != nil {
			return nil, fmt.Errorf("auth: spend of key %s: %w", k.ID, err)
		}
		models := k.Models
		if models == nil {
			models = []string{} // JSON [] (all models), not null
		}
		out = append(out, KeyInfo{
			ID: k.ID, Name: k.Name, Prefix: k.Prefix, Models: models,
			RPM: k.RPM, TPM: k.TPM, MaxParallel: k.MaxParallel,
			BudgetNano: k.BudgetNano, BudgetPeriod: k.BudgetPeriod,
			ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt,
			CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt,
			SpendThisPeriod: spend, PeriodStart: start, Currency: m.currency(), LastUsed: lastUsed[k.ID],
			Status: keyStatus(k, now),
		})
	}
	return out, nil
}

// Revoke marks key id revoked. Revoking a revoked key changes nothing.
// Errors wrap store.ErrNotFound for an unknown id.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	k, err := m.ks.GetKey(ctx, id)
	if err != nil {
		return fmt.Errorf("auth: revoke key %s: %w", id, err)
	}
	if !k.RevokedAt.IsZero() {
		return nil
	}
	now := m.now().UTC()
	k.RevokedAt, k.UpdatedAt = now, now
	if err := m.ks.UpdateKey(ctx, k); err != nil {
		return fmt.Errorf("auth: revoke key %s: %w", id, err)
	}
	m.changed()
	return nil
}

// Rotate gives key id a new secret, keeping its id, name, limits and
// history; the old secret stops working as soon as caches reload. It
// returns the new plaintext, shown once.
func (m *Manager) Rotate(ctx context.Context, id string) (string, store.Key, error) {
	k, err := m.ks.GetKey(ctx, id)
	if err != nil {
		return "", store.Key{}, fmt.Errorf("auth: rotate key %s: %w", id, err)
	}
	if !k.RevokedAt.IsZero() {
		return "", store.Key{}, fmt.Errorf("auth: rotate key %s: %w", id, ErrKeyRevoked)
	}
	plaintext, hash, prefix := GenerateKey()
	k.Hash, k.Prefix, k.UpdatedAt = hash, prefix, m.now().UTC()
	if err := m.ks.UpdateKey(ctx, k); err != nil {
		return "", store.Key{}, fmt.Errorf("auth: rotate key %s: %w", id, err)
	}
	m.changed()
	return plaintext, k, nil
}

// currency is the deployment currency, USD when unset.
func (m *Manager) currency() string {
	if m.Currency == "" {
		return DefaultCurrency
	}
	return strings.ToUpper(m.Currency)
}

func (m *Manager) changed() {
	if m.OnChange != nil {
		m.OnChange()
	}
}

// EnsureInitialKey creates a key named "default" when the store holds no
// keys at all (the first start), and returns its plaintext so the server
// can print it once. With keys present it returns "", false. Two replicas
// starting together on an empty database may each create one; both work.
func EnsureInitialKey(ctx context.Context, m *Manager) (plaintext string, created bool, err error) {
	keys, err := m.ks.ListKeys(ctx)
	if err != nil {
		return "", false, fmt.Errorf("auth: initial key: %w", err)
	}
	if len(keys) > 0 {
		return "", false, nil
	}
	plaintext, _, err = m.Create(ctx, CreateOptions{Name: "default"})
	if err != nil {
		return "", false, err
	}
	return plaintext, true, nil
}
