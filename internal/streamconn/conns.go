// Package streamconn serves open event streams off net/http's connection.
//
// For as long as a response is open, net/http holds its connection's 4 KiB
// read and 4 KiB write buffers, a 2 KiB chunking buffer and a goroutine that
// reads in the background to notice the client leaving: ~12 KiB of the
// ~42 KiB an idle stream cost the gateway (docs/perf.md). A stream's
// connection is taken (hijacked) when its headers are due; its events are
// written as chunks from a pooled buffer held only during a write, and one
// poller watches every taken connection for the client hanging up. When the
// stream ends cleanly the connection is handed back to net/http through the
// listener at once, to wait for the client's next request as a keep-alive
// connection does. (It used to wait in the poller, holding no goroutine,
// but every stream then paid the poller thread's wake-up and the switches
// around it: ~10% more CPU per stream and 0.3 ms more to the next stream's
// first chunk; docs/perf.md, ninth session.)
package streamconn

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Conns takes stream connections from net/http and gives them back. The
// zero value is not usable; New makes one. A nil *Conns takes nothing.
type Conns struct {
	poll *poller
	idle time.Duration
	log  *slog.Logger
	// bufs holds the buffers a Writer holds only from a Write to the Flush
	// after it: an idle stream holds none.
	bufs sync.Pool

	mu      sync.Mutex
	active  map[*Writer]struct{}
	waiting map[*returned]struct{} // handed back, before the next request's first byte
	drained chan struct{}          // closed when active empties, while draining
	ready   chan net.Conn          // connections for the listener to hand back
	done    chan struct{}          // closed by Close: nothing more is handed back
}

// New starts the poller. idle bounds how long a connection waits for the
// client's next request (net/http's IdleTimeout). Where the system has no
// poller it returns nil and an error: streams then stay with net/http.
func New(idle time.Duration, log *slog.Logger) (*Conns, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	return withPoller(p, idle, log), nil
}

// withPoller makes a Conns on p. (A test's synctest bubble makes its Conns
// here around a poller started outside it: the poller's goroutine never
// ends, and it blocks in a system call, which a bubble cannot wait out.)
func withPoller(p *poller, idle time.Duration, log *slog.Logger) *Conns {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Conns{poll: p, idle: idle, log: log, active: make(map[*Writer]struct{}),
		waiting: make(map[*returned]struct{}), ready: make(chan net.Conn, 64), done: make(chan struct{})}
}

// Take hijacks w's connection for an event stream and returns the writer
// that replaces w, or nil when the connection cannot be taken (HTTP/2, a
// client that asked to close, a writer that cannot hijack, Close ran).
// hangup is called (once, from another goroutine) if the client goes away
// while the stream is open; End must be called when the stream is done.
func (c *Conns) Take(w http.ResponseWriter, r *http.Request, hangup func()) *Writer {
	if !c.Takes(r) {
		return nil
	}
	header := w.Header()
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil
	}
	sw := &Writer{c: c, nc: nc, header: header, leftover: leftover(brw.Reader), onHangup: hangup}
	c.mu.Lock()
	c.active[sw] = struct{}{}
	c.mu.Unlock()
	sw.key, err = c.poll.watch(nc, false, func(bool) { sw.hangUp() })
	if err != nil {
		c.log.Debug("stream connection not watched", "error", err)
		sw.key = -1
	}
	return sw
}

func (c *Conns) getBuf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, chunkRoom, 4<<10)
	return &b
}

func (c *Conns) putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		c.bufs.Put(b)
	}
}

// Takes reports whether r's connection could be taken: HTTP/1.1, kept
// alive, on a Conns that is not closed.
func (c *Conns) Takes(r *http.Request) bool {
	if c == nil || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Close || r.TLS != nil {
		return false // TLS: a listener wrapped in tls.Listener would wrap a handed-back conn again
	}
	return !c.closed()
}

// closed reports whether Close ran.
func (c *Conns) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// leftover copies what the client sent past its request (pipelining).
func leftover(br *bufio.Reader) []byte {
	if br == nil || br.Buffered() == 0 {
		return nil
	}
	b, _ := br.Peek(br.Buffered())
	return append([]byte(nil), b...)
}

