//go:build linux

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/streamconn"
	"github.com/tollgate/tollgate/internal/upstream"
)

// takenGateway serves stubDialect through Handler with streamconn, as
// tollgate serve does; the upstream streams two events, then waits for
// its request to be cancelled (reported on cancelled) or for a minute.
func takenGateway(t *testing.T, d stubDialect) (addr string, rec *records, cancelled chan struct{}) {
	t.Helper()
	cancelled = make(chan struct{}, 1)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		model, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: hello %s\n\n", model)
		w.(http.Flusher).Flush()
		if string(model) == "wait" {
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
		MaxBody: 1 << 20, Timeout: time.Minute, BackoffBase: time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw := &http.Server{Handler: p.Handler(d)}
	go gw.Serve(streams.Listener(ln))
	t.Cleanup(func() { streams.Close(); gw.Close() })
	return ln.Addr().String(), rec, cancelled
}

// TestTakenStreams: through taken connections, streams arrive whole and
// recorded over one kept-alive connection, and a client that leaves
// mid-stream cancels the upstream request and is recorded as cancelled.
func TestTakenStreams(t *testing.T) {
	addr, rec, cancelled := takenGateway(t, stubDialect{})
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

	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c2, "POST /v1/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n\r\nwait")
	br2 := bufio.NewReader(c2)
	resp, err := http.ReadResponse(br2, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("data: HELLO WAIT\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled after the client left")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.all()) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if recs := rec.all(); len(recs) != 4 || recs[3].Outcome != ledger.OutcomeCancelled {
		t.Errorf("records %+v; want a fourth, cancelled", recs)
	}
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
			addr, rec, _ := takenGateway(t, tc.d)
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
