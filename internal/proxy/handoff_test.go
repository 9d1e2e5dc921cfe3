//go:build linux

package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/streamconn"
	"github.com/tollgate/tollgate/internal/upstream"
)

// takenGateway serves stubDialect through Handler with streamconn, as
// tollgate serve does; the upstream streams two events (model "wait": one,
// "slow": none), then waits for its request to be cancelled (reported on
// cancelled) or for a minute. first holds the first write to each client
// connection.
func takenGateway(t *testing.T, d stubDialect) (addr string, rec *records, cancelled chan struct{}, first *firstWrites) {
	t.Helper()
	return takenGatewayGate(t, d, nil)
}

// takenGatewayGate is takenGateway with a Gate.
func takenGatewayGate(t *testing.T, d stubDialect, gate Gate) (addr string, rec *records, cancelled chan struct{}, first *firstWrites) {
	t.Helper()
	cancelled = make(chan struct{}, 1)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		model, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		if string(model) != "slow" {
			fmt.Fprintf(w, "data: hello %s\n\n", model)
		}
		w.(http.Flusher).Flush()
		if string(model) == "wait" || string(model) == "slow" {
			select {
			case <-r.Context().Done():
				cancelled <- struct{}{}
			case <-time.After(time.Minute):
			}
			return
		}
		fmt.Fprint(w, "data: bye\n\n")
	})}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(uln)
	t.Cleanup(func() { up.Close() })
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{Name: "u", BaseURL: "http://" + uln.Addr().String()}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	streams, err := streamconn.New(time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec = &records{}
	p := &Proxy{Pool: func() Planner { return pool }, Transport: NewTransport(), Recorder: rec, Streams: streams,
		MaxBody: 1 << 20, Timeout: time.Minute, BackoffBase: time.Millisecond, Gate: gate}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first = &firstWrites{}
	gw := &http.Server{Handler: p.Handler(d)}
	go gw.Serve(streams.Listener(&recordingListener{Listener: ln, first: first}))
	t.Cleanup(func() { streams.Close(); gw.Close() })
	return ln.Addr().String(), rec, cancelled, first
}

// firstWrites keeps the first write made to each accepted connection.
type firstWrites struct {
	mu     sync.Mutex
	writes []string
}

func (f *firstWrites) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.writes...)
}

type recordingListener struct {
	net.Listener
	first *firstWrites
}

func (l *recordingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: nc, first: l.first}, nil
}

type recordingConn struct {
	net.Conn
	first *firstWrites
	once  sync.Once
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.once.Do(func() {
		c.first.mu.Lock()
		c.first.writes = append(c.first.writes, string(b))
		c.first.mu.Unlock()
	})
	return c.Conn.Write(b)
}

// SyscallConn lets streamconn watch the connection.
func (c *recordingConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// openWaiting opens a stream the upstream holds open ("wait") on a new
// connection, with header lines extra, and reads its first event.
func openWaiting(t *testing.T, addr, extra string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	io.WriteString(nc, "POST /v1/x HTTP/1.1\r\nHost: gw\r\n"+extra+"Content-Length: 4\r\n\r\nwait")
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, len("data: HELLO WAIT\n\n"))); err != nil {
		t.Fatal(err)
	}
	return nc
}

// leave closes a waiting stream's connection and checks that the upstream
// request is cancelled and the stream recorded as cancelled, the n-th row.
func leave(t *testing.T, nc net.Conn, cancelled chan struct{}, rec *records, n int) {
	t.Helper()
	nc.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled after the client left")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.all()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if recs := rec.all(); len(recs) != n || recs[n-1].Outcome != ledger.OutcomeCancelled {
		t.Errorf("records %+v; want %d, the last cancelled", recs, n)
	}
}

// TestTakenStreams: through taken connections, streams arrive whole and
// recorded over one kept-alive connection, and a client that leaves
// mid-stream cancels the upstream request and is recorded as cancelled.
func TestTakenStreams(t *testing.T) {
	addr, rec, cancelled, _ := takenGateway(t, stubDialect{})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	for _, model := range []string{"m1", "m2", "m3"} {
		fmt.Fprintf(nc, "POST /v1/x HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n%s", len(model), model)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		b, err := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("data: HELLO %s\n\ndata: BYE\n\nevent: end\n\n", strings.ToUpper(model)); err != nil || string(b) != want {
			t.Fatalf("%s: %q, %v; want %q", model, b, err, want)
		}
	}
	if recs := rec.all(); len(recs) != 3 || recs[2].Model != "m3" || recs[2].Outcome != ledger.OutcomeOK {
		t.Fatalf("records %+v; want three ok rows", recs)
	}

	leave(t, openWaiting(t, addr, ""), cancelled, rec, 4)
}

// TestStreamOpensWithItsFirstEvent: a taken stream whose first event came
// with the upstream's headers sends its header and that event in one write
// (the client is woken once); one whose upstream sends only headers sends
// its header at once, so the client sees the stream open before any event.
func TestStreamOpensWithItsFirstEvent(t *testing.T) {
	addr, _, cancelled, first := takenGateway(t, stubDialect{})
	ask := func(model string) (net.Conn, *http.Response) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		fmt.Fprintf(nc, "POST /v1/x HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n%s", len(model), model)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		return nc, resp
	}
	_, resp := ask("m1")
	if b, err := io.ReadAll(resp.Body); err != nil || !strings.HasPrefix(string(b), "data: HELLO M1") {
		t.Fatalf("m1: %q, %v", b, err)
	}
	if w := first.all(); len(w) != 1 || !strings.HasPrefix(w[0], "HTTP/1.1 200 OK\r\n") ||
		!strings.Contains(w[0], "chunked\r\n\r\n") || !strings.Contains(w[0], "\r\ndata: HELLO M1\n\n") {
		t.Errorf("first writes %q; want one, the header and the first event", w)
	}

	nc, _ := ask("slow") // returns once the header is in: no event comes
	if w := first.all(); len(w) != 2 || !strings.HasSuffix(w[1], "Transfer-Encoding: chunked\r\n\r\n") {
		t.Errorf("first writes %q; want the second connection's to be the header alone", w)
	}
	nc.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled after the client left")
	}
}

