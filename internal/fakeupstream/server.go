// Package fakeupstream is an OpenAI-compatible upstream that speaks real HTTP
// and SSE, for tests, benchmarks, load runs and `tollgate serve --demo`.
//
// Replies are deterministic functions of the request, so tests can predict
// them: a chat completion answers "echo: " followed by the last user message,
// split into a fixed number of word chunks. Failures are scripted per request,
// either in-process with Enqueue or out-of-process with X-Fake-* request
// headers (see Fault), so a load tool or a gateway that forwards client
// headers can drive them too.
//
// Routes match on the path suffix, so any base prefix works ("/v1",
// "/api", none):
//
//	POST .../chat/completions   chat.completion or a chat.completion.chunk stream
//	POST .../completions        legacy text_completion, streaming too
//	POST .../embeddings         deterministic vectors
//	GET  .../models             the model list; GET .../models/{id} one model
//	POST .../messages           Anthropic Messages (see anthropic.go), and .../messages/count_tokens
//	POST .../responses          the OpenAI Responses API (see responses.go)
//	anything else               a JSON echo, or a short SSE stream when asked to stream
//
// The fake is built to be cheap: canned parts are prepared once, responses are
// assembled by appending bytes, and recording can be turned off for load runs.
package fakeupstream

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultModels returns the model list served when Options.Models is empty.
func DefaultModels() []string {
	return []string{"claude-sonnet-4-6", "gpt-4o", "gpt-4o-mini", "qwen-plus", "deepseek-chat", "text-embedding-3-small"}
}

const (
	defaultChunks      = 8
	maxChunks          = 100_000
	defaultMaxRecorded = 10_000
	maxBodyBytes       = 64 << 20
	cancelledBuffer    = 256
)

// Options configures a Server. The zero value is ready to use.
type Options struct {
	// Chunks is the number of content chunks in a streamed reply (and the
	// completion token count of any reply) unless a Fault overrides it.
	// Default 8.
	Chunks int
	// ChunkDelay is the pause before each streamed event after the first.
	// Default 0.
	ChunkDelay time.Duration
	// Logger receives debug lines about faults; nil discards them.
	Logger *slog.Logger
	// APIKey, when set, makes every request without
	// "Authorization: Bearer <APIKey>" fail with 401 invalid_api_key.
	APIKey string
	// Models is the list GET .../models returns; default DefaultModels().
	Models []string
	// NoRecord turns off request recording (Requests returns nil), which
	// saves a header clone per request in load runs.
	NoRecord bool
	// MaxRecorded bounds how many requests are kept: only the most recent
	// MaxRecorded are returned by Requests. Default 10000.
	MaxRecorded int
	// NativeResponses makes POST .../responses answer a non-streamed
	// request with a Response, as an upstream with `responses: native`
	// does. Off, such a request is echoed like any unknown path, so a
	// gateway's verbatim forwarding of it can be seen; a streamed one always
	// gets a Responses event stream.
	NativeResponses bool
	// TLSCertFile and TLSKeyFile, both set, make ListenAndServe speak
	// HTTPS, and so HTTP/2 to a client that offers it: an upstream such as
	// the default one, which load tests otherwise only see over HTTP/1.1.
	TLSCertFile, TLSKeyFile string
}

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	Time   time.Time
}

// Server is the fake upstream, an http.Handler. Create it with New. It is
// safe for concurrent use.
type Server struct {
	opts      Options
	log       *slog.Logger
	models    []byte // the GET .../models body, built once
	seq       atomic.Uint64
	cancelled chan string

	mu     sync.Mutex
	faults []Fault
	reqs   []Request // ring buffer of at most opts.MaxRecorded
	next   int       // where the next request goes once reqs is full
}

// New returns a Server with defaults filled in.
func New(opts Options) *Server {
	if opts.Chunks <= 0 {
		opts.Chunks = defaultChunks
	}
	opts.Chunks = min(opts.Chunks, maxChunks)
	if len(opts.Models) == 0 {
		opts.Models = DefaultModels()
	}
	if opts.MaxRecorded <= 0 {
		opts.MaxRecorded = defaultMaxRecorded
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		opts:      opts,
		log:       log,
		models:    modelList(opts.Models),
		cancelled: make(chan string, cancelledBuffer),
	}
}

// Enqueue appends faults to the script. Each incoming request, on any path,
// takes the next fault in FIFO order; when the script is empty requests behave
// normally (or as their X-Fake-* headers say).
func (s *Server) Enqueue(faults ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, faults...)
	s.mu.Unlock()
}

// Requests returns the recorded requests, oldest first: at most the last
// Options.MaxRecorded of them, none when Options.NoRecord is set. The Header
// and Body values must not be modified.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, 0, len(s.reqs))
	out = append(out, s.reqs[s.next:]...)
	return append(out, s.reqs[:s.next]...)
}

// Reset clears the recorded requests and the queued faults, and drains
// pending Cancelled notifications.
func (s *Server) Reset() {
	s.mu.Lock()
	s.faults, s.reqs, s.next = nil, nil, 0
	s.mu.Unlock()
	for {
		select {
		case <-s.cancelled:
		default:
			return
		}
	}
}

