package deploy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
)

// clientAddr is the address the test's client connects from: another
// loopback address than nginx's own (127.0.0.1), so the ledger can tell the
// real client from the proxy.
const clientAddr = "127.0.0.2"

// TestNginx runs deploy/nginx.conf in Debian's nginx in front of the gateway
// and checks what it promises: TLS, a stream passed on event by event (the
// first event reaches the client while the upstream still holds the rest),
// and the ledger recording the real client IP that nobody can spoof.
func TestNginx(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx not installed (apt-get install nginx-light)")
	}
	dir := t.TempDir()
	release := make(chan struct{})
	up := httptest.NewServer(gatedUpstream(release))
	defer up.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	// The gateway, trusting nginx (127.0.0.1) and nobody else.
	gwPort := freePort(t)
	db := filepath.Join(dir, "tollgate.db")
	gw := startProc(t, dir, childEnv(
		"TAOTOKEN_BASE_URL="+up.URL+"/v1", "TAOTOKEN_API_KEY=upstream-test-key", "TOLLGATE_AUTH=disabled",
		"TOLLGATE_LISTEN=127.0.0.1:"+gwPort, "TOLLGATE_DB="+db, "TOLLGATE_TRUSTED_PROXIES=127.0.0.1",
		"TOLLGATE_LOG_LEVEL=warn"), tollgateBin(t), "serve")
	waitOK(t, http.DefaultClient, "http://127.0.0.1:"+gwPort+"/healthz", 30*time.Second)

	// nginx with the shipped site config, ports and paths made local.
	httpsPort, httpPort := freePort(t), freePort(t)
	caPool := writeCert(t, dir)
	site, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := replaceAll(t, string(site),
		"server 127.0.0.1:3000;", "server 127.0.0.1:"+gwPort+";",
		"    listen 80;", "    listen 127.0.0.1:"+httpPort+";",
		"    listen [::]:80;\n", "",
		"    listen 443 ssl http2;", "    listen 127.0.0.1:"+httpsPort+" ssl http2;",
		"    listen [::]:443 ssl http2;\n", "",
		"/etc/ssl/tollgate/fullchain.pem", filepath.Join(dir, "cert.pem"),
		"/etc/ssl/tollgate/privkey.pem", filepath.Join(dir, "key.pem"),
	)
	writeFile(t, filepath.Join(dir, "tollgate.conf"), conf)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers read nothing outside the test's directory
	}
	main := fmt.Sprintf(`%[2]s
daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/tollgate.conf;
}
`, dir, user)
	writeFile(t, filepath.Join(dir, "nginx.conf"), main)
	if out, err := exec.Command(nginx, "-t", "-q", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	ng := startProc(t, dir, childEnv(), nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	defer ng.stop(t, syscall.SIGQUIT)

	client := clientFrom(caPool)
	base := "https://127.0.0.1:" + httpsPort
	waitOK(t, client, base+"/healthz", 30*time.Second)

	// Plain HTTP is redirected to HTTPS.
	noRedirect := *client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Get("http://127.0.0.1:" + httpPort + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
		t.Errorf("http: %s to %q, want a 301 to https", resp.Status, resp.Header.Get("Location"))
	}

	t.Run("stream arrives incrementally", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		resp := postChat(t, ctx, client, base, true, "6.6.6.6")
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("nginx answered over %s, want HTTP/2", resp.Proto)
		}
		br := bufio.NewReader(resp.Body)
		// The upstream sent one event and waits for release: if nginx
		// buffered the stream, this read would not return until the context
		// expires.
		first, err := readEvent(br)
		if err != nil || !strings.Contains(first, "Hello") {
			t.Fatalf("first event before the upstream finished: %q, %v (is nginx buffering the stream?)", first, err)
		}
		close(release)
		rest, err := io.ReadAll(br)
		if err != nil || !strings.Contains(string(rest), "world") || !strings.Contains(string(rest), "[DONE]") {
			t.Fatalf("rest of the stream: %q, %v", rest, err)
		}
	})
	t.Run("chat", func(t *testing.T) {
		resp := postChat(t, t.Context(), client, base, false, "6.6.6.6, 7.7.7.7")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hello world") {
			t.Fatalf("chat through nginx: %s %s", resp.Status, body)
		}
	})
	t.Run("direct client cannot spoof", func(t *testing.T) {
		resp := postChat(t, t.Context(), clientFrom(nil), "http://127.0.0.1:"+gwPort, false, "6.6.6.6")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("direct chat: %s", resp.Status)
		}
	})

	// SIGTERM flushes the ledger; then every row must name the real client.
	if err := gw.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("gateway exit after SIGTERM: %v", err)
	}
	st, err := storeopen.Open(t.Context(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, _, err := st.ListLogs(t.Context(), store.LogFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("ledger has %d rows, want 3", len(recs))
	}
	for _, r := range recs {
		if r.ClientIP != clientAddr {
			t.Errorf("ledger row %s: client_ip %q, want %s (the real client)", r.ID, r.ClientIP, clientAddr)
		}
	}
}

// gatedUpstream is an OpenAI-compatible upstream whose streams send one
// event, then wait for release before sending the rest.
func gatedUpstream(release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,`+
				`"message":{"role":"assistant","content":"Hello world"},"finish_reason":"stop"}],`+
				`"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(s string) {
			fmt.Fprintf(w, "data: %s\n\n", s)
			http.NewResponseController(w).Flush()
		}
		chunk(`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(time.Minute):
			return
		}
		chunk(`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":"stop"}]}`)
		chunk(`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`)
		chunk(`[DONE]`)
	})
}

func postChat(t *testing.T, ctx context.Context, client *http.Client, base string, stream bool, xff string) *http.Response {
	t.Helper()
	body := fmt.Sprintf(`{"model":"m","stream":%t,"messages":[{"role":"user","content":"hi"}]}`, stream)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", xff) // a client's attempt to choose its address
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// readEvent reads one SSE event (up to its blank line).
func readEvent(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if strings.TrimSpace(line) == "" && strings.TrimSpace(b.String()) != "" {
			return b.String(), nil
		}
	}
}

// clientFrom is an HTTP client whose connections come from clientAddr and
// that trusts pool (nil: system roots).
func clientFrom(pool *x509.CertPool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientAddr)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// writeCert writes a self-signed certificate for 127.0.0.1 as cert.pem and
// key.pem in dir and returns a pool that trusts it.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tollgate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "cert.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(dir, "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceAll applies old/new pairs, each of which must match exactly once,
// so the test notices when the shipped file changes under it.
func replaceAll(t *testing.T, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("nginx.conf: %q occurs %d times, want once", pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}