// TestWaitingStreamStackIsShallow: a stream waiting for its next event
// waits in sse's Wait called from pumpEvents under run, with none of the
// frames that set it up (serve, forward, attempt, respond) below: the
// runtime halves such a goroutine's stack to 4 KiB at a collection, and a
// deeper wait kept 8 KiB for every open stream (docs/perf.md).
func TestWaitingStreamStackIsShallow(t *testing.T) {
	addr, rec, cancelled, _ := takenGateway(t, stubDialect{})
	nc := openWaiting(t, addr, "")
	var waiting string
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); waiting == "" && time.Now().Before(deadline); {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "internal/sse.(*Reader).Wait(") {
				waiting = g
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if waiting == "" {
		t.Fatal("no goroutine waits in sse.(*Reader).Wait while the stream is open")
	}
	if !strings.Contains(waiting, "proxy.(*exchange).pumpEvents(") || !strings.Contains(waiting, "proxy.(*Proxy).run(") {
		t.Errorf("the stream does not wait from pumpEvents under run:\n%s", waiting)
	}
	for _, f := range []string{"(*exchange).serve(", "(*exchange).forward(", "(*exchange).attempt(", "(*exchange).respond(", "(*exchange).writePending(", "(*exchange).copyEvent(", "(*chunkedReader).Read("} {
		if strings.Contains(waiting, f) {
			t.Errorf("the waiting stream keeps %s on its stack:\n%s", f, waiting)
		}
	}
	leave(t, nc, cancelled, rec, 1)
}

// collectedGate admits every call and reports on collected when the
// client's request of the first becomes garbage.
type collectedGate struct {
	once      sync.Once
	collected chan struct{}
}

func (g *collectedGate) Admit(_ context.Context, c *Call) (*Ticket, error) {
	g.once.Do(func() {
		runtime.AddCleanup(c.Request, func(ch chan struct{}) { close(ch) }, g.collected)
	})
	return nil, nil
}

// TestTakenStreamLetsGoOfTheRequest: once a stream's connection is taken,
// nothing holds the client's *http.Request (its header map, URL, body
// reader) while the stream stays open.
func TestTakenStreamLetsGoOfTheRequest(t *testing.T) {
	gate := &collectedGate{collected: make(chan struct{})}
	addr, rec, cancelled, _ := takenGatewayGate(t, stubDialect{}, gate)
	nc := openWaiting(t, addr, "X-Big: "+strings.Repeat("h", 4000)+"\r\n")
	collected := false
	for i := 0; i < 100 && !collected; i++ {
		runtime.GC()
		select {
		case <-gate.collected:
			collected = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !collected {
		t.Error("the client's request is still reachable while its stream is open")
	}
	if n := len(rec.all()); n != 0 {
		t.Fatalf("%d records while the stream is open; want none", n)
	}
	leave(t, nc, cancelled, rec, 1)
}

// TestHandOffOnlyWhatMayStream: with streamconn on, a request is parsed on
// net/http's goroutine and handed off to one of its own only if it may be
// answered with a stream (it asks for one, or it is forwarded verbatim);
// the rest are served where they are, even when the upstream streams
// anyway, and a request that fails to parse is answered and recorded.
func TestHandOffOnlyWhatMayStream(t *testing.T) {
	for _, tc := range []struct {
		name      string
		d         stubDialect
		status    int
		body      string // prefix of the answer
		handedOff bool
		outcome   ledger.Outcome
	}{
		{"stream", stubDialect{}, 200, "data: HELLO M\n\ndata: BYE\n\nevent: end\n\n", true, ledger.OutcomeOK},
		{"not a stream", stubDialect{notStream: true}, 200, "data: HELLO M\n\ndata: BYE\n\nevent: end\n\n", false, ledger.OutcomeOK},
		{"verbatim", stubDialect{unmetered: true}, 200, "data: HELLO M\n\ndata: BYE\n\nevent: end\n\n", true, ledger.OutcomeOK},
		{"parse error", stubDialect{parseErr: apierr.BadRequest("bad_body", "no")}, 400, "stub error bad_body", false, ledger.OutcomeClientError},
		{"parse panics", stubDialect{panicOnParse: true}, 500, "stub error internal_error", false, ledger.OutcomeUpstreamError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.stacks = make(chan string, 4)
			addr, rec, _, _ := takenGateway(t, tc.d)
			resp, err := http.Post("http://"+addr+"/v1/x", "text/plain", strings.NewReader("m"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.status || !strings.HasPrefix(string(b), tc.body) {
				t.Fatalf("%d %q, %v; want %d %q", resp.StatusCode, b, err, tc.status, tc.body)
			}
			if recs := rec.all(); len(recs) != 1 || recs[0].Outcome != tc.outcome || recs[0].Status != tc.status {
				t.Fatalf("records %+v; want one %s row with status %d", recs, tc.outcome, tc.status)
			}
			if tc.status != 200 {
				return
			}
			stack := <-tc.d.stacks
			if got := strings.Contains(stack, "serveHandedOff"); got != tc.handedOff {
				t.Errorf("handed off %v; want %v; the stack that sent an event:\n%s", got, tc.handedOff, stack)
			}
			if !tc.handedOff && !strings.Contains(stack, "net/http.(*conn).serve") {
				t.Errorf("not served on net/http's goroutine:\n%s", stack)
			}
		})
	}
}
