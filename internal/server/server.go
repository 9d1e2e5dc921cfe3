// Package server owns the HTTP side of tollgate: the http.Server with its
// timeouts, the route table, the middleware chain (request id, recover,
// in-flight tracking), health endpoints and graceful shutdown.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/streamconn"
	"github.com/tollgate/tollgate/internal/upstream"
	"github.com/tollgate/tollgate/internal/upstreamerr"
)

// Options are the handlers and settings the server routes to. Nil handlers
// leave their routes answering 404.
type Options struct {
	Logger *slog.Logger
	// Proxy serves /v1/ (everything the gateway forwards).
	Proxy http.Handler
	// Models serves GET /v1/models.
	Models http.Handler
	// Chat serves /api/.
	Chat http.Handler
	// Admin serves /admin/ (already wrapped in its own auth).
	Admin http.Handler
	// Metrics serves GET /metrics.
	Metrics http.Handler
	// UI serves the dashboard at /ui/ (with its own sessions).
	UI http.Handler
	// Wrap, if set, wraps the routes inside the request-id and recover
	// middleware (tracing uses it).
	Wrap func(http.Handler) http.Handler
	// Checks are dependency checks (name → check, e.g. "database",
	// "redis"), run by /healthz?verbose and /readyz and reported there. They
	// never make the gateway unready: with the database down rows wait in
	// memory, with Redis down limits fail open, so the gateway still
	// serves; a failing check only marks it degraded.
	Checks map[string]func(context.Context) error
	// Ready is the former name of Checks, merged into it (same meaning).
	Ready map[string]func(context.Context) error
	// Upstreams reports upstream health for /healthz?verbose; nil omits it.
	Upstreams func() []upstream.Status
	// LedgerQueue reports the usage writer's queue: rows waiting in memory
	// and how many it holds before it must spill to disk. While it is full
	// the gateway is unready (a replica that cannot keep up with its own
	// ledger should get less traffic). Nil: no ledger check.
	LedgerQueue func() (depth, capacity int)
	// Streams holds the event streams' connections taken off net/http
	// (streamconn): Serve hands them back through its listener and drains
	// them on shutdown. Nil: none are taken.
	Streams *streamconn.Conns
}

// handlerGrace is how long handlers (and taken streams) are waited for
// after their connections were closed at the drain deadline, to record
// their outcome.
const handlerGrace = 5 * time.Second

// IdleTimeout is how long a keep-alive connection waits for its next
// request.
const IdleTimeout = 120 * time.Second

// Server is tollgate's HTTP server.
type Server struct {
	opts     Options
	handler  http.Handler
	inflight sync.WaitGroup
	log      *slog.Logger
	checks   map[string]func(context.Context) error
	serving  atomic.Bool // set once Serve accepts connections
	draining atomic.Bool // set when shutdown begins
}

// New builds the server and its routes.
func New(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger, checks: map[string]func(context.Context) error{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	maps.Copy(s.checks, opts.Ready)
	maps.Copy(s.checks, opts.Checks)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if opts.Models != nil {
		mux.Handle("GET /v1/models", opts.Models)
	}
	if opts.Proxy != nil {
		mux.Handle("/v1/", opts.Proxy)
	}
	if opts.Chat != nil {
		mux.Handle("/api/", opts.Chat)
	}
	if opts.Admin != nil {
		mux.Handle("/admin/", opts.Admin)
	}
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	if opts.UI != nil {
		mux.Handle("/ui/", opts.UI)
		mux.Handle("/ui", opts.UI)
	}
	mux.HandleFunc("/", notFound)
	var h http.Handler = mux
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	s.handler = s.middleware(h)
	return s
}

// Handler returns the root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

func notFound(w http.ResponseWriter, r *http.Request) {
	openai.WriteError(w, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, "unknown_url",
		fmt.Sprintf("unknown request URL: %s %s", r.Method, r.URL.Path)), w.Header().Get("X-Request-Id"))
}

// middleware sets the request id, recovers panics and tracks in-flight
// requests so shutdown can wait for them.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Done()
		id := r.Header.Get("X-Request-Id")
		if !saneID(id) {
			id = newID()
		}
		w.Header().Set("X-Request-Id", id)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "request_id", id, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				openai.WriteError(w, openai.NewError(http.StatusInternalServerError, openai.TypeServer,
					"internal_error", "internal error"), id)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// saneID accepts a client-sent request id of 1..128 safe characters.
