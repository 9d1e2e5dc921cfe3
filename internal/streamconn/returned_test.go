//go:build linux

package streamconn

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// pipeListener hands out the server ends of in-memory connections, so that
// an http.Server runs inside a synctest bubble.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { close(l.done); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

// dial starts an http.Server with net/http's real timeouts on c's listener
// and returns one client connection to it.
func dialPipe(t *testing.T, c *Conns, h http.Handler, opts ...func(*http.Server)) (net.Conn, *bufio.Reader) {
	t.Helper()
	pl := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: time.Second, IdleTimeout: time.Minute}
	for _, o := range opts {
		o(hs)
	}
	go hs.Serve(c.Listener(pl))
	t.Cleanup(func() { c.Close(); hs.Close() })
	client, srv := net.Pipe()
	pl.conns <- srv
	t.Cleanup(func() { client.Close() })
	return client, bufio.NewReader(client)
}

// testPoller starts a poller outside any bubble (it lives as long as the
// test binary, as a gateway's does).
func testPoller(t *testing.T) *poller {
	t.Helper()
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const pipeRequest = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"

// readStream reads one streamed response whole.
func readStream(t *testing.T, br *bufio.Reader) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "data: 0\n\n" {
		t.Fatalf("body %q, %v", body, err)
	}
}

// TestReturnedWaitsIdleTimeout: a connection handed back after a stream is
// net/http's new connection, which would wait only ReadHeaderTimeout (1 s)
// for a request; it waits the idle timeout (1 min) for the client's next
// request, as a keep-alive connection does, and ReadHeaderTimeout runs from
// that request's first byte.
func TestReturnedWaitsIdleTimeout(t *testing.T) {
	cases := []struct {
		name   string
		pause  time.Duration // before the next request
		split  time.Duration // between its first byte and the rest
		closed time.Duration // after the first stream, when not served
	}{
		{"next request after 30s", 30 * time.Second, 0, 0},
		{"slow header within 1s of its first byte", 30 * time.Second, 900 * time.Millisecond, 0},
		{"slow header past 1s", 30 * time.Second, 2 * time.Second, 31 * time.Second},
		{"silent past the idle timeout", 61 * time.Second, 0, time.Minute},
	}
	p := testPoller(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := withPoller(p, time.Minute, nil) // pipes are not sockets: streams are taken, not watched
				client, br := dialPipe(t, c, streamHandler(c, 1, nil))
				go io.WriteString(client, pipeRequest)
				readStream(t, br)
				ended := time.Now()

				werr := make(chan error, 1)
				go func() {
					time.Sleep(tc.pause)
					if _, err := io.WriteString(client, pipeRequest[:1]); err != nil {
						werr <- err
						return
					}
					time.Sleep(tc.split)
					_, err := io.WriteString(client, pipeRequest[1:])
					werr <- err
				}()
				if tc.closed > 0 {
					// net/http answers a request cut by its header timeout
					// with a 400; a silent connection is just closed.
					b, err := io.ReadAll(br)
					if err != nil || strings.Contains(string(b), "200 OK") {
						t.Fatalf("the server answered %q (%v), want the connection closed", b, err)
					}
					if d := time.Since(ended); d != tc.closed {
						t.Errorf("connection closed %v after the stream, want %v", d, tc.closed)
					}
					<-werr // the writer fails on the closed pipe
					return
				}
				readStream(t, br)
				if err := <-werr; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestReturnedNotWrappedTwice: a connection that carries many streams is
// handed back as the same value each time, not a growing chain of wrappers.
func TestReturnedNotWrappedTwice(t *testing.T) {
	p := testPoller(t)
	synctest.Test(t, func(t *testing.T) {
		c := withPoller(p, time.Minute, nil)
		var served []net.Conn // net/http's new connections, in order
		client, br := dialPipe(t, c, streamHandler(c, 1, nil), func(hs *http.Server) {
			hs.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
				served = append(served, nc)
				return ctx
			}
		})
		for range 3 {
			go io.WriteString(client, pipeRequest)
			readStream(t, br)
		}
		synctest.Wait()
		// The accepted connection, then the same one handed back after
		// each stream.
		if len(served) != 4 {
			t.Fatalf("net/http served %d connections for 3 streams, want 4", len(served))
		}
		r, ok := served[1].(*returned)
		if !ok || r.Conn != served[0] || served[2] != served[1] || served[3] != served[1] {
			t.Errorf("handed back %T, %T, %T; want the same *returned around the accepted connection",
				served[1], served[2], served[3])
		}
	})
}

// TestReturnedClosedByClose: shutting down closes connections waiting for
// their client's next request at once (net/http would give them 5 s, as
// new connections), and one its client closed is not kept track of.
func TestReturnedClosedByClose(t *testing.T) {
	p := testPoller(t)
	synctest.Test(t, func(t *testing.T) {
		c := withPoller(p, time.Minute, nil)
		client, br := dialPipe(t, c, streamHandler(c, 1, nil))
		other, obr := dialPipe(t, c, streamHandler(c, 1, nil))
		go io.WriteString(client, pipeRequest)
		readStream(t, br)
		go io.WriteString(other, pipeRequest)
		readStream(t, obr)
		other.Close()
		synctest.Wait()
		c.mu.Lock()
		n := len(c.waiting)
		c.mu.Unlock()
		if n != 1 {
			t.Fatalf("%d connections waiting, want 1 (the other's client closed)", n)
		}
		start := time.Now()
		c.Close()
		if b, err := io.ReadAll(br); len(b) > 0 || err != nil || time.Since(start) != 0 {
			t.Errorf("after Close the client read %q (%v) %v later, want the connection closed at once", b, err, time.Since(start))
		}
	})
}

// TestReturnedCloseWrite: net/http half-closes a connection it answered
// with an error (so the client reads the answer, not a reset) only when
// the connection can; a handed-back one can.
func TestReturnedCloseWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	var nc net.Conn = &returned{Conn: srv, c: withPoller(testPoller(t), time.Minute, nil)}
	defer nc.Close()
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("a handed-back connection has no CloseWrite")
	}
	io.WriteString(nc, "answer")
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(client); err != nil || string(b) != "answer" {
		t.Fatalf("client read %q, %v; want the answer, then EOF", b, err)
	}
	io.WriteString(client, "still open")
	buf := make([]byte, 10)
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "still open" {
		t.Fatalf("server read %q, %v after CloseWrite; want the client's bytes", buf, err)
	}
}
