package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/fakeupstream"
)

// lockedBuffer is a goroutine-safe writer for captured output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// TestMain lets this test binary act as tollgate's writer process: serve,
// run in process by these tests, starts `ledger-writer` from
// os.Executable(), which here is the test binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "ledger-writer" {
		if err := run(context.Background(), os.Args[1:], env{lookup: os.LookupEnv}, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString("ledger-writer: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestMissingKeyExits2(t *testing.T) {
	var out, errOut lockedBuffer
	e := env{lookup: mapEnv(nil), dotenv: filepath.Join(t.TempDir(), ".env")}
	err := run(t.Context(), nil, e, &out, &errOut)
	ee, ok := errors.AsType[*exitError](err)
	if !ok || ee.code != 2 {
		t.Fatalf("run() = %v; want exit code 2", err)
	}
	if !strings.Contains(err.Error(), "TAOTOKEN_API_KEY") {
		t.Errorf("error %q does not name TAOTOKEN_API_KEY", err)
	}
}

func TestUnknownCommandExits2(t *testing.T) {
	err := run(t.Context(), []string{"frobnicate"}, env{lookup: mapEnv(nil)}, io.Discard, io.Discard)
	if ee, ok := errors.AsType[*exitError](err); !ok || ee.code != 2 {
		t.Fatalf("run() = %v; want exit code 2", err)
	}
}

// startGateway runs `tollgate serve` in-process against upstreamURL and
// returns its address and a stop function that returns serve's error.
func startGateway(t *testing.T, vars map[string]string) (addr string, stop func() error, logs *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &lockedBuffer{}
	ready := make(chan string, 1)
	base := map[string]string{
		"TAOTOKEN_API_KEY": "sk-upstream-secret-123",
		"TOLLGATE_LISTEN":  "127.0.0.1:0",
		"TOLLGATE_DB":      filepath.Join(t.TempDir(), "t.db"),
		"TOLLGATE_AUTH":    "disabled",
	}
	for k, v := range vars {
		base[k] = v
	}
	e := env{lookup: mapEnv(base), dotenv: filepath.Join(t.TempDir(), ".env"), ready: func(a string) { ready <- a }}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, []string{"serve"}, e, logs, logs) }()
	select {
	case addr = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("serve exited early: %v\n%s", err, logs)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("gateway not ready")
	}
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-errc:
			case <-time.After(40 * time.Second):
				serr = errors.New("serve did not return")
			}
		})
		return serr
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop, logs
}

func TestShutdownDrainsStreamInFlight(t *testing.T) {
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	defer fake.Close()
	addr, stop, logs := startGateway(t, map[string]string{"TAOTOKEN_BASE_URL": fake.URL + "/v1"})

	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"drain me"}]}`))
	req.Header.Set("X-Fake-Chunks", "10")
	req.Header.Set("X-Fake-Chunk-Delay", "100ms")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// SIGTERM arrives while the stream is mid-way.
	stopErr := make(chan error, 1)
	go func() { stopErr <- stop() }()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream cut by shutdown: %v", err)
	}
	if !bytes.Contains(rest, []byte("data: [DONE]")) {
		t.Errorf("stream did not complete during drain: %q", rest)
	}
	if err := <-stopErr; err != nil {
		t.Errorf("serve returned %v; want nil after a clean drain", err)
	}
	// New connections are refused after shutdown.
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("gateway still accepting after shutdown")
	}
	if strings.Contains(logs.String(), "sk-upstream-secret-123") {
		t.Error("upstream key in logs")
	}
}
