package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// otlpHTTPClient is an otlptrace.Client that sends OTLP/HTTP protobuf. It
// replaces otlptracehttp, whose shared config code and generated collector
// service import google.golang.org/grpc and grpc-gateway: about 10 MB of the
// stripped binary (34 MB -> 23 MB) for a transport we never use. The wire
// format is the same: POST an ExportTraceServiceRequest to /v1/traces.
//
// It reads the standard variables (through lookup, not os.Getenv):
// OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT, _HEADERS, _TIMEOUT (ms), _COMPRESSION
// (gzip|none), _CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY. A _TRACES_
// variable wins over the general one. _PROTOCOL is not read: this is always
// http/protobuf, as otlptracehttp was.
type otlpHTTPClient struct {
	url     string
	headers http.Header
	gzip    bool
	timeout time.Duration
	client  *http.Client
}

// otlpMaxAttempts bounds the retries of one export (429, 502, 503, 504).
const otlpMaxAttempts = 5

func newOTLPHTTPClient(lookup func(string) (string, bool)) (*otlpHTTPClient, error) {
	get := func(name string) string {
		if v, ok := lookup("OTEL_EXPORTER_OTLP_TRACES_" + name); ok && v != "" {
			return v
		}
		v, _ := lookup("OTEL_EXPORTER_OTLP_" + name)
		return v
	}
	c := &otlpHTTPClient{headers: http.Header{}, timeout: 10 * time.Second}
	if v, _ := lookup("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		c.url = v // the signal-specific endpoint is used as is
	} else {
		v, _ := lookup("OTEL_EXPORTER_OTLP_ENDPOINT")
		c.url = strings.TrimRight(v, "/") + "/v1/traces"
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL")
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		v, _ := lookup(name)
		if err := parseOTLPHeaders(v, c.headers); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if v := get("TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT: %q is not a number of milliseconds", v)
		}
		c.timeout = time.Duration(ms) * time.Millisecond
	}
	switch v := get("COMPRESSION"); v {
	case "", "none":
	case "gzip":
		c.gzip = true
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_COMPRESSION: %q is not gzip or none", v)
	}
	tlsConf, err := otlpTLS(get("CERTIFICATE"), get("CLIENT_CERTIFICATE"), get("CLIENT_KEY"))
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	c.client = &http.Client{Transport: tr}
	return c, nil
}

// parseOTLPHeaders parses "k1=v1,k2=v2" with URL-encoded values (the OTel
// spec's W3C baggage format) into h. Values are never echoed in errors: they
// are usually credentials.
func parseOTLPHeaders(s string, h http.Header) error {
	for item := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return errors.New("want key=value pairs separated by commas")
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("header %s: bad percent-encoding", k)
		}
		h.Set(k, dv)
	}
	return nil
}

func otlpTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_CERTIFICATE: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_CERTIFICATE: no certificate in %s", caFile)
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// Start implements otlptrace.Client.
func (c *otlpHTTPClient) Start(context.Context) error { return nil }

// Stop implements otlptrace.Client.
func (c *otlpHTTPClient) Stop(context.Context) error {
	c.client.CloseIdleConnections()
	return nil
}

// UploadTraces implements otlptrace.Client: one POST per batch, retried with
// backoff (honouring Retry-After) on 429/502/503/504 and transport errors,
// within the timeout.
func (c *otlpHTTPClient) UploadTraces(ctx context.Context, spans []*tracepb.ResourceSpans) error {
	body, err := encodeExportRequest(spans, c.gzip)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		retryAfter, err := c.post(ctx, body)
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt == otlpMaxAttempts {
			return err
		}
		if retryAfter > 0 {
			wait = retryAfter
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
		wait *= 2
	}
}

type permanentError struct{ error }

func (c *otlpHTTPClient) post(ctx context.Context, body []byte) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, permanentError{fmt.Errorf("otlp: %w", err)}
	}
	for k, v := range c.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if c.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("otlp: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return 0, nil
	}
	err = fmt.Errorf("otlp: collector answered %s: %q", resp.Status, bytes.TrimSpace(msg))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return time.Duration(secs) * time.Second, err
	}
	return 0, permanentError{err}
}

// encodeExportRequest writes an ExportTraceServiceRequest by hand: it is one
// repeated field (resource_spans = 1), and its generated Go type lives in a
// package that imports gRPC.
func encodeExportRequest(spans []*tracepb.ResourceSpans, gz bool) ([]byte, error) {
	var b []byte
	for _, rs := range spans {
		m, err := proto.Marshal(rs)
		if err != nil {
			return nil, fmt.Errorf("otlp: encode spans: %w", err)
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	if !gz {
		return b, nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, fmt.Errorf("otlp: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("otlp: gzip: %w", err)
	}
	return buf.Bytes(), nil
}