// Cancelled receives the request path each time a client went away (its
// request context was cancelled or a write failed) while the fake was still
// waiting or writing. Sends never block: when nobody reads, notifications
// beyond a buffer of 256 are dropped.
func (s *Server) Cancelled() <-chan string {
	return s.cancelled
}

func (s *Server) notifyCancelled(path string) {
	select {
	case s.cancelled <- path:
	default:
	}
}

func (s *Server) record(r *http.Request, body []byte) {
	if s.opts.NoRecord {
		return
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Time: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) < s.opts.MaxRecorded {
		s.reqs = append(s.reqs, req)
		return
	}
	s.reqs[s.next] = req
	s.next = (s.next + 1) % len(s.reqs)
}

func (s *Server) popFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults[0] = Fault{}
	s.faults = s.faults[1:]
	return f, true
}

// ServeHTTP records the request, applies the scripted fault if any, checks
// the API key and routes by path suffix.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", fmt.Sprintf("could not read request body: %v", err))
		return
	}
	s.record(r, body)

	f, ok := s.popFault()
	if !ok {
		if f, err = headerFault(r.Header); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
			return
		}
	}
	if !s.applyFault(w, r, &f) {
		return
	}
	if s.opts.APIKey != "" && !s.authorized(r) {
		if isAnthropicPath(r.URL.Path) {
			writeAnthropicError(w, http.StatusUnauthorized, "invalid x-api-key")
			return
		}
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
		return
	}
	rq := &call{s: s, w: w, r: r, body: body, fault: f, id: s.seq.Add(1)}
	rq.chunks = min(orDefault(f.Chunks, s.opts.Chunks), maxChunks)
	rq.delay = orDefault(f.ChunkDelay, s.opts.ChunkDelay)
	s.route(rq)
}

// orDefault returns override when it is positive, else def.
func orDefault[T int | time.Duration](override, def T) T {
	if override > 0 {
		return override
	}
	return def
}

func (s *Server) authorized(r *http.Request) bool {
	if k := r.Header.Get("X-Api-Key"); k != "" { // Anthropic's credential header
		return subtle.ConstantTimeCompare([]byte(k), []byte(s.opts.APIKey)) == 1
	}
	got := r.Header.Get("Authorization")
	want := "Bearer " + s.opts.APIKey
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// route dispatches on method and path suffix.
func (s *Server) route(c *call) {
	p := c.r.URL.Path
	if len(p) > 1 {
		p = trimSlash(p)
	}
	switch {
	case c.r.Method == http.MethodPost && hasSuffix(p, "/messages"):
		s.messages(c)
	case c.r.Method == http.MethodPost && hasSuffix(p, "/messages/count_tokens"):
		s.countTokens(c)
	case c.r.Method == http.MethodPost && hasSuffix(p, "/responses"):
		s.responses(c)
	case c.r.Method == http.MethodPost && hasSuffix(p, "/chat/completions"):
		s.chat(c)
	case c.r.Method == http.MethodPost && hasSuffix(p, "/completions"):
		s.completions(c)
	case c.r.Method == http.MethodPost && hasSuffix(p, "/embeddings"):
		s.embeddings(c)
	case c.r.Method == http.MethodGet && hasSuffix(p, "/models"):
		writeJSON(c.w, http.StatusOK, s.models)
	case c.r.Method == http.MethodGet && modelID(p) != "":
		s.model(c, modelID(p))
	default:
		s.echo(c)
	}
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	if n := r.ContentLength; n > 0 && n <= maxBodyBytes {
		b := make([]byte, n)
		_, err := io.ReadFull(r.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
}

// sleepCtx waits d, or less if ctx is done; it reports whether ctx is still
// alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ListenAndServe serves a new fake on addr until ctx is done, then shuts
// down, giving in-flight requests up to 5 seconds. ready, if not nil, is
// called with the bound address (useful with port 0) once the listener is
// open.
func ListenAndServe(ctx context.Context, addr string, opts Options, ready func(addr string)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("fakeupstream: listen: %w", err)
	}
	// Request contexts derive from base so a slow shutdown can stop delays
	// and streams that would otherwise hold it up.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           New(opts),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	if opts.TLSCertFile != "" || opts.TLSKeyFile != "" {
		go func() { errc <- srv.ServeTLS(ln, opts.TLSCertFile, opts.TLSKeyFile) }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("fakeupstream: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(base, 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		cancelBase()
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("fakeupstream: serve: %w", err)
	}
	return nil
}

func hasSuffix(p, suffix string) bool {
	return len(p) >= len(suffix) && p[len(p)-len(suffix):] == suffix
}

func trimSlash(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// modelID returns {id} for a path ending in /models/{id}, else "". The id
// may contain slashes ("openai/gpt-4o").
func modelID(p string) string {
	if i := strings.LastIndex(p, "/models/"); i >= 0 {
		return p[i+len("/models/"):]
	}
	return ""
}
