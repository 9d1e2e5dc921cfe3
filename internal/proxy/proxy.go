// Package proxy is tollgate's engine: it reads the request body (bounded),
// lets a Dialect parse the few fields it needs, asks the Gate for admission,
// runs the attempt loop over the upstreams the pool plans (retry, backoff,
// fallback), streams the response through the dialect's Reply while metering
// usage, and emits exactly one ledger record per request.
//
// It knows no wire format beyond what a Dialect tells it, and no database,
// Redis or Prometheus: those arrive through the small interfaces and function
// fields declared here.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/streamconn"
	"github.com/tollgate/tollgate/internal/upstream"
)

// Planner orders the upstream candidates for a model.
type Planner interface {
	Plan(model string) ([]upstream.Target, error)
}

// Gate admits or refuses a call before it is forwarded: gateway keys, model
// permissions, rate limits and budgets. A refusal is an *apierr.Error.
type Gate interface {
	Admit(ctx context.Context, c *Call) (*Ticket, error)
}

// Authenticator is a Gate that checks the caller's key from the request's
// headers alone. The engine asks it before reading the body, so that a
// request without a valid key is refused (401, as OpenAI answers) with its
// body neither read nor parsed.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Caller, error)
}

// Caller is whom Authenticate found: the key named on the request's ledger
// row (a body that then fails to parse included), and Auth, which Admit
// gets back as Call.Auth.
type Caller struct {
	KeyID, KeyName string
	Auth           any
}

// Call is what the Gate sees of a request.
type Call struct {
	Request *http.Request
	// Auth is what the Gate's Authenticate returned for this request; nil
	// for a request that did not pass through it (one built in Go).
	Auth     any
	Endpoint string // "/v1/chat/completions"
	Head     Head
	BodyLen  int
	ClientIP string
	// PromptTokens returns the estimated prompt size in tokens (for TPM and
	// budgets). It is computed on first use, so a gate without token limits
	// never pays for scanning a large prompt.
	PromptTokens func() int64
}

// Ticket is an admitted call. Settle runs once after the request ended with the
// final record (tokens, cost), so limits and budgets can be corrected.
type Ticket struct {
	KeyID   string
	KeyName string
	Header  http.Header // added to the response (x-ratelimit-*)
	Settle  func(rec *ledger.Record)
}

// Observer is told about every finished request and every upstream attempt,
// for metrics. It must be cheap and must not block.
type Observer interface {
	// Begin is called when a request starts; the returned func when it ends.
	// stream reports whether the client asked for a stream.
	Begin(stream bool) (end func())
	// Request is called once per request with its final record.
	Request(rec *ledger.Record)
	// Attempt is called once per upstream attempt, when its response headers
	// arrived (status) or it failed (err); d is the time to headers.
	Attempt(upstreamName string, status int, err error, d time.Duration)
}

// Tracer creates spans for upstream attempts; nil means tracing is off and
// costs nothing. The request span itself is started by the server.
type Tracer interface {
	// StartAttempt starts a child span of ctx for one upstream attempt and
	// writes its trace context into the outbound header (traceparent).
	StartAttempt(ctx context.Context, upstreamName, model string, h http.Header) (end func(status int, err error))
}

