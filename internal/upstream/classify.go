package upstream

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

// Kind is what one attempt's outcome says about health, and about what: the
// (upstream, model) pair, the upstream as a whole, or nothing.
type Kind string

// Kinds, from Classify.
const (
	// KindCancelled: the client went away. Not the upstream's fault; not
	// counted anywhere.
	KindCancelled Kind = "cancelled"
	// KindOK: the upstream answered (2xx, 3xx, or a 4xx other than 408 and
	// 429, which are the client's fault). A success for the pair and proof
	// that the upstream is reachable.
	KindOK Kind = "ok"
	// KindStatus: 500, 502, 503, 504 or 408. A failure of the pair; the
	// upstream itself answered, so it is reachable.
	KindStatus Kind = "status"
	// KindRateLimited: 429. Cools the pair down for its Retry-After instead
	// of counting toward a breaker.
	KindRateLimited Kind = "rate_limited"
	// KindTimeout: no response headers within the attempt timeout. A
	// failure of the pair (one slow model says nothing about the others).
	KindTimeout Kind = "timeout"
	// KindReset: the connection was reset or closed before the headers. A
	// failure of the pair; when it happens across several distinct models in
	// the breaker window it also counts against the upstream.
	KindReset Kind = "reset"
	// KindConnect: no connection could be made (refused, DNS, dial
	// timeout). The upstream itself is sick.
	KindConnect Kind = "connect"
	// KindTLS: the TLS handshake or certificate failed. The upstream itself
	// is sick (or misconfigured).
	KindTLS Kind = "tls"
	// KindTransport: another error before the headers (a malformed
	// response, say). A failure of the pair.
	KindTransport Kind = "transport"
	// KindStreamBroken: the headers arrived but the body broke off. Shown
	// in status as the last error, but not counted toward a breaker: it is
	// neither a sign the request should have gone elsewhere nor retryable.
	KindStreamBroken Kind = "stream_broken"
)

// pairFailure reports whether k counts as a failure of the pair's breaker.
func (k Kind) pairFailure() bool {
	switch k {
	case KindStatus, KindTimeout, KindReset, KindTransport:
		return true
	}
	return false
}

// upstreamFailure reports whether k counts against the upstream as a whole
// on its own (resets need several models; see resetTracker).
func (k Kind) upstreamFailure() bool { return k == KindConnect || k == KindTLS }

// reached reports whether k proves the upstream answered at the HTTP level.
func (k Kind) reached() bool {
	switch k {
	case KindOK, KindStatus, KindRateLimited, KindStreamBroken:
		return true
	}
	return false
}

// Classify says what r means for health. It is pure: the table in
// classify_test.go is its specification.
//
// Order matters: Cancelled wins; a status is judged by the status; a
// timeout is checked before cancellation because the engine's per-attempt
// timer cancels the attempt's context.
func Classify(r Result) Kind {
	if r.Cancelled {
		return KindCancelled
	}
	if r.Status > 0 {
		switch {
		case r.Status == 429:
			return KindRateLimited
		case countedStatus(r.Status):
			return KindStatus
		case r.Err != nil && errors.Is(r.Err, context.Canceled) && !errors.Is(r.Err, ErrTimeout):
			return KindCancelled
		case r.Err != nil:
			return KindStreamBroken
		}
		return KindOK
	}
	if r.Err == nil {
		return KindTransport // no status and no error: nothing arrived
	}
	err := r.Err
	if errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	if errors.Is(err, context.Canceled) {
		return KindCancelled
	}
	if isTLS(err) {
		return KindTLS
	}
	if isConnect(err) {
		return KindConnect
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return KindTimeout
	}
	if isReset(err) {
		return KindReset
	}
	return KindTransport
}

// countedStatus lists the statuses that signal an unhealthy model: server
// errors that are not the client's fault, and 408.
func countedStatus(code int) bool {
	switch code {
	case 408, 500, 502, 503, 504:
		return true
	}
	return false
}

func isConnect(err error) bool {
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
		return true
	}
	return false
}

func isTLS(err error) bool {
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	// crypto/tls returns many handshake errors as plain "tls: ..." strings.
	return strings.Contains(err.Error(), "tls: ")
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") ||
		strings.Contains(err.Error(), "server closed idle connection")
}
