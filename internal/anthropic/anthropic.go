// Package anthropic is the Anthropic Messages dialect (POST /v1/messages and
// /v1/messages/count_tokens), as Claude Code and the Anthropic SDKs speak it.
//
// To an upstream that speaks Anthropic itself the request passes through as
// bytes and the answer comes back unchanged, with usage tapped on the way
// past. To an OpenAI-compatible upstream the request is translated to chat
// completions and the answer translated back, event by event, so a client
// cannot tell the difference.
package anthropic

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tidwall/sjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/jsonscan"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
)

// DefaultVersion is the anthropic-version sent to an Anthropic upstream when
// the client sent none (the only version Anthropic has published).
const DefaultVersion = "2023-06-01"

// Paths this dialect serves (after /v1).
const (
	PathMessages    = "/messages"
	PathCountTokens = "/messages/count_tokens"
)

// Dialect is the Anthropic Messages dialect. Create it with New.
type Dialect struct {
	log *slog.Logger
}

// New returns the dialect. log receives debug lines about request fields
// that have no translation; nil discards them.
func New(log *slog.Logger) *Dialect {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dialect{log: log}
}

var _ proxy.Dialect = (*Dialect)(nil)

// head is what the dialect reads from a request body.
type head struct {
	Model       string
	Stream      bool
	MaxTokens   int64
	HasMax      bool
	User        string // metadata.user_id
	HasMessages bool   // "messages" is present
	Messages    int    // -1: not an array, 0: empty, 1: at least one entry
}

// parseHead reads the request head in one pass over the top-level members.
// It is the one place that knows how the head is read, so a stricter scanner
// (duplicate and case-variant safe) can replace gjson here alone. It reports
// ok=false when body is not a JSON object.
func parseHead(body []byte) (h head, err error) {
	obj, err := jsonscan.Scan(body, jsonscan.Options{MaxDepth: openai.MaxDepth})
	if err != nil {
		return head{}, headError(err, "")
	}
	// Fields are matched as an upstream built on encoding/json matches them
	// (without regard to case); two candidates for one is refused.
	field := func(name string) ([]byte, bool, error) {
		raw, ok, err := obj.Field(name)
		if err != nil || !ok || jsonscan.IsNull(raw) {
			return nil, false, headError(err, name)
		}
		return raw, true, nil
	}
	if raw, ok, err := field("model"); err != nil {
		return head{}, err
	} else if ok {
		if h.Model, err = jsonscan.String(raw); err != nil {
			return head{}, headError(err, "model")
		}
	}
	if raw, ok, err := field("stream"); err != nil {
		return head{}, err
	} else if ok {
		if h.Stream, err = jsonscan.Bool(raw); err != nil {
			return head{}, headError(err, "stream")
		}
	}
	if raw, ok, err := field("max_tokens"); err != nil {
		return head{}, err
	} else if ok {
		if h.MaxTokens, err = jsonscan.Int64(raw); err != nil {
			return head{}, headError(err, "max_tokens")
		}
		h.HasMax = true
	}
	if raw, ok, err := field("metadata"); err != nil {
		return head{}, err
	} else if ok {
		md, err := jsonscan.Scan(raw, jsonscan.Options{MaxDepth: openai.MaxDepth - 1})
		if err != nil {
			return head{}, headError(err, "metadata")
		}
		if u, ok, err := md.Field("user_id"); err != nil {
			return head{}, headError(err, "metadata.user_id")
		} else if ok && !jsonscan.IsNull(u) {
			if h.User, err = jsonscan.String(u); err != nil {
				return head{}, headError(err, "metadata.user_id")
			}
		}
	}
	if raw, ok, err := field("messages"); err != nil {
		return head{}, err
	} else if ok {
		h.HasMessages = true
		h.Messages = -1 // not an array
		if b := bytes.TrimSpace(raw); len(b) > 0 && b[0] == '[' {
			h.Messages = 0
			if inner := bytes.TrimSpace(b[1:]); len(inner) > 0 && inner[0] != ']' {
				h.Messages = 1 // at least one; the count itself is not needed
			}
		}
	}
	return h, nil
}

// headError is the 400 for a body whose head cannot be read unambiguously.
func headError(err error, field string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "")
	}
	switch {
	case errors.Is(err, jsonscan.ErrTooDeep):
		msg = fmt.Sprintf("The request body nests deeper than %d levels.", openai.MaxDepth)
	case errors.Is(err, jsonscan.ErrDuplicate):
		msg = field + ": appears more than once (names are matched without regard to case): " + msg
	case errors.Is(err, jsonscan.ErrType):
		msg = field + ": " + msg
	case field == "":
		msg = "The request body is not valid JSON: " + msg
	}
	e := apierr.BadRequest("invalid_request", msg)
	e.Param = field
	return e
}