// Proxy forwards OpenAI-compatible requests. Fields must be set before the
// first request and not changed afterwards. A nil function field means "off".
type Proxy struct {
	// Pool returns the current upstream pool; it may change on reload.
	Pool func() Planner
	// Transport performs upstream requests; nil uses NewTransport().
	Transport http.RoundTripper
	// Streams takes the connections of event streams off net/http, so an
	// open stream holds less memory (streamconn); nil leaves them there.
	Streams *streamconn.Conns
	// Recorder receives one record per request; nil drops them.
	Recorder ledger.Recorder
	// Gate admits calls; nil admits everything.
	Gate Gate
	// Observer sees finished requests and attempts; nil for none.
	Observer Observer
	// Tracer traces upstream attempts; nil for none.
	Tracer Tracer
	// Cost prices usage of a model at an upstream: exact nano-units of the
	// deployment's currency and whether a price exists.
	Cost func(upstreamName, model string, u Usage) (nano int64, priced bool)
	// ClientIP returns the client's address for limits and the ledger; nil
	// uses the peer address (X-Forwarded-For is not trusted).
	ClientIP func(r *http.Request) string
	// Estimate estimates tokens in text when an upstream reports no usage.
	Estimate func(text []byte) int64
	Logger   *slog.Logger

	DefaultModel string
	MaxRetries   int
	Timeout      time.Duration // whole-request deadline
	MaxBody      int64
	// MaxRetryWait caps how long a Retry-After is honoured; a longer one is
	// passed through to the client instead (default 30s).
	MaxRetryWait time.Duration
	// BackoffBase is the first retry's backoff ceiling (default 250ms); it
	// doubles per retry up to 5s, with full jitter.
	BackoffBase time.Duration
	// IdleTimeout ends a response whose upstream sends nothing for this long
	// after its headers (a stalled stream), with an error event (default 2m).
	IdleTimeout time.Duration
	// SaturationWait is how long a request waits for a slot when every
	// candidate upstream is at max_parallel (default 2s).
	SaturationWait time.Duration
	// BodyTimeout bounds reading a request body (default 60s); a slower
	// sender gets a 408 and its connection is closed.
	BodyTimeout time.Duration
	// LogBodies / LogContent control what of the bodies the ledger keeps.
	LogBodies, LogContent bool

	bufPool   sync.Pool
	exPool    sync.Pool
	bodyPools bodyPools
}

// Exchange is one call handed to the engine by Go code: the dialect that
// speaks to the client, and optionally a request already parsed (the
// conversation API builds its own), so no HTTP round trip is faked.
type Exchange struct {
	Dialect Dialect
	// Request, when set, is used as is and the client's body is not read.
	Request Request
	// Endpoint labels the ledger record; "" uses the URL path.
	Endpoint string
	// User is the end user for the ledger when the request names none.
	User string
}

// Result is what a Go caller learns of a served call.
type Result struct {
	Record ledger.Record
	// Aborted: the response broke after its first byte; an HTTP handler must
	// close the connection (panic(http.ErrAbortHandler)).
	Aborted bool
}

// Handler serves every request with dialect d.
func (p *Proxy) Handler(d Dialect) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var aborted bool
		if p.Streams.Takes(r) {
			aborted = p.serveMayHandOff(w, r, d)
		} else {
			aborted = p.serve(w, r, &Exchange{Dialect: d}, nil)
		}
		if aborted {
			// Closes the connection so no client mistakes a truncated body for
			// a complete one; net/http does not log it (golang/go#23643).
			panic(http.ErrAbortHandler)
		}
	})
}

// Serve runs one call: read and parse (unless x.Request is set), admit,
// route, attempt, respond through the dialect, record.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, x Exchange) Result {
	var res Result
	res.Aborted = p.serve(w, r, &x, &res.Record)
	return res
}

// serve is Serve for the handler, which needs no copy of the record.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, x *Exchange, rec *ledger.Record) (aborted bool) {
	return p.run(p.begin(w, r, x), rec)
}

// begin makes the exchange of a request. The deepest call of a request's
// goroutine decides the stack it keeps for a whole stream (docs/perf.md).
// So x comes by pointer, nothing returns a Result by value, and the
// exchange is filled in field by field: a composite literal of it is built
// in a ~900-byte temporary on this frame first.
func (p *Proxy) begin(w http.ResponseWriter, r *http.Request, x *Exchange) *exchange {
	ex := p.newExchange() // zeroed but for its scratch buffers (putExchange)
	ex.p, ex.d, ex.req, ex.w, ex.r, ex.start = p, x.Dialect, x.Request, w, r, time.Now()
	ex.method = r.Method
	ex.rec.ID = w.Header().Get("X-Request-Id")
	ex.rec.Time = ex.start.UTC()
	ex.rec.Endpoint = r.URL.Path
	ex.rec.ClientIP = p.clientIP(r)
	ex.rec.User = x.User
	if x.Endpoint != "" {
		ex.rec.Endpoint = x.Endpoint
	}
	if ex.rec.User == "" {
		ex.rec.User = r.Header.Get("X-Tollgate-User")
	}
	return ex
}

