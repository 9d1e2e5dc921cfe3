package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func newTransport() *Transport {
	return &Transport{Fallback: &http.Transport{}}
}

// countingServer is an httptest server that counts the connections it saw.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func post(t *testing.T, tr http.RoundTripper, ctx context.Context, u, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return tr.RoundTrip(req)
}

// TestKeepAlive: responses of every framing, read to their end, leave their
// connection for the next request; the upstream sees each body whole.
func TestKeepAlive(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: %s %d\n\n", b, i)
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b)
		}
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()
	tests := []struct{ path, want string }{
		{"/whole", "hello"},
		{"/stream", "data: hello 0\n\ndata: hello 1\n\ndata: hello 2\n\n"},
		{"/empty", ""},
	}
	for range 5 {
		for _, tc := range tests {
			resp, err := post(t, tr, context.Background(), srv.URL+tc.path, "hello")
			if err != nil {
				t.Fatalf("%s: %v", tc.path, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(got) != tc.want {
				t.Fatalf("%s: body %q, %v; want %q", tc.path, got, err, tc.want)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 15 sequential requests, want 1", n)
	}
}

// TestEarlyCloseDropsConnection: a body closed before its end closes its
// connection; the next request dials a new one and succeeds.
func TestEarlyCloseDropsConnection(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 100 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()
	for i := range 3 {
		resp, err := post(t, tr, context.Background(), srv.URL, "x")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, err := resp.Body.Read(buf); !errors.Is(err, errBodyClosed) {
			t.Errorf("read after close: %v, want errBodyClosed", err)
		}
		if n := conns.Load(); n != int32(i+1) {
			t.Errorf("after %d early closes: %d connections", i+1, n)
		}
	}
}

// rawServer accepts connections and runs serve on each.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); serve(c) })
		}
	})
	return "http://" + ln.Addr().String()
}

// readRequest reads one request and its body from br.
func readRequest(br *bufio.Reader) (string, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(req.Body)
	return string(b), err
}

// TestUpstreamClosedIdleConnection: an upstream that closes each connection
// after one answer (while advertising keep-alive) costs nothing but a new
// dial: the closed idle connection is found before it is written to.
func TestUpstreamClosedIdleConnection(t *testing.T) {
	var dials atomic.Int32
	closed := make(chan struct{}, 4)
	u := rawServer(t, func(c net.Conn) {
		dials.Add(1)
		body, err := readRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		c.Close()
		closed <- struct{}{}
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()
	for i := range 4 {
		want := fmt.Sprint("request ", i)
		resp, err := post(t, tr, context.Background(), u, want)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Fatalf("request %d: %q", i, got)
		}
		<-closed // the upstream closed the idle connection: this test is about it
	}
	if n := dials.Load(); n != 4 {
		t.Errorf("%d connections, want 4", n)
	}
}

// failingConn fails its writes once armed, as a connection the upstream
// closed while it sat idle does.
type failingConn struct {
	net.Conn
	armed *atomic.Bool
}

func (c failingConn) Write(p []byte) (int, error) {
	if c.armed.Swap(false) {
		return 0, errors.New("write: broken pipe")
	}
	return c.Conn.Write(p)
}

// TestRetryOnWriteFailure: a request whose write fails on a reused
// connection is sent again, body and all, on a new one; on a new
// connection the failure is the caller's.
func TestRetryOnWriteFailure(t *testing.T) {
	var bodies []string
	var mu sync.Mutex
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	var armed atomic.Bool
	d := &net.Dialer{}
	tr := newTransport()
	tr.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		return failingConn{c, &armed}, err
	}
	defer tr.CloseIdleConnections()
	for i, body := range []string{"first", "second"} {
		if i == 1 {
			armed.Store(true)
		}
		resp, err := post(t, tr, context.Background(), srv.URL, body)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if fmt.Sprint(bodies) != "[first second]" || conns.Load() != 2 {
		t.Errorf("upstream saw %q over %d connections, want [first second] over 2", bodies, conns.Load())
	}
	tr.CloseIdleConnections()
	armed.Store(true)
	if _, err := post(t, tr, context.Background(), srv.URL, "third"); err == nil {
		t.Error("a write failure on a new connection was not reported")
	}
}

// TestContextEndsBlockedReads: cancelling the request's context ends a wait
// for headers and a wait inside the body, with the cause in the error.
func TestContextEndsBlockedReads(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	u := rawServer(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		if req.URL.Path == "/body" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		}
		<-release
	})
	cause := errors.New("idle timeout")
	tr := newTransport()
	defer tr.CloseIdleConnections()

	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(20*time.Millisecond, func() { cancel(cause) })
	if _, err := post(t, tr, ctx, u+"/headers", "x"); !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Errorf("waiting for headers: %v, want context.Canceled and the cause", err)
	}

	ctx, cancel = context.WithCancelCause(context.Background())
	resp, err := post(t, tr, ctx, u+"/body", "x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("first chunk %q, %v", buf, err)
	}
	time.AfterFunc(20*time.Millisecond, func() { cancel(cause) })
	if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Errorf("waiting in the body: %v, want context.Canceled and the cause", err)
	}
}

