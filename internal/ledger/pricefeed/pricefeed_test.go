package pricefeed

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

func TestLoadFromURL(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("..", "testdata", "litellm_prices.json"))
	if err != nil {
		t.Fatal(err)
	}
	var body atomic.Value
	body.Store(fixture)
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		w.Write(body.Load().([]byte))
	}))
	defer srv.Close()

	p := ledger.NewPricer(ledger.Builtin())
	var logs bytes.Buffer
	l := &Loader{Pricer: p, From: srv.URL + "/prices.json?token=secret", Currency: "USD",
		Client: srv.Client(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := l.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e, ok := p.Lookup("", "gpt-4o"); !ok || e.Source != ledger.SourceURL {
		t.Fatalf("gpt-4o = %+v, %v; want from the URL", e, ok)
	}
	// A failing refresh keeps the last good table and logs once.
	status.Store(500)
	for range 3 {
		_, err := l.Load(t.Context())
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Fatalf("Load from a failing URL: %v (must fail and not show the query)", err)
		}
		l.report(0, err)
	}
	if e, ok := p.Lookup("", "gpt-4o"); !ok || e.Source != ledger.SourceURL {
		t.Errorf("after failures gpt-4o = %+v, %v; want the last good price", e, ok)
	}
	if n := strings.Count(logs.String(), "price refresh failed"); n != 1 {
		t.Errorf("logged the failure %d times, want once:\n%s", n, logs.String())
	}
	// Our YAML from the same URL replaces the layer.
	status.Store(200)
	body.Store([]byte("prices:\n  gpt-4o: {input: 1, output: 2}\n"))
	n, err := l.Load(t.Context())
	l.report(n, err)
	if e, _ := p.Lookup("", "gpt-4o"); err != nil || e.Input != 1e9 || e.CacheRead != 1e9 {
		t.Errorf("after YAML: %+v, %v", e, err)
	}
	if e, ok := p.Lookup("", "claude-sonnet-4-6"); !ok || e.Source != ledger.SourceBuiltin {
		t.Errorf("builtin prices lost: %+v %v", e, ok)
	}
	if !strings.Contains(logs.String(), "works again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

func TestRunRefreshes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "prices.yaml")
		write := func(s string) {
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("prices:\n  m: {input: 1, output: 1}\n")
		p := ledger.NewPricer(nil)
		l := &Loader{Pricer: p, From: path, Currency: "USD"}
		if _, err := l.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		go l.Run(t.Context(), time.Hour)
		write("prices:\n  m: {input: 2, output: 1}\n")
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		if e, _ := p.Lookup("", "m"); e.Input != 2e9 {
			t.Errorf("after one refresh input = %d, want 2e9", e.Input)
		}
	})
}

func TestLoadFile(t *testing.T) {
	p := ledger.NewPricer(nil)
	l := &Loader{Pricer: p, From: filepath.Join("..", "testdata", "litellm_prices.json"), Currency: "USD"}
	n, err := l.Load(t.Context())
	if err != nil || n == 0 {
		t.Fatalf("Load = %d, %v", n, err)
	}
	if e, ok := p.Lookup("", "deepseek/deepseek-chat"); !ok || e.Source != ledger.SourceFile || e.CacheRead != 28_000_000 {
		t.Errorf("deepseek-chat = %+v, %v", e, ok)
	}
	l.From = filepath.Join(t.TempDir(), "missing.json")
	if _, err := l.Load(t.Context()); err == nil {
		t.Error("a missing file loaded")
	}
	if !p.Has("", "gpt-4o") {
		t.Error("a failed load dropped the last good prices")
	}
}
