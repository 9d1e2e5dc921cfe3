package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/sse"
	"github.com/tollgate/tollgate/internal/upstream"
)

// stubDialect is a minimal dialect: the body is the model name; the reply
// upper-cases events; scripted failures test the engine's own promises.
type stubDialect struct {
	panicOnEvent bool
	outboundErr  error
	// For the hand-off: the request's head, a failing or panicking Parse,
	// and where the stack of each goroutine that sent an event goes.
	notStream, unmetered bool
	parseErr             error
	panicOnParse         bool
	stacks               chan string
}

func (d stubDialect) Parse(in *Inbound) (Request, error) {
	if d.panicOnParse {
		panic("dialect bug in Parse")
	}
	if d.parseErr != nil {
		return nil, d.parseErr
	}
	return &stubRequest{d: d, model: strings.TrimSpace(string(in.Body))}, nil
}

func (stubDialect) WriteError(w http.ResponseWriter, e *apierr.Error, id string) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(e.Status)
	fmt.Fprintf(w, "stub error %s: %s", e.Code, e.Message)
}

type stubRequest struct {
	d     stubDialect
	model string
}

func (r *stubRequest) Head() Head {
	return Head{Model: r.model, Stream: !r.d.notStream, Metered: !r.d.unmetered}
}
func (r *stubRequest) PromptTokens(func([]byte) int64) int64 { return 1 }
func (r *stubRequest) Outbound(t Target) (*Outbound, error) {
	if r.d.outboundErr != nil {
		return nil, r.d.outboundErr
	}
	return &Outbound{Path: "/stream", Body: []byte(t.Model), Reply: &stubReply{d: r.d}}, nil
}

type stubReply struct {
	d     stubDialect
	usage Usage
}

func (rp *stubReply) Error(status int, _ http.Header, body []byte) (int, []byte, string) {
	return status, body, "text/plain"
}
func (rp *stubReply) Stream() Stream                             { return rp }
func (rp *stubReply) Whole() bool                                { return false }
func (rp *stubReply) Body([]byte) ([]byte, string, Usage, error) { return nil, "", Usage{}, nil }
func (rp *stubReply) Tail([]byte) (Usage, []byte)                { return Usage{}, nil }
func (rp *stubReply) Usage() Usage                               { return rp.usage }
func (rp *stubReply) Content() []byte                            { return nil }
func (rp *stubReply) End(dst []byte, fail *apierr.Error) []byte {
	if fail != nil {
		return append(dst, "event: broken\n\n"...)
	}
	return append(dst, "event: end\n\n"...)
}
func (rp *stubReply) Event(dst []byte, ev sse.Event) ([]byte, error) {
	if rp.d.panicOnEvent {
		panic("dialect bug")
	}
	if rp.d.stacks != nil {
		buf := make([]byte, 16<<10)
		select {
		case rp.d.stacks <- string(buf[:runtime.Stack(buf, false)]):
		default:
		}
	}
	rp.usage.Completion++
	return sse.AppendEvent(dst, []byte(strings.ToUpper(string(ev.Data)))), nil
}

type records struct {
	mu   sync.Mutex
	recs []ledger.Record
}

func (r *records) Record(rec ledger.Record) { r.mu.Lock(); r.recs = append(r.recs, rec); r.mu.Unlock() }
func (r *records) all() []ledger.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ledger.Record(nil), r.recs...)
}

func newStubGateway(t *testing.T, d stubDialect, bodyTimeout time.Duration) (*httptest.Server, *records) {
	t.Helper()
	gw, rec, _ := newStubGatewayPool(t, d, bodyTimeout)
	return gw, rec
}

// newStubGatewayPool is newStubGateway, also returning its upstream pool.
func newStubGatewayPool(t *testing.T, d stubDialect, bodyTimeout time.Duration) (*httptest.Server, *records, *upstream.Pool) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		model, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: hello %s\n\ndata: bye\n\n", model)
	}))
	t.Cleanup(up.Close)
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{Name: "u", BaseURL: up.URL}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &records{}
	p := &Proxy{Pool: func() Planner { return pool }, Transport: NewTransport(), Recorder: rec,
		MaxBody: 1 << 20, Timeout: 10 * time.Second, BodyTimeout: bodyTimeout, BackoffBase: time.Millisecond}
	gw := httptest.NewServer(p.Handler(d))
	t.Cleanup(gw.Close)
	return gw, rec, pool
}

func TestEngineTranslatesThroughTheDialect(t *testing.T) {
	gw, rec := newStubGateway(t, stubDialect{}, 0)
	resp, err := http.Post(gw.URL+"/v1/x", "text/plain", strings.NewReader("m1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "data: HELLO M1\n\ndata: BYE\n\nevent: end\n\n"; string(b) != want {
		t.Errorf("body %q; want %q", b, want)
	}
	recs := rec.all()
	if len(recs) != 1 || recs[0].Model != "m1" || recs[0].CompletionTokens != 2 || recs[0].Outcome != ledger.OutcomeOK {
		t.Errorf("records %+v; want one ok row for m1 with 2 completion tokens", recs)
	}
}

func TestEnginePanicInDialectCostsOneRequest(t *testing.T) {
	gw, rec, pool := newStubGatewayPool(t, stubDialect{panicOnEvent: true}, 0)
	resp, err := http.Post(gw.URL+"/v1/x", "text/plain", strings.NewReader("m1"))
	if err == nil {
		_, err = io.ReadAll(resp.Body) // the stream was aborted after its headers
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a stream whose dialect panicked ended as if complete")
	}
	recs := rec.all()
	if len(recs) != 1 || recs[0].Status != 500 {
		t.Fatalf("records %+v; want one row with status 500", recs)
	}
	// The stream's attempt was ended before its record: its upstream's slot
	// is free again.
	if st := pool.Status(); st[0].InFlight != 0 {
		t.Errorf("after the panic, %d attempts in flight; want 0", st[0].InFlight)
	}
	// The gateway still serves.
	gw2, _ := newStubGateway(t, stubDialect{}, 0)
	if resp, err := http.Post(gw2.URL+"/v1/x", "text/plain", strings.NewReader("m1")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a panic: %v", err)
	}
}

func TestEngineOutboundErrorIsFinal(t *testing.T) {
	e := apierr.BadRequest("no", "cannot be sent")
	gw, rec := newStubGateway(t, stubDialect{outboundErr: e}, 0)
	resp, err := http.Post(gw.URL+"/v1/x", "text/plain", strings.NewReader("m1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "cannot be sent") {
		t.Errorf("got %d %q", resp.StatusCode, b)
	}
	if recs := rec.all(); len(recs) != 1 || recs[0].Attempts != 1 {
		t.Errorf("records %+v; want one row with one attempt", recs)
	}
}

// TestSlowBodyGets408AndClose: a body sent too slowly is answered and its
// connection closed, so a slow sender cannot hold it.
func TestSlowBodyGets408AndClose(t *testing.T) {
	gw, rec := newStubGateway(t, stubDialect{}, 200*time.Millisecond)
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nm1")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d; want 408", resp.StatusCode)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("after the 408 the connection is still open (read: %v)", err)
	}
	recs := rec.all()
	if len(recs) != 1 || recs[0].Status != 408 {
		b, _ := json.Marshal(recs)
		t.Errorf("records %s; want one 408 row", b)
	}
}
