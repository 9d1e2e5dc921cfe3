package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Relay is an in-process TCP relay from Listen to Target, used to inject
// dependency outages (PostgreSQL, Redis) without touching the real servers:
// the process under test is pointed at the relay, and Cut drops every
// connection and refuses or holds new ones for a while.
//
// Set the fields, call Start, and Close when done.
type Relay struct {
	// Listen is the address to listen on, e.g. "127.0.0.1:0".
	Listen string
	// Target is the host:port every accepted connection is relayed to.
	Target string
	// Hold, when set, makes connections opened during a cut wait until the
	// cut ends and then be relayed (a network partition that heals) instead
	// of being closed at once (a server that is down).
	Hold bool
	// Log receives debug lines; nil discards.
	Log *slog.Logger

	ln     net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{} // both sides of every relayed pair
	until  time.Time             // a cut lasts until this instant
	resume chan struct{}         // closed when the current cut ends
	timer  *time.Timer
	closed bool
	wg     sync.WaitGroup

	accepted, refused, held, killed, dialErrs atomic.Int64
}

// RelayStats counts what a Relay did.
type RelayStats struct {
	// Accepted is every connection accepted, Refused those closed at once
	// because a cut was on, Held those that waited for a cut to end.
	Accepted int64 `json:"accepted"`
	Refused  int64 `json:"refused"`
	Held     int64 `json:"held"`
	// Killed is the open connections a Cut closed.
	Killed int64 `json:"killed"`
	// DialErrors is how often the target could not be reached.
	DialErrors int64 `json:"dial_errors"`
}

// Start listens and relays in the background until Close.
func (r *Relay) Start() error {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", r.Listen)
	if err != nil {
		return fmt.Errorf("relay listen: %w", err)
	}
	r.ln = ln
	r.conns = map[net.Conn]struct{}{}
	r.resume = make(chan struct{})
	close(r.resume) // not cut
	r.wg.Go(r.acceptLoop)
	return nil
}

// Addr returns the address the relay listens on.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Stats returns the counters so far.
func (r *Relay) Stats() RelayStats {
	return RelayStats{
		Accepted: r.accepted.Load(), Refused: r.refused.Load(), Held: r.held.Load(),
		Killed: r.killed.Load(), DialErrors: r.dialErrs.Load(),
	}
}

// Cut closes every open connection and, for d, refuses (or, with Hold,
// holds) new ones; then the relay resumes by itself. A Cut during a cut
// restarts the clock from now. It returns how many connections it closed.
func (r *Relay) Cut(d time.Duration) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.until.IsZero() {
		r.resume = make(chan struct{})
	}
	r.until = time.Now().Add(d)
	resume := r.resume
	r.timer = time.AfterFunc(d, func() { r.end(resume) })
	n := len(r.conns)
	for c := range r.conns {
		c.Close()
		delete(r.conns, c)
	}
	// Each pair has two entries; count connections as the client sees them.
	r.killed.Add(int64(n / 2))
	r.Log.Debug("relay cut", "target", r.Target, "for", d, "closed", n/2)
	return n / 2
}

// Resume ends a cut now.
func (r *Relay) Resume() {
	r.mu.Lock()
	resume := r.resume
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
	r.end(resume)
}

// end ends the cut whose resume channel is ch, if it is still the current one.
func (r *Relay) end(ch chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch != r.resume || r.until.IsZero() {
		return
	}
	r.until = time.Time{}
	close(r.resume)
}

// cutState reports whether a cut is on and the channel closed when it ends.
func (r *Relay) cutState() (bool, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.until.IsZero(), r.resume
}

// Close stops listening, closes every connection, ends any cut and waits
// for the relay's goroutines.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	if !r.until.IsZero() {
		r.until = time.Time{}
		close(r.resume)
	}
	for c := range r.conns {
		c.Close()
	}
	clear(r.conns)
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}

func (r *Relay) acceptLoop() {
	// Bounded by the listener: Close ends Accept with an error.
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.Log.Debug("relay accept", "err", err)
			}
			return
		}
		r.accepted.Add(1)
		r.wg.Go(func() { r.handle(c) })
	}
}

// handle relays one client connection.
func (r *Relay) handle(c net.Conn) {
	cut, resume := r.cutState()
	if cut && !r.Hold {
		r.refused.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) //nolint:errcheck // best effort: RST, like a closed port's refusal
		}
		c.Close()
		return
	}
	if cut {
		r.held.Add(1)
		<-resume // Close also closes it
		if r.isClosed() {
			c.Close()
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", r.Target)
	cancel()
	if err != nil {
		r.dialErrs.Add(1)
		r.Log.Debug("relay dial", "target", r.Target, "err", err)
		c.Close()
		return
	}
	if !r.track(c, up) {
		c.Close()
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src) //nolint:errcheck // either side closing ends the pair
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	r.untrack(c, up)
	c.Close()
	up.Close()
	<-done
}

// track registers a pair unless the relay is closed or a cut started since
// the connection was accepted (then the pair must not survive it).
func (r *Relay) track(c, up net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || !r.until.IsZero() {
		return false
	}
	r.conns[c], r.conns[up] = struct{}{}, struct{}{}
	return true
}

func (r *Relay) untrack(c, up net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
	delete(r.conns, up)
}

func (r *Relay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}