// TestBodyAwait: Await returns once the upstream sent more of the body,
// consuming none of it, and once the connection failed, leaving the error
// to Read; on a finished body it returns at once.
func TestBodyAwait(t *testing.T) {
	next := make(chan string)
	u := rawServer(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		s := <-next // one per connection: the client closes each body unfinished
		if s == "" {
			c.Close() // mid-body: the upstream fails
			return
		}
		io.WriteString(c, s)
		io.Copy(io.Discard, c) // until the client closes
	})
	tr := newTransport()
	defer tr.CloseIdleConnections()
	for _, tc := range []struct {
		name string
		send string
		read string // what Read returns after Await; "" for an error
	}{
		{"a chunk", "5\r\nhello\r\n", "hello"},
		{"the connection fails", "", ""},
	} {
		resp, err := post(t, tr, context.Background(), u, "x")
		if err != nil {
			t.Fatal(err)
		}
		a, ok := resp.Body.(interface{ Await() })
		if !ok {
			t.Fatalf("%T has no Await", resp.Body)
		}
		done := make(chan struct{})
		go func() { a.Await(); close(done) }()
		next <- tc.send
		<-done
		buf := make([]byte, 16)
		n, err := resp.Body.Read(buf)
		if tc.read != "" && (err != nil || string(buf[:n]) != tc.read) {
			t.Errorf("%s: Read after Await = %q, %v; want %q", tc.name, buf[:n], err, tc.read)
		}
		if tc.read == "" && err == nil {
			t.Errorf("%s: Read after Await = %q, nil; want the connection's error", tc.name, buf[:n])
		}
		resp.Body.Close()
		a.Await() // a finished body: at once
	}
}

// TestResponseShapes: informational answers are skipped; oversized headers
// and protocol switches are errors; a close-delimited body is read whole.
func TestResponseShapes(t *testing.T) {
	tests := []struct {
		name, answer, body string
		err                error
	}{
		{"100 continue skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", nil},
		{"headers too large", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", "", errHeaderTooLarge},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "", nil},
		{"close-delimited", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", "until the end", nil},
		{"garbage", "hello\r\n\r\n", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := rawServer(t, func(c net.Conn) {
				if _, err := readRequest(bufio.NewReader(c)); err == nil {
					io.WriteString(c, tc.answer)
				}
			})
			tr := newTransport()
			tr.MaxResponseHeaderBytes = 1 << 10
			defer tr.CloseIdleConnections()
			resp, err := post(t, tr, context.Background(), u, "x")
			wantErr := tc.body == ""
			if wantErr != (err != nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("err %v, want error %v (%v)", err, wantErr, tc.err)
			}
			if err != nil {
				return
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(got) != tc.body {
				t.Errorf("body %q, %v; want %q", got, err, tc.body)
			}
		})
	}
}

// TestFallback: https:// URLs and proxied http:// hosts go to Fallback.
func TestFallback(t *testing.T) {
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls")
	}))
	defer tls.Close()
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.IsAbs() {
			proxied.Add(1)
		}
		io.WriteString(w, "via proxy")
	}))
	defer proxy.Close()
	fb := tls.Client().Transport.(*http.Transport).Clone()
	pu, _ := url.Parse(proxy.URL)
	fb.Proxy = func(r *http.Request) (*url.URL, error) {
		if r.URL.Host == "proxied.test" {
			return pu, nil
		}
		return nil, nil
	}
	tr := &Transport{Fallback: fb}
	defer tr.CloseIdleConnections()
	for _, tc := range []struct{ url, want string }{{tls.URL, "tls"}, {"http://proxied.test/x", "via proxy"}} {
		resp, err := post(t, tr, context.Background(), tc.url, "x")
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != tc.want {
			t.Errorf("%s: %q, want %q", tc.url, got, tc.want)
		}
	}
	if proxied.Load() != 1 {
		t.Errorf("proxy saw %d requests, want 1", proxied.Load())
	}
}

// TestConcurrent: many goroutines stream at once, some closing early,
// while idle connections are closed under them (run with -race).
func TestConcurrent(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		for range 5 {
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
	})
	tr := newTransport()
	tr.MaxIdlePerHost = 4
	defer tr.CloseIdleConnections()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				body := fmt.Sprint(g, "-", i)
				resp, err := post(t, tr, context.Background(), srv.URL, body)
				if err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					resp.Body.Close()
					continue
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := strings.Repeat("data: "+body+"\n\n", 5); err != nil || string(got) != want {
					t.Errorf("%s: %q, %v", body, got, err)
					return
				}
				if i%7 == 0 {
					tr.CloseIdleConnections()
				}
			}
		})
	}
	wg.Wait()
}

// TestIdleConnectionsExpire: a connection idle past IdleTimeout is closed.
func TestIdleConnectionsExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		closed := make(chan struct{})
		tr := newTransport()
		tr.IdleTimeout = time.Minute
		tr.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer close(closed)
				br := bufio.NewReader(server)
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(server, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				br.ReadByte() // returns when the client closes
			}()
			return client, nil
		}
		resp, err := post(t, tr, context.Background(), "http://upstream.test/", "x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(59 * time.Second)
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("closed before its idle timeout")
		default:
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case <-closed:
		default:
			t.Fatal("still open after twice its idle timeout")
		}
	})
}

// FuzzResponse feeds arbitrary upstream bytes to RoundTrip: whatever
// arrives, it answers or fails, and never panics or hangs.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		tr := newTransport()
		tr.MaxResponseHeaderBytes = 4 << 10
		tr.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				if _, err := readRequest(bufio.NewReader(server)); err == nil {
					server.Write(answer)
				}
			}()
			return client, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://upstream.test/", bytes.NewReader([]byte("x")))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if ctx.Err() != nil {
			t.Fatal("a response hung")
		}
	})
}