// run serves ex (unless its answer was settled before, ex.settled), records
// it and gives it back to the pool.
func (p *Proxy) run(ex *exchange, rec *ledger.Record) (aborted bool) {
	defer func() {
		v := recover()
		// What the calls that began the response left open, in the order
		// their defers would have ended it.
		ex.endEvents()
		ex.endPending()
		ex.endServe()
		if v != nil {
			ex.recovered(v) // a dialect's bug costs this request, never the process or its record
		}
		ex.finish()
		if ex.sw != nil {
			// After finish: a draining server waits for taken streams to
			// end, and their records must be in by then.
			ex.sw.End(ex.abort)
		}
		ex.releaseBody()
		if rec != nil {
			*rec = ex.rec
		}
		aborted = ex.abort
		p.putExchange(ex)
	}()
	if ex.settled {
		return false
	}
	if err := ex.serve(); err != nil {
		ex.fail(err)
	}
	if ex.ev.resp != nil {
		// Here, not in respond: see events.
		ex.pumpEvents()
	}
	return false
}

// Exchanges are pooled: with its ledger record an exchange is the largest
// allocation of a request, and its scratch buffers (events, a body's tail)
// are reused with it. ex.tail and ex.content may alias tailBuf: both are
// read by finish, which copies what the record keeps.
// Nothing keeps an exchange after Serve: the closures that capture it (the
// gate's PromptTokens, an attempt's timer) are done or harmless by then.
func (p *Proxy) newExchange() *exchange {
	if ex, _ := p.exPool.Get().(*exchange); ex != nil {
		return ex
	}
	return &exchange{}
}

// maxPooledBuf bounds each scratch buffer a pooled exchange keeps (a body's
// tail is at most 2*tailSize).
const maxPooledBuf = 64 << 10

func (p *Proxy) putExchange(ex *exchange) {
	evBuf, tailBuf := ex.evBuf[:0], ex.tailBuf[:0]
	if cap(evBuf) > maxPooledBuf {
		evBuf = nil
	}
	if cap(tailBuf) > maxPooledBuf {
		tailBuf = nil
	}
	*ex = exchange{} // drop every reference to this request
	ex.evBuf, ex.tailBuf = evBuf, tailBuf
	p.exPool.Put(ex)
}

// finish fills in the last fields, settles the ticket and emits the record.
func (ex *exchange) finish() {
	rec := &ex.rec
	rec.Duration = time.Since(ex.start)
	if rec.Outcome == "" {
		rec.Outcome = ledger.OutcomeOK
	}
	ex.estimateUsage()
	ex.loggedBodies()
	if ex.p.Cost != nil && rec.TotalTokens > 0 {
		u := Usage{Prompt: rec.PromptTokens, Cached: rec.CachedTokens, CacheWrite: rec.CacheWriteTokens,
			Completion: rec.CompletionTokens, Reasoning: rec.ReasoningTokens}
		model := rec.ModelUsed
		if model == "" {
			model = rec.Model
		}
		rec.CostNanoUSD, rec.Priced = ex.p.Cost(rec.Upstream, model, u)
		if !rec.Priced && model != rec.Model {
			rec.CostNanoUSD, rec.Priced = ex.p.Cost(rec.Upstream, rec.Model, u)
		}
	}
	if ex.ticket != nil && ex.ticket.Settle != nil {
		ex.ticket.Settle(rec)
	}
	if ex.p.Observer != nil {
		ex.p.Observer.Request(rec)
	}
	if ex.p.Recorder != nil {
		ex.p.Recorder.Record(*rec)
	}
	ex.logAccess()
}

// releaseBody gives up the exchange's reference to a pooled body buffer;
// outbound bodies still being written keep theirs.
func (ex *exchange) releaseBody() {
	if ex.buf != nil {
		ex.buf.release()
		ex.buf, ex.body = nil, nil
	}
}

