package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/upstream"
)

// authGate refuses requests without the header "Key: good" in
// Authenticate, and notes what Admit saw.
type authGate struct {
	mu     sync.Mutex
	admits []any // Call.Auth of each Admit
}

func (g *authGate) Authenticate(_ context.Context, r *http.Request) (Caller, error) {
	if r.Header.Get("Key") != "good" {
		return Caller{}, apierr.New(http.StatusUnauthorized, apierr.Authentication, "invalid_api_key", "no key")
	}
	return Caller{KeyID: "k-good", KeyName: "good", Auth: "token for good"}, nil
}

func (g *authGate) Admit(_ context.Context, c *Call) (*Ticket, error) {
	g.mu.Lock()
	g.admits = append(g.admits, c.Auth)
	g.mu.Unlock()
	return &Ticket{KeyID: "k-good", KeyName: "good"}, nil
}

// A Gate that is an Authenticator checks the key before the body is read:
// a request without one is refused with 401 whatever its body (too large,
// here: 413 had it been read), Admit never sees it, what Authenticate
// returned reaches Admit for the others, and the key is on the ledger row
// of a request refused for its body.
func TestAuthenticateBeforeTheBody(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: hi\n\n")
	}))
	t.Cleanup(up.Close)
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{Name: "u", BaseURL: up.URL}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gate, rec := &authGate{}, &records{}
	p := &Proxy{Pool: func() Planner { return pool }, Transport: NewTransport(), Recorder: rec, Gate: gate,
		MaxBody: 64, Timeout: 10 * time.Second, BackoffBase: time.Millisecond}
	gw := httptest.NewServer(p.Handler(stubDialect{}))
	t.Cleanup(gw.Close)

	send := func(key, body string) int {
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/x", strings.NewReader(body))
		if key != "" {
			req.Header.Set("Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	big := strings.Repeat("x", 1000)
	tests := []struct {
		name, key, body string
		want            int
	}{
		{"no key, body too large", "", big, http.StatusUnauthorized},
		{"bad key", "bad", "m1", http.StatusUnauthorized},
		{"good key, body too large", "good", big, http.StatusRequestEntityTooLarge},
		{"good key", "good", "m1", http.StatusOK},
	}
	for _, tc := range tests {
		if got := send(tc.key, tc.body); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if len(gate.admits) != 1 || gate.admits[0] != "token for good" {
		t.Errorf("Admit saw %v; want once, with Authenticate's token", gate.admits)
	}
	recs := rec.all()
	if len(recs) != len(tests) {
		t.Fatalf("%d records for %d requests", len(recs), len(tests))
	}
	for i, r := range recs { // in request order: each answer came before the next request
		if want := map[bool]string{true: "k-good"}[tests[i].key == "good"]; r.KeyID != want {
			t.Errorf("%s: record's key %q, want %q (status %d)", tests[i].name, r.KeyID, want, r.Status)
		}
	}
}

// A refused request whose body is still coming is answered at once and its
// connection closed: net/http would otherwise wait to read the rest of the
// body before answering, with no deadline.
func TestRefusedSlowBodyAnsweredAndClosed(t *testing.T) {
	p := &Proxy{Gate: &authGate{}, Transport: NewTransport(), Recorder: &records{}, MaxBody: 1 << 20, Timeout: 10 * time.Second}
	gw := httptest.NewServer(p.Handler(stubDialect{}))
	t.Cleanup(gw.Close)
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 10 of 1000 bytes; the rest never comes.
	io.WriteString(conn, "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // only bounds a failure
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the body was unfinished: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("status %d, close %v; want 401 and the connection closed", resp.StatusCode, resp.Close)
	}
}
