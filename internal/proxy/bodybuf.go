package proxy

import (
	"bytes"
	"errors"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"
)

// Large request bodies are read into pooled buffers. A 200 KB body read into
// a fresh slice cost a zeroed large allocation and the GC work to reclaim it
// on every request: about a fifth of the gateway's CPU for such requests.
//
// A pooled buffer is shared by the exchange and every outbound request body
// that reads it, and goes back to its pool only when all of them are done:
// the exchange at the end of Serve, each outbound body when the transport
// closes it. The transport may still be writing a body after RoundTrip
// returned (an upstream that answers before reading the whole request), and
// it closes the body only then, so a buffer is never handed to another
// request while bytes of it can still reach an upstream. A transport that
// never closes a body only costs the buffer its reuse.
const (
	minPooledBody = 32 << 10 // smaller bodies are cheap to allocate
	maxPooledBody = 8 << 20  // larger ones are rare; not worth keeping
	bodyClasses   = 9        // 32 KiB, 64 KiB, ... 8 MiB
)

// bodyPools holds one pool per power-of-two size class.
type bodyPools [bodyClasses]sync.Pool

// bodyBuf is a pooled buffer with a reference count.
type bodyBuf struct {
	b     []byte
	refs  atomic.Int32
	pool  *sync.Pool
	class int
}

// get returns a buffer with capacity at least n and one reference, or nil
// when n is outside the pooled sizes.
func (ps *bodyPools) get(n int) *bodyBuf {
	if n < minPooledBody || n > maxPooledBody {
		return nil
	}
	c := bits.Len(uint(n-1)) - bits.Len(uint(minPooledBody-1))
	c = max(c, 0)
	bb, _ := ps[c].Get().(*bodyBuf)
	if bb == nil {
		bb = &bodyBuf{b: make([]byte, minPooledBody<<c), pool: &ps[c], class: c}
	}
	bb.refs.Store(1)
	return bb
}

// acquire adds a reference unless the buffer was already released.
func (bb *bodyBuf) acquire() bool {
	for {
		n := bb.refs.Load()
		if n <= 0 {
			return false
		}
		if bb.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one returns the buffer to its pool.
func (bb *bodyBuf) release() {
	if bb.refs.Add(-1) == 0 {
		bb.pool.Put(bb)
	}
}

var errBodyClosed = errors.New("proxy: request body read after close")

// outBody is an outbound request body over b. When b lives in a pooled
// buffer, the outBody holds a reference to it until it is closed and no
// Read is in progress; reads after Close fail instead of reading a buffer
// that may belong to another request by then.
type outBody struct {
	mu     sync.Mutex
	rd     bytes.Reader
	buf    *bodyBuf // nil: b is ordinary memory
	active int
	closed bool
}

// newOutBody returns a body reading b, holding a reference to buf (which
// may be nil). It fails when buf was already released.
func newOutBody(b []byte, buf *bodyBuf) (*outBody, error) {
	if buf != nil && !buf.acquire() {
		return nil, errBodyClosed
	}
	o := &outBody{buf: buf}
	o.rd.Reset(b)
	return o, nil
}

func (o *outBody) Read(p []byte) (int, error) {
	if !o.enter() {
		return 0, errBodyClosed
	}
	defer o.leave()
	return o.rd.Read(p)
}

// WriteTo writes what is left of the body in one Write: a transport that
// copies it (h1) then hands the whole body to the socket, without a copy
// buffer of its own.
func (o *outBody) WriteTo(w io.Writer) (int64, error) {
	if !o.enter() {
		return 0, errBodyClosed
	}
	defer o.leave()
	return o.rd.WriteTo(w)
}

// enter starts a read of the buffer unless the body was closed; leave ends
// it, releasing the buffer if Close came meanwhile.
func (o *outBody) enter() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.active++
	return true
}

func (o *outBody) leave() {
	o.mu.Lock()
	o.active--
	last := o.closed && o.active == 0
	o.mu.Unlock()
	if last {
		o.drop()
	}
}

// Close releases the buffer once no Read is in progress. It is idempotent.
func (o *outBody) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	last := o.active == 0
	o.mu.Unlock()
	if last {
		o.drop()
	}
	return nil
}

func (o *outBody) drop() {
	if o.buf != nil {
		o.buf.release()
	}
}

var (
	_ io.ReadCloser = (*outBody)(nil)
	_ io.WriterTo   = (*outBody)(nil)
)
