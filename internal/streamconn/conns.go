// Package streamconn serves open event streams off net/http's connection.
//
// For as long as a response is open, net/http holds its connection's 4 KiB
// read and 4 KiB write buffers, a 2 KiB chunking buffer and a goroutine that
// reads in the background to notice the client leaving: ~12 KiB of the
// ~42 KiB an idle stream cost the gateway (docs/perf.md). A stream's
// connection is taken (hijacked) when its headers are due; its events are
// written as chunks from a pooled buffer held only during a write, and one
// poller watches every taken connection for the client hanging up. When the
// stream ends cleanly the connection waits, with no goroutine, for the
// client's next request, and is then handed back to net/http through the
// listener, as a keep-alive connection would have been served.
package streamconn

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
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
	parked  map[*parked]struct{}
	drained chan struct{} // closed when active empties, while draining
	ready   chan net.Conn // connections for the listener to hand back
	done    chan struct{} // closed by Close: nothing is parked or handed back
}

// New starts the poller. idle bounds how long a connection waits for the
// client's next request (net/http's IdleTimeout). Where the system has no
// poller it returns nil and an error: streams then stay with net/http.
func New(idle time.Duration, log *slog.Logger) (*Conns, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Conns{poll: p, idle: idle, log: log, active: make(map[*Writer]struct{}),
		parked: make(map[*parked]struct{}), ready: make(chan net.Conn, 64), done: make(chan struct{})}, nil
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
	c.park(sw.nc, sw.leftover)
}

// parked is a connection waiting for the client's next request.
type parked struct {
	nc    net.Conn
	key   int32 // the poller's; set under Conns.mu
	timer *time.Timer
	once  sync.Once
}

// park waits, with no goroutine, for the client's next request on nc, then
// hands nc back to net/http; a client that closes or stays silent past the
// idle timeout has nc closed.
func (c *Conns) park(nc net.Conn, leftover []byte) {
	if len(leftover) > 0 {
		c.handBack(nc, leftover) // the next request is already here
		return
	}
	pk := &parked{nc: nc}
	c.mu.Lock() // unpark reads pk.timer and pk.key under c.mu
	c.parked[pk] = struct{}{}
	pk.timer = time.AfterFunc(c.idle, func() { c.unpark(pk, false) })
	c.mu.Unlock()
	key, err := c.poll.watch(nc, true, func(hangup bool) { c.unpark(pk, !hangup) })
	if err != nil {
		c.unpark(pk, false)
		return
	}
	c.mu.Lock()
	pk.key = key
	c.mu.Unlock()
}

// unpark ends pk's wait once: the connection goes back to net/http when
// the client's next request came (next), and is closed otherwise (the
// client left, the idle timeout passed, Close ran).
func (c *Conns) unpark(pk *parked, next bool) {
	pk.once.Do(func() {
		c.mu.Lock()
		delete(c.parked, pk)
		key := pk.key
		c.mu.Unlock()
		pk.timer.Stop()
		c.poll.unwatch(pk.nc, key)
		if !next {
			pk.nc.Close()
			return
		}
		c.handBack(pk.nc, nil)
	})
}

// handBack queues nc for the listener's Accept.
func (c *Conns) handBack(nc net.Conn, leftover []byte) {
	if len(leftover) > 0 {
		nc = &prefixConn{Conn: nc, prefix: leftover}
	}
	if c.closed() {
		nc.Close()
		return
	}
	select {
	case c.ready <- nc:
	default:
		// A burst of returning clients: wait for Accept off the poller's
		// goroutine, which must stay free to notice hangups.
		go func() {
			select {
			case c.ready <- nc:
			case <-c.done:
				nc.Close()
			}
		}()
	}
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
	waiting := make([]*parked, 0, len(c.parked))
	for pk := range c.parked {
		waiting = append(waiting, pk)
	}
	c.mu.Unlock()
	for _, pk := range waiting {
		c.unpark(pk, false)
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

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// SyscallConn lets the connection be watched again when it carries the
// next stream.
func (p *prefixConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := p.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("streamconn: not a socket")
	}
	return sc.SyscallConn()
}
