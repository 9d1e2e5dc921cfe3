// Package h1 is a lean HTTP/1.1 client for plain-HTTP upstreams.
//
// net/http's Transport gives every connection a reader and a writer
// goroutine, and their buffers, for the connection's whole life: every open
// stream holds them (~20 KB of the ~55 KB an idle stream cost the gateway,
// docs/perf.md). Here the request is written and the response read on the
// caller's goroutine, and a connection owns one small read buffer. HTTPS
// (HTTP/2), proxies from the environment and anything else unusual go to
// Fallback.
package h1

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of the Transport's zero-valued fields.
const (
	defaultMaxIdlePerHost = 256
	defaultIdleTimeout    = 90 * time.Second
	defaultMaxHeaderBytes = 1 << 20
	defaultBufferSize     = 2 << 10
)

// Transport is an http.RoundTripper. Requests to http:// URLs that no proxy
// is configured for are sent over its own keep-alive connections; the rest
// go to Fallback. Its zero fields take the defaults above.
type Transport struct {
	// Fallback serves https:// and proxied requests; it must be set. Its
	// Proxy function (nil: no proxy) decides which http:// requests are
	// proxied.
	Fallback *http.Transport
	// Dial opens connections; nil uses a net.Dialer with a 30 s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdlePerHost bounds the idle connections kept per host.
	MaxIdlePerHost int
	// IdleTimeout closes connections idle this long.
	IdleTimeout time.Duration
	// MaxResponseHeaderBytes bounds a response's status line and headers.
	MaxResponseHeaderBytes int64
	// ReadBufferSize and WriteBufferSize size a connection's buffers. The
	// read buffer is held while a response is open (and by idle
	// connections); the write buffer only while a request is written.
	ReadBufferSize, WriteBufferSize int

	writers sync.Pool // *bufio.Writer of WriteBufferSize

	mu    sync.Mutex
	hosts map[string]*host
	sweep *time.Timer // closes expired idle connections; nil when none are idle
}

// host is what the Transport knows of one scheme://host:port.
type host struct {
	lean bool    // requests go over the Transport's own connections
	addr string  // host:port to dial
	idle []*conn // oldest first; reused from the end; under Transport.mu
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" {
		return t.Fallback.RoundTrip(req)
	}
	h := t.hostFor(req)
	if !h.lean {
		return t.Fallback.RoundTrip(req)
	}
	return t.roundTrip(req, h)
}

// CloseIdleConnections closes idle connections, its own and Fallback's.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	var idle []*conn
	for _, h := range t.hosts {
		idle = append(idle, h.idle...)
		h.idle = nil
	}
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
	t.Fallback.CloseIdleConnections()
}

// hostFor returns req's host, deciding on first use whether its requests
// go over the Transport's own connections: no proxy is configured for it.
// The decision is kept, as the environment that makes it is read once per
// process (net/http).
func (t *Transport) hostFor(req *http.Request) *host {
	key := req.URL.Host
	t.mu.Lock()
	h, ok := t.hosts[key]
	t.mu.Unlock()
	if ok {
		return h
	}
	lean := true
	if t.Fallback.Proxy != nil {
		u, err := t.Fallback.Proxy(req)
		lean = err == nil && u == nil
	}
	addr := key
	if _, _, err := net.SplitHostPort(key); err != nil {
		addr = net.JoinHostPort(key, "80")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hosts == nil {
		t.hosts = make(map[string]*host)
	}
	if h, ok = t.hosts[key]; !ok {
		h = &host{lean: lean, addr: addr}
		t.hosts[key] = h
	}
	return h
}

// roundTrip sends req over a kept connection or a new one. A kept
// connection that fails while the request is written was closed by the
// upstream as it sat idle; the request, which the upstream cannot have
// read whole, is sent once more on a new connection.
func (t *Transport) roundTrip(req *http.Request, h *host) (*http.Response, error) {
	ctx := req.Context()
	for retried := false; ; retried = true {
		c, reused, err := t.getConn(ctx, h)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(ctx, req)
		var we *writeError
		if err == nil || !reused || retried || !errors.As(err, &we) || ctx.Err() != nil || !rewindable(req) {
			return resp, err
		}
		if req, err = rewound(req); err != nil {
			return nil, err
		}
	}
}

// rewindable reports whether req's body can be sent again.
func rewindable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewound returns a copy of req with a fresh body.
func rewound(req *http.Request) (*http.Request, error) {
	r2 := new(http.Request)
	*r2 = *req
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r2.Body = b
	}
	return r2, nil
}

// getConn returns a live idle connection to h, or dials one.
func (t *Transport) getConn(ctx context.Context, h *host) (c *conn, reused bool, err error) {
	for {
		c = t.popIdle(h)
		if c == nil {
			break
		}
		if alive(c.nc) {
			return c, true, nil
		}
		c.nc.Close()
	}
	dial := t.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	nc, err := dial(ctx, "tcp", h.addr)
	if err != nil {
		return nil, false, err
	}
	return t.newConn(nc, h), false, nil
}

// popIdle takes h's most recently used idle connection.
func (t *Transport) popIdle(h *host) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(h.idle) == 0 {
		return nil
	}
	c := h.idle[len(h.idle)-1]
	h.idle[len(h.idle)-1] = nil
	h.idle = h.idle[:len(h.idle)-1]
	return c
}

// putIdle keeps c for reuse, unless its host has enough idle connections.
func (t *Transport) putIdle(c *conn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	h := c.host
	if len(h.idle) >= t.maxIdle() {
		t.mu.Unlock()
		c.nc.Close()
		return
	}
	h.idle = append(h.idle, c)
	if t.sweep == nil {
		t.sweep = time.AfterFunc(t.idleTimeout(), t.sweepIdle)
	}
	t.mu.Unlock()
}

// sweepIdle closes the connections idle longer than IdleTimeout, and runs
// again while any are kept.
func (t *Transport) sweepIdle() {
	var expired []*conn
	cutoff := time.Now().Add(-t.idleTimeout())
	t.mu.Lock()
	any := false
	for _, h := range t.hosts {
		n := 0
		for n < len(h.idle) && h.idle[n].idleAt.Before(cutoff) {
			n++
		}
		expired = append(expired, h.idle[:n]...)
		h.idle = append(h.idle[:0], h.idle[n:]...)
		any = any || len(h.idle) > 0
	}
	t.sweep = nil
	if any {
		t.sweep = time.AfterFunc(t.idleTimeout()/2, t.sweepIdle)
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.nc.Close()
	}
}

func (t *Transport) maxIdle() int {
	if t.MaxIdlePerHost > 0 {
		return t.MaxIdlePerHost
	}
	return defaultMaxIdlePerHost
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleTimeout > 0 {
		return t.IdleTimeout
	}
	return defaultIdleTimeout
}

func (t *Transport) maxHeaderBytes() int64 {
	if t.MaxResponseHeaderBytes > 0 {
		return t.MaxResponseHeaderBytes
	}
	return defaultMaxHeaderBytes
}

func bufferSize(n int) int {
	if n > 0 {
		return n
	}
	return defaultBufferSize
}
