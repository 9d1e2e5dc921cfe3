package streamconn

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// returned is a connection handed back to net/http after its stream.
// net/http serves it as a new connection, whose first request it waits for
// only ReadHeaderTimeout; a keep-alive connection waits its idle timeout
// for the next request, then ReadHeaderTimeout from that request's first
// byte. returned keeps the latter: until the next request's first byte
// arrives, a read deadline net/http sets is stretched to the idle one and
// restarted when the byte comes.
type returned struct {
	net.Conn
	c      *Conns
	prefix []byte // what the client sent past its last request (pipelining)

	waiting   atomic.Bool // idleUntil is set: Read's check without mu
	mu        sync.Mutex
	idleUntil time.Time     // zero once the next request began
	header    time.Duration // the deadline net/http asked for, from when it asked
}

// reset readies r for its next wait. A returned connection taken for
// another stream comes back as itself, not wrapped again.
func (r *returned) reset(prefix []byte, idle time.Duration) {
	r.prefix = prefix
	r.mu.Lock()
	r.idleUntil, r.header = time.Time{}, 0
	if len(prefix) == 0 {
		r.idleUntil = time.Now().Add(idle)
	}
	r.waiting.Store(len(prefix) == 0)
	r.mu.Unlock()
}

func (r *returned) Read(b []byte) (int, error) {
	if len(r.prefix) > 0 {
		n := copy(b, r.prefix)
		r.prefix = r.prefix[n:]
		return n, nil
	}
	n, err := r.Conn.Read(b)
	if n > 0 && r.waiting.Load() {
		r.began()
	}
	return n, err
}

// began ends the idle wait: the header timeout net/http asked for starts
// now, as it does for a keep-alive request.
func (r *returned) began() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.idleUntil.IsZero() {
		return
	}
	r.idleUntil = time.Time{}
	r.waiting.Store(false)
	r.c.forget(r)
	if r.header > 0 {
		_ = r.Conn.SetReadDeadline(time.Now().Add(r.header))
	}
}

func (r *returned) SetReadDeadline(t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.idleUntil.IsZero() && !t.IsZero() && t.Before(r.idleUntil) {
		r.header = time.Until(t)
		t = r.idleUntil
	}
	return r.Conn.SetReadDeadline(t)
}

// SetDeadline is SetReadDeadline's rule for reads, and sets writes' as asked.
func (r *returned) SetDeadline(t time.Time) error {
	if err := r.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return r.SetReadDeadline(t)
}

// SyscallConn lets the connection be watched again when it carries the
// next stream.
func (r *returned) SyscallConn() (syscall.RawConn, error) {
	sc, ok := r.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("streamconn: not a socket")
	}
	return sc.SyscallConn()
}

// Close stops Conns tracking r: net/http closes it when the client leaves or
// the idle timeout passes.
func (r *returned) Close() error {
	r.c.forget(r)
	return r.Conn.Close()
}

// CloseWrite lets net/http close a connection it answered with an error
// gracefully (FIN, then a pause), as it does a TCP connection, so the client
// reads the answer rather than a reset.
func (r *returned) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
