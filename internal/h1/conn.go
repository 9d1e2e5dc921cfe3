package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// conn is one keep-alive connection. Between requests it sits in its host's
// idle list; during one, its goroutine is the caller's.
type conn struct {
	t      *Transport
	host   *host
	nc     net.Conn
	lr     limitedConn // nc, bounded while a response's headers are read
	br     *bufio.Reader
	idleAt time.Time
}

func (t *Transport) newConn(nc net.Conn, h *host) *conn {
	c := &conn{t: t, host: h, nc: nc}
	c.lr = limitedConn{nc: nc, n: -1}
	c.br = bufio.NewReaderSize(&c.lr, bufferSize(t.ReadBufferSize))
	return c
}

// errHeaderTooLarge: the upstream's status line and headers passed
// MaxResponseHeaderBytes.
var errHeaderTooLarge = errors.New("h1: upstream response headers too large")

// limitedConn reads from nc, at most n more bytes while n >= 0.
type limitedConn struct {
	nc net.Conn
	n  int64
}

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.nc.Read(p)
	}
	if l.n == 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.nc.Read(p)
	l.n -= int64(n)
	return n, err
}

// writeError: the request could not be written whole.
type writeError struct{ err error }

func (e *writeError) Error() string { return "h1: writing the request: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// earlyAnswerWait bounds the wait for an answer after a failed write.
const earlyAnswerWait = time.Second

// aLongTimeAgo, as a deadline, ends a blocked read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes req and reads the response's headers. The connection
// belongs to the response's body from then on: it goes back to the idle
// list when the body has been read to its end, and is closed otherwise.
func (c *conn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	werr := c.write(req)
	if werr != nil {
		// Only an answer already on its way is worth waiting for: a body
		// that failed to read leaves the upstream waiting for the rest.
		c.nc.SetReadDeadline(time.Now().Add(earlyAnswerWait))
	}
	resp, err := c.readResponse(req)
	if err != nil {
		stop()
		c.nc.Close()
		if werr != nil {
			return nil, &writeError{ctxErr(ctx, werr)}
		}
		return nil, ctxErr(ctx, err)
	}
	keep := werr == nil && !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		c.release(keep, stop) // nothing to read: the connection is free now
		return resp, nil
	}
	resp.Body = &body{rc: resp.Body, c: c, ctx: ctx, stop: stop, keep: keep}
	return resp, nil
}

// write sends req. An upstream may answer before it has read the whole
// request (a 413 for a large body) and close: the caller still reads that
// answer.
func (c *conn) write(req *http.Request) error {
	bw, _ := c.t.writers.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(c.nc, bufferSize(c.t.WriteBufferSize))
	} else {
		bw.Reset(c.nc)
	}
	err := writeRequest(bw, req)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	c.t.writers.Put(bw)
	return err
}

// readResponse reads the response's status line and headers, skipping
// informational (1xx) responses.
func (c *conn) readResponse(req *http.Request) (*http.Response, error) {
	c.lr.n = c.t.maxHeaderBytes() + int64(c.br.Size())
	defer func() { c.lr.n = -1 }()
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("h1: upstream switched protocols")
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			continue
		}
		return resp, nil
	}
}

// ctxErr is err, or the context's error (and cause) once ctx is done: its
// deadline is what ended the read or write.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if cause := context.Cause(ctx); cause != ctx.Err() {
		return fmt.Errorf("%w: %w", ctx.Err(), cause)
	}
	return ctx.Err()
}

// errBodyClosed: a read after the body was closed or read to its end.
var errBodyClosed = errors.New("h1: read on closed response body")

// body is a response's body. Read and Close may be called from different
// goroutines (a client that went away closes it while a read waits).
type body struct {
	rc   io.ReadCloser // http.ReadResponse's body, reading c.br
	c    *conn
	ctx  context.Context
	stop func() bool // stops the context's hold on the connection
	keep bool        // the connection may be reused at the body's end
	done atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.finish(b.keep)
		err = io.EOF
	default:
		err = ctxErr(b.ctx, err)
		b.finish(false)
	}
	return n, err
}

// Buffered is how many bytes past the headers were read with them: the
// start of the body, already here.
func (b *body) Buffered() int {
	if b.done.Load() {
		return 0
	}
	return b.c.br.Buffered()
}

// Await blocks until the connection holds bytes the body has not read, or
// until reading it fails (the error is left for Read), without reading
// them. A stream waits for its next event here (sse.Reader.Wait), ten
// frames above the socket rather than twenty: with net/http's chunked
// decoder under it the waiting goroutine used too much of its stack for a
// collection to halve it (docs/perf.md, thirteenth session).
func (b *body) Await() {
	if b.done.Load() || b.c.br.Buffered() > 0 {
		return
	}
	_, _ = b.c.br.Peek(1)
}

// Close closes the connection unless the body was read to its end: what is
// left of a stream is not worth reading.
func (b *body) Close() error {
	b.finish(false)
	return nil
}

// finish ends the body once: the connection goes back to the idle list
// when keep allows and nothing is left unread, and is closed otherwise.
func (b *body) finish(keep bool) {
	if b.done.CompareAndSwap(false, true) {
		b.c.release(keep, b.stop)
	}
}

// release ends the context's hold on c (stop) and puts c back in the idle
// list when keep allows and nothing is left unread; it closes c otherwise.
func (c *conn) release(keep bool, stop func() bool) {
	if stop() && keep && c.br.Buffered() == 0 {
		c.t.putIdle(c)
		return
	}
	c.nc.Close()
}
