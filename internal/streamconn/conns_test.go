//go:build linux

package streamconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server serves h through c's listener, as server.Server does.
func server(t *testing.T, c *Conns, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(c.Listener(ln))
	t.Cleanup(func() { c.Close(); hs.Close() })
	return ln.Addr().String()
}

func newConns(t *testing.T) *Conns {
	t.Helper()
	c, err := New(time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// streamHandler takes the connection and writes n events, one flush each.
func streamHandler(c *Conns, n int, hungUp chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		sw := c.Take(w, r, func() {
			if hungUp != nil {
				close(hungUp)
			}
		})
		if sw == nil {
			http.Error(w, "not taken", http.StatusInternalServerError)
			return
		}
		defer sw.End(false)
		rc := http.NewResponseController(sw)
		for i := range n {
			fmt.Fprintf(sw, "data: %d\n\n", i)
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// TestStreamAndKeepAlive: a real client reads taken streams whole, with
// their header, and reuses one connection for all of them, each handed
// back to net/http after its stream.
func TestStreamAndKeepAlive(t *testing.T) {
	c := newConns(t)
	addr := server(t, c, streamHandler(c, 3, nil))
	var dials atomic.Int32
	d := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, n, a)
	}}}
	defer client.CloseIdleConnections()
	for i := range 5 {
		resp, err := client.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "data: 0\n\ndata: 1\n\ndata: 2\n\n" ||
			resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Date") == "" ||
			len(resp.TransferEncoding) != 1 {
			t.Fatalf("request %d: %d %q %v %v", i, resp.StatusCode, body, resp.Header, err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("the client dialed %d connections for 5 streams, want 1", n)
	}
}

// TestPipelinedRequest: bytes the client sent past its request are served
// as the next request on the handed-back connection.
func TestPipelinedRequest(t *testing.T) {
	c := newConns(t)
	addr := server(t, c, streamHandler(c, 2, nil))
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
	io.WriteString(nc, req+req)
	br := bufio.NewReader(nc)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "data: 0\n\ndata: 1\n\n" {
			t.Fatalf("response %d: %q %v", i, body, err)
		}
	}
}

// TestAbortedEndsWithoutFinalChunk: an aborted stream closes its
// connection, and the client sees a broken body, not a complete one.
func TestAbortedEndsWithoutFinalChunk(t *testing.T) {
	c := newConns(t)
	addr := server(t, c, func(w http.ResponseWriter, r *http.Request) {
		sw := c.Take(w, r, func() {})
		fmt.Fprint(sw, "data: partial\n\n")
		sw.Flush()
		sw.End(true)
	})
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(body) != "data: partial\n\n" {
		t.Errorf("body %q, err %v; want the partial event and io.ErrUnexpectedEOF", body, err)
	}
}

// TestHangupIsNoticed: a client that goes away mid-stream is noticed while
// the stream waits, with no read of the connection by the handler.
func TestHangupIsNoticed(t *testing.T) {
	c := newConns(t)
	hungUp := make(chan struct{})
	addr := server(t, c, func(w http.ResponseWriter, r *http.Request) {
		sw := c.Take(w, r, func() { close(hungUp) })
		defer sw.End(false)
		sw.Flush() // the header: the stream is open
		select {
		case <-hungUp:
		case <-time.After(10 * time.Second):
		}
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(nc, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(nc), nil); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	select {
	case <-hungUp:
	case <-time.After(5 * time.Second):
		t.Fatal("the client's hangup was not noticed")
	}
}

// TestDrain: Drain waits for open streams, and past its deadline closes
// their connections; Close stops hand-backs.
func TestDrain(t *testing.T) {
	c := newConns(t)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	addr := server(t, c, func(w http.ResponseWriter, r *http.Request) {
		sw := c.Take(w, r, func() {})
		defer sw.End(false)
		sw.Flush()
		started <- struct{}{}
		<-release
	})
	for range 2 {
		go http.Post("http://"+addr+"/", "text/plain", strings.NewReader("x"))
	}
	<-started
	<-started
	c.Close()
	if c.Takes(&http.Request{ProtoMajor: 1, ProtoMinor: 1}) {
		t.Error("a closed Conns still takes connections")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Drain(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with streams open past its deadline: %v", err)
	}
	close(release)
	if err := c.Drain(context.Background(), 0); err != nil {
		t.Errorf("Drain after the streams ended: %v", err)
	}
}

// TestNotTaken: HTTP/1.0, Connection: close and a nil Conns leave the
// connection with net/http.
func TestNotTaken(t *testing.T) {
	c := newConns(t)
	defer c.Close()
	tests := []struct {
		name  string
		c     *Conns
		major int
		minor int
		close bool
	}{
		{"http/1.0", c, 1, 0, false},
		{"connection close", c, 1, 1, true},
		{"http/2", c, 2, 0, false},
		{"nil conns", nil, 1, 1, false},
	}
	for _, tc := range tests {
		r := &http.Request{ProtoMajor: tc.major, ProtoMinor: tc.minor, Close: tc.close}
		if tc.c.Takes(r) {
			t.Errorf("%s: taken", tc.name)
		}
	}
}