func (ex *exchange) logAccess() {
	l := ex.p.Logger
	if l == nil {
		return
	}
	rec := &ex.rec
	level := slog.LevelInfo
	if rec.Status >= 500 {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if ex.r != nil {
		ctx = ex.r.Context()
	}
	if !l.Enabled(ctx, level) {
		return
	}
	l.LogAttrs(context.Background(), level, "request",
		slog.String("request_id", rec.ID),
		slog.String("method", ex.method),
		slog.String("path", rec.Endpoint),
		slog.String("key", rec.KeyName),
		slog.String("model", rec.Model),
		slog.String("upstream", rec.Upstream),
		slog.Bool("stream", rec.Stream),
		slog.Int("status", rec.Status),
		slog.String("outcome", string(rec.Outcome)),
		slog.Int("attempts", rec.Attempts),
		slog.Int64("prompt_tokens", rec.PromptTokens),
		slog.Int64("completion_tokens", rec.CompletionTokens),
		slog.Bool("estimated", rec.Estimated),
		slog.Int64("cost_nano_usd", rec.CostNanoUSD),
		slog.Float64("latency_ms", float64(rec.Duration.Microseconds())/1000),
		slog.Float64("ttfb_ms", float64(rec.TTFB.Microseconds())/1000),
		slog.String("error", rec.Error),
	)
}

func (p *Proxy) clientIP(r *http.Request) string {
	if p.ClientIP != nil {
		return p.ClientIP(r)
	}
	return peerIP(r)
}

// peerIP is the peer address; X-Forwarded-For is not trusted by default.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hopHeaders are removed in both directions (RFC 9110 7.6.1, as httputil).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// outboundHeader is the client's header minus everything that must not reach
// the upstream: hop-by-hop headers, the gateway key, cookies, our own headers.
func outboundHeader(in http.Header, metered bool) http.Header {
	out := make(http.Header, len(in)+2)
	for k, v := range in {
		switch k {
		case "Authorization", "X-Api-Key", "Cookie", "Host", "Content-Length", "X-Request-Id",
			"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded":
			continue
		case "Accept-Encoding":
			if metered { // usage must be readable on the way back
				continue
			}
		}
		if strings.HasPrefix(k, "X-Tollgate-") {
			continue
		}
		out[k] = v
	}
	removeHopHeaders(out)
	return out
}

// isCancel reports whether err is the client going away.
func isCancel(ctx context.Context, err error) bool {
	return errors.Is(context.Cause(ctx), errClientGone) ||
		(errors.Is(err, context.Canceled) && !errors.Is(context.Cause(ctx), errDeadline))
}

var (
	errClientGone = errors.New("client closed the connection")
	errDeadline   = errors.New("request deadline exceeded")
)

func (p *Proxy) bodyReadTimeout() time.Duration {
	if p.BodyTimeout > 0 {
		return p.BodyTimeout
	}
	return 60 * time.Second
}

// readBody reads the whole request body, bounded by MaxBody and by
// BodyTimeout. The body is read before forwarding: the dialect's parse needs
// it, and streaming a request body upstream while the response is already
// being written cuts streams short under load (golang/go#40747). A large
// body with a known length is read into a pooled buffer (buf, nil
// otherwise), which the caller releases when nothing reads the body any more.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request) (body []byte, buf *bodyBuf, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil, nil
	}
	if r.ContentLength > p.MaxBody {
		return nil, nil, errTooLarge
	}
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(p.bodyReadTimeout())) == nil
	n := r.ContentLength
	if n < 0 || n > 1<<20 {
		n = 512
	}
	var b []byte
	if r.ContentLength >= 0 {
		// One byte more than announced, so a body longer than its
		// Content-Length is noticed without growing the buffer.
		if buf = p.bodyPools.get(int(r.ContentLength) + 1); buf != nil {
			b = buf.b[:0]
		}
	}
	if b == nil {
		b = make([]byte, 0, n+1)
	}
	defer func() {
		if err != nil && buf != nil {
			buf.release()
			buf = nil
		}
	}()
	lr := io.LimitReader(r.Body, p.MaxBody+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if int64(len(b)) > p.MaxBody {
			return nil, buf, errTooLarge
		}
		if err == io.EOF {
			if deadline {
				_ = rc.SetReadDeadline(time.Time{}) // the rest of the exchange is not bounded by it
			}
			// Read to its end and closed, the body needs no discarding when
			// the header is written: net/http's io.CopyN of the (empty) rest
			// is one allocation and the deepest call under an open stream.
			_ = r.Body.Close()
			return b, buf, nil
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, buf, errSlowBody // the deadline stays: the connection is closed after the answer
			}
			return nil, buf, err
		}
	}
}

var errSlowBody = errors.New("request body read timed out")

var errTooLarge = errors.New("request body too large")
