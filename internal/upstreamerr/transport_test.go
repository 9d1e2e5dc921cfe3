package upstreamerr

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSanitizeTransportErrorReal provokes real transport failures on
// loopback and checks the text names the failure but no address.
func TestSanitizeTransportErrorReal(t *testing.T) {
	// A port nothing listens on: bind, note the address, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()

	// A server that accepts and resets every connection.
	reset := listen(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		_, _ = c.Read(buf)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	// A server that accepts and closes without answering.
	eof := listen(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		_, _ = c.Read(buf)
		c.Close()
	})
	// A server that never answers.
	stall := listen(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()

	tests := []struct {
		name   string
		url    string
		client *http.Client
		want   string
	}{
		{"refused", "http://" + closedAddr + "/v1/chat/completions?key=s3cret", http.DefaultClient, "connection refused"},
		{"reset", "http://" + reset + "/v1/chat/completions", http.DefaultClient, "connection reset by upstream"},
		{"closed", "http://" + eof + "/v1/chat/completions", http.DefaultClient, "connection closed by upstream"},
		{"timeout", "http://" + stall + "/", &http.Client{Timeout: 50 * time.Millisecond}, "timeout"},
		{"https to plain http", strings.Replace(plain.URL, "http:", "https:", 1), http.DefaultClient,
			"TLS handshake failed (upstream answered plain HTTP)"},
		{"untrusted certificate", tlsSrv.URL, http.DefaultClient, "TLS certificate verification failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case gets its own transport so no connection is reused.
			c := *tt.client
			c.Transport = &http.Transport{}
			defer c.Transport.(*http.Transport).CloseIdleConnections()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.url, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("request succeeded; want a transport error")
			}
			got := SanitizeTransportError(err)
			if got != tt.want {
				t.Errorf("SanitizeTransportError(%v) = %q; want %q", err, got, tt.want)
			}
			if strings.Contains(got, "127.0.0.1") || strings.Contains(got, "s3cret") {
				t.Errorf("SanitizeTransportError leaks: %q", got)
			}
		})
	}
}

func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l.Addr().String()
}

type timeoutErr struct{ msg string }

func (e timeoutErr) Error() string   { return e.msg }
func (e timeoutErr) Timeout() bool   { return true }
func (e timeoutErr) Temporary() bool { return true }

func TestSanitizeTransportErrorTable(t *testing.T) {
	op := func(op string, err error) error {
		return &url.Error{Op: "Post", URL: "https://u:p@10.0.0.9:443/v1?k=v", Err: &net.OpError{Op: op, Net: "tcp",
			Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 54786},
			Addr:   &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 443}, Err: err}}
	}
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{context.Canceled, "request canceled"},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), "timeout"},
		{op("read", &net.DNSError{Err: "no such host", Name: "internal.svc", IsNotFound: true}), "upstream host not found (DNS)"},
		{&net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}, "DNS lookup timeout"},
		{&net.DNSError{Err: "server misbehaving", Name: "x"}, "DNS lookup failed"},
		{op("read", syscall.ECONNRESET), "connection reset by upstream"},
		{op("dial", syscall.ECONNREFUSED), "connection refused"},
		{op("dial", syscall.EHOSTUNREACH), "upstream host unreachable"},
		{op("dial", syscall.ENETUNREACH), "network unreachable"},
		{op("write", syscall.EPIPE), "connection closed by upstream"},
		{op("dial", errors.New("weird")), "connection to upstream failed"},
		{op("read", errors.New("weird")), "reading from upstream failed"},
		{op("write", errors.New("weird")), "writing to upstream failed"},
		{io.ErrUnexpectedEOF, "connection closed by upstream"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "TLS handshake failed (upstream did not answer with TLS)"},
		{tls.AlertError(40), "TLS handshake failed"},
		{timeoutErr{"net/http: TLS handshake timeout"}, "TLS handshake timeout"},
		{timeoutErr{"net/http: timeout awaiting response headers"}, "timeout awaiting response headers"},
		{timeoutErr{"read tcp 1.2.3.4:5->6.7.8.9:10: i/o timeout"}, "timeout"},
		{errors.New("http2: server sent GOAWAY and closed the connection; LastStreamID=1"), "connection closed by upstream (HTTP/2 GOAWAY)"},
		{errors.New("stream error: stream ID 3; INTERNAL_ERROR"), "HTTP/2 stream error"},
		{errors.New("net/http: HTTP/1.x transport connection broken: malformed HTTP response \"\\x00\""), "malformed HTTP response from upstream"},
		{errors.New("something at 10.1.1.1:80 failed"), "upstream connection failed"},
	}
	for _, tt := range tests {
		if got := SanitizeTransportError(tt.err); got != tt.want {
			t.Errorf("SanitizeTransportError(%v) = %q; want %q", tt.err, got, tt.want)
		}
	}
}
