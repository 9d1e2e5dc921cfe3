package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate/tollgate/internal/proxy"
)

// Attribute keys tollgate adds besides the semantic-convention ones.
const (
	attrRequestID = attribute.Key("tollgate.request_id")
	attrUpstream  = attribute.Key("tollgate.upstream")
	attrModel     = attribute.Key("gen_ai.request.model")
	attrRows      = attribute.Key("tollgate.ledger.rows")
)

// Tracing holds the tracer provider, or nothing when tracing is off. Every
// method is safe on a nil or disabled *Tracing and then costs nothing: the
// middleware is the next handler itself and ProxyTracer is nil.
type Tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// SetupTracing turns tracing on when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (as seen through lookup, usually
// os.LookupEnv) and OTEL_SDK_DISABLED is not "true". The OTLP/HTTP exporter
// then reads the standard OTEL_EXPORTER_OTLP_* variables (headers, timeout,
// compression, TLS) through lookup, and the SDK reads OTEL_TRACES_SAMPLER; spans leave through a
// batch processor so exporting never blocks a request. service.name is
// "tollgate" unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say
// otherwise. When tracing is off the returned Tracing is a no-op.
//
// The exporter is our own OTLP/HTTP protobuf client (otlphttp.go), not
// otlptracehttp, which links gRPC into the binary.
func SetupTracing(ctx context.Context, lookup func(string) (string, bool), serviceVersion string) (*Tracing, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return v
	}
	if get("OTEL_SDK_DISABLED") == "true" ||
		(get("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "") {
		return &Tracing{}, nil
	}
	client, err := newOTLPHTTPClient(lookup)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName("tollgate"), semconv.ServiceVersion(serviceVersion)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last, so OTEL_SERVICE_NAME wins
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return newTracing(tp), nil
}

// NewTracingWithExporter returns an enabled Tracing that hands every span to
// exp as soon as it ends (no batching), for tests with
// tracetest.InMemoryExporter.
func NewTracingWithExporter(exp sdktrace.SpanExporter) *Tracing {
	return newTracing(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
}

func newTracing(tp *sdktrace.TracerProvider) *Tracing {
	return &Tracing{
		tp:     tp,
		tracer: tp.Tracer("github.com/tollgate/tollgate"),
		// Only W3C trace context: baggage could carry anything a client
		// sends, and we do not want to forward it to upstreams.
		prop: propagation.TraceContext{},
	}
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t != nil && t.tp != nil }

// Shutdown flushes pending spans and stops the exporter. It is a no-op when
// tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// Middleware starts the server span "request" for each request, as a child
// of an incoming traceparent if there is one, and puts it in the request
// context for the proxy and the ledger. The span records the method, the
// route (the ServeMux pattern when next is a mux), the response status and
// the X-Request-Id. With tracing off it returns next unchanged.
func (t *Tracing) Middleware(next http.Handler) http.Handler {
	if !t.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(ctx, "request",
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				semconv.HTTPRequestMethodKey.String(r.Method),
				semconv.URLPathKey.String(r.URL.Path),
			))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w}
		r2 := r.WithContext(ctx)
		defer func() {
			// Deferred so that a panic (http.ErrAbortHandler when a stream
			// breaks) still ends the span with what is known.
			if r2.Pattern != "" { // set by ServeMux on the request it was given
				span.SetAttributes(semconv.HTTPRoute(r2.Pattern))
			}
			status := sw.status
			if status == 0 && sw.wrote {
				status = http.StatusOK
			}
			if status != 0 {
				span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			}
			if id := w.Header().Get("X-Request-Id"); id != "" {
				span.SetAttributes(attrRequestID.String(id))
			}
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
		}()
		next.ServeHTTP(sw, r2)
	})
}

// statusWriter remembers the status code. Unwrap lets
// http.NewResponseController reach the real writer's Flush, deadlines and
// hijacking; Flush is also direct for code that asserts http.Flusher.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are informational, not the status
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ProxyTracer returns the proxy's attempt tracer, or nil when tracing is off
// so the proxy skips tracing entirely.
func (t *Tracing) ProxyTracer() proxy.Tracer {
	if !t.Enabled() {
		return nil
	}
	return attemptTracer{t}
}

type attemptTracer struct{ t *Tracing }

var _ proxy.Tracer = attemptTracer{}

// StartAttempt implements proxy.Tracer: a client span per upstream attempt,
// whose context replaces any traceparent in the outbound header, so the
// upstream sees this attempt as its parent.
func (a attemptTracer) StartAttempt(ctx context.Context, upstreamName, model string, h http.Header) func(status int, err error) {
	ctx, span := a.t.tracer.Start(ctx, "upstream attempt",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrUpstream.String(upstreamName), attrModel.String(model)))
	h.Del("Tracestate") // a client's tracestate belongs to its own span, not ours
	a.t.prop.Inject(ctx, propagation.HeaderCarrier(h))
	return func(status int, err error) {
		if status != 0 {
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		}
		switch {
		case err != nil:
			// Transport errors name the upstream URL (never credentials:
			// base_url may not carry them) and the failure.
			span.RecordError(err)
			span.SetStatus(codes.Error, "attempt failed")
		case status >= 500 || status == http.StatusTooManyRequests:
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
}

// noopEnd is LedgerSpan's result when tracing is off; a package-level func
// value, so the call allocates nothing.
func noopEnd(int, error) {}

// LedgerSpan starts a span for one ledger batch write under ctx; call the
// returned func with the rows written and the write's error.
func (t *Tracing) LedgerSpan(ctx context.Context) func(rows int, err error) {
	if !t.Enabled() {
		return noopEnd
	}
	_, span := t.tracer.Start(ctx, "ledger write", trace.WithSpanKind(trace.SpanKindInternal))
	return func(rows int, err error) {
		span.SetAttributes(attrRows.Int(rows))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "ledger write failed")
		}
		span.End()
	}
}
