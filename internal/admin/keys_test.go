package admin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/auth"
)

type keyJSON struct {
	auth.KeyInfo
	Key string `json:"key"`
}

func TestKeysLifecycle(t *testing.T) {
	f := newFixture(t, nil)

	status, body := f.do(http.MethodPost, "/admin/keys",
		`{"name":"team-a","models":["gpt-4o","claude-*"],"rpm":60,"tpm":1000,"max_parallel":2,"budget":"10USD/day","expires":"30d"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	created := decode[keyJSON](t, body)
	if !strings.HasPrefix(created.Key, auth.KeyPrefix) || !strings.HasPrefix(created.Key, created.Prefix) {
		t.Fatalf("plaintext %q / prefix %q", created.Key, created.Prefix)
	}
	if created.RPM != 60 || created.BudgetNano != 10*auth.NanoPerUnit || created.BudgetPeriod != "day" ||
		!created.ExpiresAt.Equal(now().Add(30*24*time.Hour)) || created.Status != "active" || len(created.Models) != 2 {
		t.Fatalf("created = %+v", created.KeyInfo)
	}
	id := created.ID
	secret := created.Key
	hash := auth.HashKey(secret)

	noSecret := func(what, body string) {
		t.Helper()
		if strings.Contains(body, secret) || strings.Contains(body, hash) || strings.Contains(body, secret[len(created.Prefix):]) {
			t.Fatalf("%s reveals the key or its hash: %s", what, body)
		}
	}
	status, body = f.do(http.MethodGet, "/admin/keys", "")
	if status != http.StatusOK || !strings.Contains(body, id) {
		t.Fatalf("list: %d %s", status, body)
	}
	noSecret("list", body)
	status, body = f.do(http.MethodGet, "/admin/keys/"+id, "")
	if status != http.StatusOK || decode[keyJSON](t, body).Name != "team-a" {
		t.Fatalf("get: %d %s", status, body)
	}
	noSecret("get", body)

	status, body = f.do(http.MethodPatch, "/admin/keys/"+id, `{"rpm":120,"budget":"none"}`)
	got := decode[keyJSON](t, body)
	if status != http.StatusOK || got.RPM != 120 || got.TPM != 1000 || got.BudgetNano != 0 || got.Name != "team-a" ||
		len(got.Models) != 2 || !got.ExpiresAt.Equal(created.ExpiresAt) {
		t.Fatalf("patch: %d %s", status, body)
	}
	noSecret("patch", body)

	status, body = f.do(http.MethodPost, "/admin/keys/"+id+"/rotate", "")
	rotated := decode[keyJSON](t, body)
	if status != http.StatusOK || !strings.HasPrefix(rotated.Key, auth.KeyPrefix) || rotated.Key == secret || rotated.ID != id {
		t.Fatalf("rotate: %d %s", status, body)
	}
	if k, err := f.store.GetKey(t.Context(), id); err != nil || k.Hash != auth.HashKey(rotated.Key) {
		t.Fatalf("stored hash does not match the rotated key: %v", err)
	}

	status, body = f.do(http.MethodPost, "/admin/keys/"+id+"/revoke", "")
	if status != http.StatusOK || decode[keyJSON](t, body).Status != "revoked" {
		t.Fatalf("revoke: %d %s", status, body)
	}
	status, body = f.do(http.MethodPost, "/admin/keys/"+id+"/revoke", "")
	if status != http.StatusOK {
		t.Fatalf("second revoke: %d %s", status, body)
	}
	status, body = f.do(http.MethodPost, "/admin/keys/"+id+"/rotate", "")
	wantError(t, status, body, http.StatusConflict, "")
	status, body = f.do(http.MethodPatch, "/admin/keys/"+id, `{"rpm":1}`)
	wantError(t, status, body, http.StatusConflict, "")

	// DELETE is revoke.
	_, body = f.do(http.MethodPost, "/admin/keys", `{"name":"temp"}`)
	tmp := decode[keyJSON](t, body)
	status, body = f.do(http.MethodDelete, "/admin/keys/"+tmp.ID, "")
	if status != http.StatusOK || decode[keyJSON](t, body).Status != "revoked" {
		t.Fatalf("delete: %d %s", status, body)
	}
	if strings.Contains(body, tmp.Key) {
		t.Fatalf("delete reveals the key")
	}
}

func TestKeysErrors(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		method, path, body string
		status             int
		param              string
	}{
		{"POST", "/admin/keys", `{}`, 400, "name"},
		{"POST", "/admin/keys", `{"name":"  "}`, 400, "name"},
		{"POST", "/admin/keys", `{"name":"a","budget":"10EUR/day"}`, 400, "budget"},
		{"POST", "/admin/keys", `{"name":"a","budget":"10USD/week"}`, 400, "budget"},
		{"POST", "/admin/keys", `{"name":"a","rpm":-1}`, 400, "rpm"},
		{"POST", "/admin/keys", `{"name":"a","max_parallel":-3}`, 400, "max_parallel"},
		{"POST", "/admin/keys", `{"name":"a","expires":"soon"}`, 400, "expires"},
		{"POST", "/admin/keys", `{"name":"a","expires_at":"2020-01-01T00:00:00Z"}`, 400, "expires_at"},
		{"POST", "/admin/keys", `{"name":"a","expires":"1d","expires_at":"2030-01-01T00:00:00Z"}`, 400, "expires"},
		{"POST", "/admin/keys", `{"name":"a","rmp":10}`, 400, ""},
		{"POST", "/admin/keys", `{"name":"a"`, 400, ""},
		{"POST", "/admin/keys", `{"name":"a"} {"name":"b"}`, 400, ""},
		{"POST", "/admin/keys", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
		{"POST", "/admin/keys", ``, 400, ""},
		{"GET", "/admin/keys/key_nope", "", 404, ""},
		{"PATCH", "/admin/keys/key_nope", `{"rpm":1}`, 404, ""},
		{"POST", "/admin/keys/key_nope/revoke", "", 404, ""},
		{"POST", "/admin/keys/key_nope/rotate", "", 404, ""},
		{"DELETE", "/admin/keys/key_nope", "", 404, ""},
		{"PUT", "/admin/keys", `{}`, 404, ""},
	}
	for _, tt := range tests {
		name := tt.method + " " + tt.path + " " + tt.body
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			status, body := f.do(tt.method, tt.path, tt.body)
			wantError(t, status, body, tt.status, tt.param)
		})
	}
	if keys, err := f.keys.List(t.Context()); err != nil || len(keys) != 0 {
		t.Fatalf("a rejected request created keys: %v %v", keys, err)
	}
}

// TestKeysOffWithoutManager: with gateway keys disabled (no Manager), key
// routes answer 404 instead of failing.
func TestKeysOffWithoutManager(t *testing.T) {
	f := newFixture(t, func(o *admin.Options) { o.Keys = nil })
	for _, p := range []string{"/admin/keys", "/admin/keys/k1"} {
		if code, body := f.do("GET", p, ""); code != http.StatusNotFound || !strings.Contains(body, "TOLLGATE_AUTH") {
			t.Errorf("GET %s without keys: %d %s", p, code, body)
		}
	}
}