func saneID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// newID returns "req_" + 14 hex digits of the time in microseconds + 16
// random hex digits. Time-ordered ids keep the ledger's id index append-only:
// random ids dirty one index page per row, which made each SQLite commit
// write hundreds of WAL frames.
func newID() string {
	var b [4 + 14 + 16]byte
	copy(b[:], "req_")
	us := uint64(time.Now().UnixMicro())
	for i := 4 + 13; i >= 4; i-- {
		b[i] = hexDigits[us&0xf]
		us >>= 4
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	hex.Encode(b[18:], r[:])
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

// SetServing marks the server as accepting traffic (true) or not. Serve
// sets it; embedders that serve the Handler themselves call it.
func (s *Server) SetServing(v bool) { s.serving.Store(v) }

// readiness says whether to send this replica traffic: only starting,
// draining and a full ledger queue make it unready.
func (s *Server) readiness() (ready bool, reason string) {
	switch {
	case s.draining.Load():
		return false, "draining: shutting down"
	case !s.serving.Load():
		return false, "starting"
	}
	if s.opts.LedgerQueue != nil {
		if depth, capacity := s.opts.LedgerQueue(); capacity > 0 && depth >= capacity {
			return false, fmt.Sprintf("ledger queue full (%d rows waiting)", depth)
		}
	}
	return true, ""
}

// healthz is liveness: cheap and always 200 while the process serves
// HTTP. With ?verbose (any value but false/0) it also reports every
// dependency, which costs one check each.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	v, verbose := r.URL.Query()["verbose"]
	if !verbose || (len(v) > 0 && (v[0] == "0" || v[0] == "false")) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	writeJSON(w, http.StatusOK, s.report(r.Context()))
}

// readyz answers 200 while the gateway should get traffic, else 503, with
// the dependency report either way.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	rep := s.report(r.Context())
	status := http.StatusOK
	if !rep.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rep)
}

// Report is the body of /readyz and /healthz?verbose.
type Report struct {
	Status string `json:"status"` // ok, degraded or unready
	Ready  bool   `json:"ready"`
	// Reason says why the gateway is unready.
	Reason string `json:"reason,omitempty"`
	// Degraded: it serves, but a dependency is failing or a circuit is not
	// closed.
	Degraded bool `json:"degraded"`
	// Checks maps each dependency to "ok" or its error.
	Checks    map[string]string `json:"checks"`
	Ledger    *LedgerReport     `json:"ledger,omitempty"`
	Upstreams []UpstreamReport  `json:"upstreams,omitempty"`
}

// LedgerReport is the usage writer's queue.
type LedgerReport struct {
	QueueDepth    int `json:"queue_depth"`
	QueueCapacity int `json:"queue_capacity"`
}

// UpstreamReport summarises one upstream's health; /admin/upstreams has
// the details.
type UpstreamReport struct {
	Name  string         `json:"name"`
	State upstream.State `json:"state"`
	// Unhealthy lists the models that are open, half-open or cooling.
	Unhealthy map[string]upstream.State `json:"unhealthy_models,omitempty"`
}

// checkTimeout bounds each dependency check.
const checkTimeout = 2 * time.Second

func (s *Server) report(ctx context.Context) Report {
	rep := Report{Checks: make(map[string]string, len(s.checks))}
	rep.Ready, rep.Reason = s.readiness()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range s.checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			res := "ok"
			if err := check(cctx); err != nil {
				// Dependency errors name socket addresses and URLs; the
				// report is for operators but may be scraped into tickets.
				res = upstreamerr.Sanitize([]byte(err.Error()), 300)
			}
			mu.Lock()
			rep.Checks[name] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, res := range rep.Checks {
		if res != "ok" {
			rep.Degraded = true
		}
	}
	if s.opts.LedgerQueue != nil {
		d, c := s.opts.LedgerQueue()
		rep.Ledger = &LedgerReport{QueueDepth: d, QueueCapacity: c}
	}
	if s.opts.Upstreams != nil {
		for _, st := range s.opts.Upstreams() {
			ur := UpstreamReport{Name: st.Name, State: st.State}
			for _, m := range st.ModelHealth {
				if m.State != upstream.StateClosed {
					if ur.Unhealthy == nil {
						ur.Unhealthy = map[string]upstream.State{}
					}
					ur.Unhealthy[m.Model] = m.State
				}
			}
			if st.State != upstream.StateClosed || len(ur.Unhealthy) > 0 {
				rep.Degraded = true
			}
			rep.Upstreams = append(rep.Upstreams, ur)
		}
	}
	switch {
	case !rep.Ready:
		rep.Status = "unready"
	case rep.Degraded:
		rep.Status = "degraded"
	default:
		rep.Status = "ok"
	}
	return rep
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// HTTPServer returns an http.Server with bounded header size and timeouts.
// There is no ReadTimeout or WriteTimeout: they would cut long streams; the
// proxy bounds the body read and the whole request itself.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10, // OpenAI and Anthropic clients send a few KiB at most
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops
// accepting, lets in-flight requests and streams finish for up to drain, then
// cancels what is left and waits (briefly) for those handlers to record their
// outcome. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener, drain time.Duration) error {
	hs := s.HTTPServer(ln.Addr().String())
	hs.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	errc := make(chan error, 1)
	ln = s.opts.Streams.Listener(ln)
	go func() { errc <- hs.Serve(ln) }()
	s.serving.Store(true)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("shutting down: draining in-flight requests", "drain_timeout", drain.String())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	// Taken stream connections are not net/http's to wait for: they end
	// with their streams, by the same deadline.
	s.opts.Streams.Close()
	err := hs.Shutdown(sctx)
	if err == nil {
		err = s.opts.Streams.Drain(sctx, handlerGrace)
	}
	if err != nil {
		s.log.Warn("drain deadline reached; closing remaining connections")
		_ = hs.Close()
		_ = s.opts.Streams.Drain(sctx, handlerGrace)
	}
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(handlerGrace):
		s.log.Error("handlers still running 5s after close")
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", e)
	}
	return nil
}
