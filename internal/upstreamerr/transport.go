package upstreamerr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// SanitizeTransportError describes an error from sending a request to an
// upstream or reading its response (what http.Client.Do or a body Read
// returns) in a fixed vocabulary: "connection refused", "connection reset by
// upstream", "timeout", "TLS handshake failed", ... It never quotes the
// error's text, which names local and remote socket addresses and URLs
// ("read tcp 127.0.0.1:54786->10.0.0.7:443: read: connection reset by
// peer"). It returns "" for a nil error.
func SanitizeTransportError(err error) string {
	if err == nil {
		return ""
	}
	if s := bySentinel(err); s != "" {
		return s
	}
	if s := byType(err); s != "" {
		return s
	}
	if s := byText(err.Error()); s != "" {
		return s
	}
	var op *net.OpError
	if errors.As(err, &op) {
		switch op.Op {
		case "dial":
			return "connection to upstream failed"
		case "read":
			return "reading from upstream failed"
		case "write":
			return "writing to upstream failed"
		}
	}
	return "upstream connection failed"
}

func bySentinel(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "request canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by upstream"
	case errors.Is(err, syscall.ECONNABORTED):
		return "connection aborted"
	case errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by upstream"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "upstream host unreachable"
	}
	return ""
}

func byType(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		switch {
		case dns.IsNotFound:
			return "upstream host not found (DNS)"
		case dns.IsTimeout:
			return "DNS lookup timeout"
		}
		return "DNS lookup failed"
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return "TLS certificate verification failed"
	case errors.As(err, &record):
		return "TLS handshake failed (upstream did not answer with TLS)"
	case errors.As(err, &alert):
		return "TLS handshake failed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "TLS handshake timeout"):
			return "TLS handshake timeout"
		case strings.Contains(msg, "awaiting response headers"):
			return "timeout awaiting response headers"
		}
		return "timeout"
	}
	return ""
}

// byText recognises errors net/http and its HTTP/2 code create with
// errors.New, which have no type to match. Only the fixed text below is
// returned, never the error's own.
func byText(msg string) string {
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return "TLS handshake failed (upstream answered plain HTTP)"
	case strings.Contains(msg, "tls: "):
		return "TLS handshake failed"
	case strings.Contains(msg, "GOAWAY"):
		return "connection closed by upstream (HTTP/2 GOAWAY)"
	case strings.Contains(msg, "http2: stream") || strings.Contains(msg, "stream error"):
		return "HTTP/2 stream error"
	case strings.Contains(msg, "malformed HTTP"):
		return "malformed HTTP response from upstream"
	case strings.Contains(msg, "request canceled"):
		return "request canceled"
	case strings.Contains(msg, "server closed idle connection"),
		strings.Contains(msg, "connection reset"):
		return "connection reset by upstream"
	case strings.Contains(msg, "connection refused"):
		return "connection refused"
	case strings.Contains(msg, "use of closed network connection"):
		return "connection closed"
	case strings.Contains(msg, "message too long"), strings.Contains(msg, "header list too long"),
		strings.Contains(msg, "response headers exceeded"):
		return "upstream response headers too large"
	}
	return ""
}