// Parse validates a Messages or count_tokens request as Anthropic does and
// reads its head.
func (d *Dialect) Parse(in *proxy.Inbound) (proxy.Request, error) {
	count := false
	switch strings.TrimRight(in.Path, "/") {
	case PathMessages:
	case PathCountTokens:
		count = true
	default:
		return nil, apierr.New(http.StatusNotFound, apierr.NotFound, "not_found", "Not found: "+in.Path)
	}
	if in.Method != http.MethodPost {
		return nil, apierr.New(http.StatusMethodNotAllowed, apierr.InvalidRequest, "method_not_allowed",
			"Method Not Allowed: use POST")
	}
	h, err := parseHead(in.Body)
	if err != nil {
		return nil, err
	}
	switch {
	case h.Model == "":
		return nil, param("model", "model: Field required")
	case !count && !h.HasMax:
		return nil, param("max_tokens", "max_tokens: Field required")
	case !count && h.MaxTokens < 1:
		return nil, param("max_tokens", "max_tokens: Input should be greater than or equal to 1")
	case !h.HasMessages:
		return nil, param("messages", "messages: Field required")
	case h.Messages < 0:
		return nil, param("messages", "messages: Input should be a valid list")
	case h.Messages == 0:
		return nil, param("messages", "messages: at least one message is required")
	}
	if count {
		h.Stream, h.MaxTokens = false, 0
	}
	return &request{
		d:     d,
		body:  in.Body,
		h:     h,
		count: count,
		query: in.Query,
	}, nil
}

func param(name, msg string) *apierr.Error {
	e := apierr.BadRequest("invalid_request", msg)
	e.Param = name
	return e
}

// request is one parsed Messages or count_tokens request.
type request struct {
	d     *Dialect
	body  []byte
	h     head
	count bool
	query string
}

var (
	_ proxy.Request     = (*request)(nil)
	_ proxy.LocalAnswer = (*request)(nil)
)

func (r *request) Head() proxy.Head {
	return proxy.Head{
		Model:     r.h.Model,
		Stream:    r.h.Stream,
		User:      r.h.User,
		MaxTokens: r.h.MaxTokens,
		N:         1,
		Metered:   true,
	}
}

func (r *request) PromptTokens(estimate func([]byte) int64) int64 {
	return estimate(r.body)
}

// Answer counts tokens locally for count_tokens when the target does not
// speak Anthropic; every other request goes to the upstream.
func (r *request) Answer(t proxy.Target) (int, []byte, string, bool) {
	if !r.count || t.API == proxy.APIAnthropic {
		return 0, nil, "", false
	}
	n := CountTokens(r.body)
	return http.StatusOK, countBody(n), "application/json", true
}

// Outbound builds the upstream request for one attempt.
func (r *request) Outbound(t proxy.Target) (*proxy.Outbound, error) {
	if t.API == proxy.APIAnthropic {
		return r.passthrough(t)
	}
	if r.count {
		// The engine asks LocalAnswer first and never gets here; should one
		// not, a clear 404 beats sending Anthropic's body to a chat API.
		return nil, apierr.New(http.StatusNotFound, apierr.NotFound, "not_found",
			"count_tokens is not available for model "+r.h.Model)
	}
	return r.translate(t)
}

// passthrough forwards the client's bytes to an Anthropic upstream.
func (r *request) passthrough(t proxy.Target) (*proxy.Outbound, error) {
	body := r.body
	if t.Model != "" && t.Model != r.h.Model {
		var err error
		if body, err = sjson.SetBytes(body, "model", t.Model); err != nil {
			return nil, apierr.BadRequest("invalid_json", "The request body is not valid JSON.")
		}
	}
	path := PathMessages
	if r.count {
		path = PathCountTokens
	}
	if r.query != "" {
		path += "?" + r.query
	}
	return &proxy.Outbound{
		Path:   path,
		Body:   body,
		Header: anthropicHeader,
		Reply:  &passReply{count: r.count},
	}, nil
}

// anthropicHeader completes the header for an Anthropic upstream: the client's
// anthropic-version and anthropic-beta pass through as they are; a client that
// sent no version gets the one every Anthropic API accepts.
func anthropicHeader(h http.Header) {
	if h.Get("Anthropic-Version") == "" {
		h.Set("Anthropic-Version", DefaultVersion)
	}
}

// openAIHeader removes what only an Anthropic upstream understands.
func openAIHeader(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "Anthropic-") {
			delete(h, k)
		}
	}
}