// ended removes a finished writer and hands its connection on.
func (c *Conns) ended(sw *Writer, keep bool) {
	c.mu.Lock()
	delete(c.active, sw)
	if c.drained != nil && len(c.active) == 0 {
		close(c.drained)
		c.drained = nil
	}
	c.mu.Unlock()
	if !keep || c.closed() {
		sw.nc.Close()
		return
	}
	c.handBack(sw.nc, sw.leftover)
}

// handBack queues nc for the listener's Accept: net/http serves the
// client's next request on it, as on a keep-alive connection.
func (c *Conns) handBack(nc net.Conn, leftover []byte) {
	r, ok := nc.(*returned)
	if !ok {
		r = &returned{Conn: nc, c: c}
	}
	r.reset(leftover, c.idle)
	// Under mu, so that Close, which drains ready after closing done, sees
	// every connection queued before it.
	c.mu.Lock()
	closed, queued := c.closed(), false
	if !closed {
		if len(leftover) == 0 {
			c.waiting[r] = struct{}{}
		}
		select {
		case c.ready <- r:
			queued = true
		default:
		}
	}
	c.mu.Unlock()
	switch {
	case closed:
		r.Close()
	case !queued: // a burst of returning clients: wait for Accept
		select {
		case c.ready <- r:
		case <-c.done:
			r.Close()
		}
	}
}

// forget stops tracking r as waiting: its client sent its next request, or
// it was closed.
func (c *Conns) forget(r *returned) {
	c.mu.Lock()
	delete(c.waiting, r)
	c.mu.Unlock()
}

// Drain waits for the open streams to end. When ctx ends first, their
// clients are hung up on (as net/http's Close would) and Drain waits for the
// handlers up to grace more.
func (c *Conns) Drain(ctx context.Context, grace time.Duration) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if len(c.active) == 0 {
		c.mu.Unlock()
		return nil
	}
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	done := c.drained
	c.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	c.mu.Lock()
	open := make([]*Writer, 0, len(c.active))
	for sw := range c.active {
		open = append(open, sw)
	}
	c.mu.Unlock()
	for _, sw := range open {
		// Closing the connection is not a hangup the poller sees; a stream
		// waiting on its upstream learns of it from hangUp.
		sw.hangUp()
		sw.nc.Close()
	}
	select {
	case <-done:
	case <-time.After(grace):
	}
	return ctx.Err()
}

// Close stops handing connections back and closes the waiting ones. Open
// streams go on until they end.
func (c *Conns) Close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.closed() {
		c.mu.Unlock()
		return
	}
	close(c.done)
	// net/http's Shutdown closes an idle keep-alive connection at once but
	// gives a new one (which a handed-back one is to it) 5 s to send its
	// first request.
	waiting := make([]*returned, 0, len(c.waiting))
	for r := range c.waiting {
		waiting = append(waiting, r)
	}
	c.mu.Unlock()
	for _, r := range waiting {
		r.Conn.Close()
	}
	for {
		select {
		case nc := <-c.ready:
			nc.Close()
		default:
			return
		}
	}
}

// Listener wraps ln so that Accept also returns the connections handed
// back after their streams. Closing it closes ln.
func (c *Conns) Listener(ln net.Listener) net.Listener {
	if c == nil {
		return ln
	}
	l := &listener{Listener: ln, c: c, accepted: make(chan acceptResult), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

type acceptResult struct {
	nc  net.Conn
	err error
}

type listener struct {
	net.Listener
	c        *Conns
	accepted chan acceptResult
	done     chan struct{}
	once     sync.Once
}

// acceptLoop accepts new connections for Accept, which also waits for
// handed-back ones.
func (l *listener) acceptLoop() {
	for {
		nc, err := l.Listener.Accept()
		select {
		case l.accepted <- acceptResult{nc, err}:
		case <-l.done:
			if nc != nil {
				nc.Close()
			}
			return
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.c.ready:
		return nc, nil
	case r := <-l.accepted:
		return r.nc, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}
