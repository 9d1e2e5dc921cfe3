package proxy

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
)

// A request that may become an event stream runs on a goroutine of its own
// (serveHandedOff) when its connection can be taken off net/http
// (streamconn). Once the stream's connection is taken the handler returns,
// and with it net/http's frames and the connection's buffers, which the
// handler's stack would otherwise keep alive for the stream's whole life
// (~12 KiB a stream, docs/perf.md); the request goes on, on its goroutine.
// Only Handler's requests are handed off: Serve's callers may wrap w in
// ways a taken connection would skip.

// handoff connects a handed-off request with the handler waiting for it.
type handoff struct {
	done      chan bool     // serve's result (aborted), when it ends before a take
	taken     chan struct{} // closed when the connection was taken
	stopWatch func() bool   // ends the watch on r.Context() (requestContext)
}

// serveMayHandOff reads and parses r on the handler's goroutine; a request
// that may be answered with an event stream (it asks for one, or it is
// forwarded verbatim) is then served on a goroutine of its own
// (serveHandedOff), any other here. A goroutine per request cost every
// non-stream call a goroutine, its stack's growth, a context.AfterFunc and
// two more switches, for nothing.
func (p *Proxy) serveMayHandOff(w http.ResponseWriter, r *http.Request, d Dialect) (aborted bool) {
	ex := p.begin(w, r, &Exchange{Dialect: d})
	if !ex.parseFirst() {
		return p.run(ex, nil)
	}
	return p.serveHandedOff(ex)
}

// parseFirst parses the request, answering it if that fails (ex.settled),
// and reports whether it may become an event stream.
func (ex *exchange) parseFirst() (mayStream bool) {
	defer func() {
		if v := recover(); v != nil {
			ex.recovered(v) // as run does: the request still leaves its record
			ex.settled, mayStream = true, false
		}
	}()
	if err := ex.parse(); err != nil {
		ex.fail(err)
		ex.settled = true
		return false
	}
	h := ex.req.Head()
	return h.Stream || !h.Metered
}

// serveHandedOff serves ex on a new goroutine and returns its result, or
// false as soon as its connection is taken.
func (p *Proxy) serveHandedOff(ex *exchange) (aborted bool) {
	h := &handoff{done: make(chan bool, 1), taken: make(chan struct{})}
	ex.handoff = h
	go func() {
		defer func() {
			// run recovers the dialect's panics; this is for its own.
			if v := recover(); v != nil {
				if p.Logger != nil {
					p.Logger.Error("panic serving request", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				}
				h.done <- true
			}
		}()
		h.done <- p.run(ex, nil)
	}()
	select {
	case aborted = <-h.done:
		return aborted
	case <-h.taken:
		return false
	}
}

// takeConn takes the client's connection for the event stream about to be
// sent, if it can be; the handler then returns (serveHandedOff).
func (ex *exchange) takeConn() {
	// The client leaving cancels ctx, as net/http's background read would
	// have. The closure holds the cancel func, not ex: an exchange is reused
	// once its request is done.
	cancel := ex.cancel
	sw := ex.p.Streams.Take(ex.w, ex.r, func() { cancel(context.Canceled) })
	if sw == nil {
		return
	}
	ex.w, ex.sw = sw, sw
	// From here the poller watches for the client: the handler's return
	// cancels r.Context().
	ex.handoff.stopWatch()
	// No retry can come now, and nothing else reads the request: let it go,
	// with its header map, URL and body reader (which holds the
	// connection's 4 KiB read buffer), ~1 KB of each open stream's heap.
	ex.r = nil
	close(ex.handoff.taken)
}
