package auth

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tollgate/tollgate/internal/store"
)

var t0 = time.Date(2026, 11, 22, 15, 4, 5, 0, time.UTC)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestManagerCreate(t *testing.T) {
	fs := newFakeStore()
	m := NewManager(fs, func() time.Time { return t0 })
	changes := 0
	m.OnChange = func() { changes++ }

	plain, k, err := m.Create(t.Context(), CreateOptions{
		Name: " ci ", Models: []string{"gpt-4o", " ", "claude-*"}, RPM: 60, TPM: 10000, MaxParallel: 4,
		Budget: "$10/day", Expires: "30d",
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := store.Key{
		ID: k.ID, Name: "ci", Prefix: plain[:11], Hash: HashKey(plain),
		Models: []string{"gpt-4o", "claude-*"}, RPM: 60, TPM: 10000, MaxParallel: 4,
		BudgetNano: 10 * NanoPerUnit, BudgetPeriod: "day",
		ExpiresAt: t0.Add(30 * 24 * time.Hour), CreatedAt: t0, UpdatedAt: t0,
	}
	if diff := cmp.Diff(want, k); diff != "" {
		t.Errorf("Create key mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(k.ID, "key_") || len(k.ID) != 20 {
		t.Errorf("key id = %q; want key_ and 16 characters", k.ID)
	}
	stored, err := fs.GetKey(t.Context(), k.ID)
	if err != nil || stored.Hash != HashKey(plain) {
		t.Fatalf("stored key = %+v, %v; want the hash of the plaintext", stored, err)
	}
	if changes != 1 {
		t.Errorf("OnChange called %d times; want 1", changes)
	}

	bad := []CreateOptions{
		{Name: ""},
		{Name: "x", RPM: -1},
		{Name: "x", Budget: "10EUR/day"},
		{Name: "x", Expires: "soon"},
		{Name: "x", Expires: "0d"},
		{Name: "x", ExpiresAt: t0.Add(-time.Hour)},
		{Name: "x", Expires: "1d", ExpiresAt: t0.Add(time.Hour)},
	}
	for _, o := range bad {
		if _, _, err := m.Create(t.Context(), o); err == nil {
			t.Errorf("Create(%+v) succeeded; want error", o)
		}
	}
	if changes != 1 {
		t.Errorf("OnChange called %d times after failed creates; want 1", changes)
	}
}

func TestManagerRotateRevoke(t *testing.T) {
	fs := newFakeStore()
	now := t0
	m := NewManager(fs, func() time.Time { return now })
	c := NewCache(fs, time.Hour, discardLogger())
	ctx := t.Context()

	old, k, err := m.Create(ctx, CreateOptions{Name: "app", RPM: 7, Budget: "1USD/month"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Lookup(old); err != nil || got.ID != k.ID {
		t.Fatalf("Lookup(new key) = %v, %v; want key %s", got, err, k.ID)
	}

	now = t0.Add(time.Minute)
	fresh, rk, err := m.Rotate(ctx, k.ID)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if fresh == old || rk.ID != k.ID || rk.RPM != 7 || rk.BudgetNano != NanoPerUnit || rk.Prefix != fresh[:11] || !rk.UpdatedAt.Equal(now) {
		t.Errorf("Rotate kept id/limits wrongly or reused the secret: %+v", rk)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(old); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Lookup(old key after rotate) = %v; want ErrUnknownKey", err)
	}
	if got, err := c.Lookup(fresh); err != nil || got.ID != k.ID {
		t.Errorf("Lookup(rotated key) = %v, %v; want key %s", got, err, k.ID)
	}

	if err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	revokedAt := now
	now = now.Add(time.Hour)
	if err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if got, _ := fs.GetKey(ctx, k.ID); !got.RevokedAt.Equal(revokedAt) {
		t.Errorf("RevokedAt = %v after a second revoke; want the first time %v", got.RevokedAt, revokedAt)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(fresh); !errors.Is(err, ErrRevoked) {
		t.Errorf("Lookup(revoked key) = %v; want ErrRevoked", err)
	}
	if _, _, err := m.Rotate(ctx, k.ID); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("Rotate(revoked) = %v; want ErrKeyRevoked", err)
	}
	if _, err := m.Update(ctx, k.ID, CreateOptions{}); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("Update(revoked) = %v; want ErrKeyRevoked", err)
	}
	for name, err := range map[string]error{
		"Revoke": m.Revoke(ctx, "key_missing"),
		"Rotate": func() error { _, _, err := m.Rotate(ctx, "key_missing"); return err }(),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s(unknown id) = %v; want store.ErrNotFound", name, err)
		}
	}
}

func TestManagerUpdate(t *testing.T) {
	fs := newFakeStore()
	m := NewManager(fs, func() time.Time { return t0 })
	ctx := t.Context()
	plain, k, err := m.Create(ctx, CreateOptions{Name: "app", RPM: 5})
	if err != nil {
		t.Fatal(err)
	}
	u, err := m.Update(ctx, k.ID, CreateOptions{TPM: 100, Budget: "$2/total", Models: []string{"gpt-*"}})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if u.Name != "app" || u.RPM != 0 || u.TPM != 100 || u.BudgetPeriod != "total" || u.Hash != HashKey(plain) {
		t.Errorf("Update result = %+v; want name kept, limits replaced, secret unchanged", u)
	}
	if _, err := m.Update(ctx, k.ID, CreateOptions{Budget: "lots"}); err == nil {
		t.Errorf("Update with a bad budget succeeded")
	}
}

func TestManagerList(t *testing.T) {
	fs := newFakeStore()
	m := NewManager(fs, func() time.Time { return t0 })
	ctx := t.Context()
	_, a, _ := m.Create(ctx, CreateOptions{Name: "a", Budget: "$5/month"})
	_, b, _ := m.Create(ctx, CreateOptions{Name: "b", Expires: "1h"})
	_, c, _ := m.Create(ctx, CreateOptions{Name: "c"})
	if err := m.Revoke(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	fs.spend[a.ID] = 123
	fs.lastUsed[a.ID] = t0.Add(-time.Minute)

	later := NewManager(fs, func() time.Time { return t0.Add(2 * time.Hour) })
	infos, err := later.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(infos) != 3 {
		t.Fatalf("List returned %d keys; want 3", len(infos))
	}
	if got := infos[0]; got.ID != a.ID || got.SpendThisPeriod != 123 || !got.LastUsed.Equal(t0.Add(-time.Minute)) || got.Status != "active" {
		t.Errorf("List()[0] = %+v; want spend 123, last used, active", got)
	}
	if want := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC); !fs.since[a.ID].Equal(want) {
		t.Errorf("spend of a monthly key read since %v; want %v", fs.since[a.ID], want)
	}
	if !fs.since[b.ID].IsZero() {
		t.Errorf("spend of a key without budget read since %v; want all time", fs.since[b.ID])
	}
	if infos[1].Status != "expired" || infos[2].Status != "revoked" {
		t.Errorf("statuses = %s, %s; want expired, revoked", infos[1].Status, infos[2].Status)
	}
	js, _ := json.Marshal(infos)
	if strings.Contains(string(js), a.Hash) || strings.Contains(string(js), `"hash"`) {
		t.Errorf("List JSON exposes the key hash: %s", js)
	}

	fs.setFail(errors.New("db down"))
	if _, err := m.List(ctx); err == nil {
		t.Errorf("List with a failing store succeeded")
	}
}

func TestEnsureInitialKey(t *testing.T) {
	fs := newFakeStore()
	m := NewManager(fs, nil)
	ctx := t.Context()
	plain, created, err := EnsureInitialKey(ctx, m)
	if err != nil || !created || !strings.HasPrefix(plain, KeyPrefix) {
		t.Fatalf("EnsureInitialKey on empty store = created %v, %v; want a new key", created, err)
	}
	keys, _ := fs.ListKeys(ctx)
	if len(keys) != 1 || keys[0].Name != "default" || keys[0].Hash != HashKey(plain) {
		t.Fatalf("keys after EnsureInitialKey = %+v; want one named default", keys)
	}
	plain, created, err = EnsureInitialKey(ctx, m)
	if err != nil || created || plain != "" {
		t.Errorf("second EnsureInitialKey = created %v, %v; want nothing", created, err)
	}
	fs.setFail(errors.New("db down"))
	if _, _, err := EnsureInitialKey(ctx, m); err == nil {
		t.Errorf("EnsureInitialKey with a failing store succeeded")
	}
}

// TestManagerZoneAndCurrency: budgets are parsed in the Manager's currency,
// and List reads spend since the period start in its time zone (the same
// period the limiters enforce), saying both.
func TestManagerZoneAndCurrency(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-11-30 17:00 UTC is already 1 December 01:00 in Shanghai.
	now := time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)
	fs := newFakeStore()
	m := NewManager(fs, func() time.Time { return now })
	m.Currency, m.Location = "CNY", sh
	ctx := t.Context()
	if _, _, err := m.Create(ctx, CreateOptions{Name: "usd", Budget: "$5/day"}); err == nil {
		t.Fatal("a USD budget was accepted in a CNY deployment")
	}
	_, day, err := m.Create(ctx, CreateOptions{Name: "day", Budget: "50CNY/day"})
	if err != nil {
		t.Fatal(err)
	}
	_, month, err := m.Create(ctx, CreateOptions{Name: "month", Budget: "300/month"})
	if err != nil {
		t.Fatal(err)
	}
	if day.BudgetNano != 50*NanoPerUnit || month.BudgetNano != 300*NanoPerUnit {
		t.Fatalf("budgets = %d, %d; want 50 and 300 CNY", day.BudgetNano, month.BudgetNano)
	}
	infos, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStart := time.Date(2026, 12, 1, 0, 0, 0, 0, sh) // 2026-11-30 16:00 UTC
	for _, id := range []string{day.ID, month.ID} {
		if !fs.since[id].Equal(wantStart) {
			t.Errorf("spend of %s read since %v; want Shanghai's 1 December, %v", id, fs.since[id].UTC(), wantStart.UTC())
		}
	}
	for _, in := range infos {
		if in.Currency != "CNY" || !in.PeriodStart.Equal(wantStart) {
			t.Errorf("%s: currency %q, period start %v; want CNY, %v", in.Name, in.Currency, in.PeriodStart, wantStart)
		}
	}
	js, _ := json.Marshal(infos[0])
	if !strings.Contains(string(js), `"period_start":"2026-12-01T00:00:00+08:00"`) || !strings.Contains(string(js), `"currency":"CNY"`) {
		t.Errorf("JSON does not name the zone and currency: %s", js)
	}
}
