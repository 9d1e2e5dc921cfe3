// Package responses is the OpenAI Responses API dialect (POST /v1/responses).
//
// For an upstream that implements /v1/responses itself (Target.NativeResponses)
// the request is passed through byte for byte and metered from the usage of
// its response.completed event. For every other OpenAI-compatible upstream the
// dialect bridges: it translates the request to a chat completion and the
// chat completion (or its stream) back to a Response (or its event stream).
//
// The bridge is stateless: store:true, previous_response_id, conversation,
// background and prompt templates need stored state and are refused with a
// 400 unless a native upstream serves the request.
package responses

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/jsonscan"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
)

// DefaultMaxOutputBytes bounds what a bridged response keeps in memory: the
// output text and arguments its final events repeat (about 2M tokens).
const DefaultMaxOutputBytes = 8 << 20

// Options configures the dialect. The zero value is ready to use.
type Options struct {
	// Logger receives debug lines about request parts left out of a bridged
	// request; nil discards them.
	Logger *slog.Logger
	// MaxOutputBytes bounds the output one bridged response keeps in memory;
	// a response that would exceed it ends with response.failed
	// (output_too_large). Default DefaultMaxOutputBytes.
	MaxOutputBytes int
	// Now is the clock for created_at; default time.Now.
	Now func() time.Time
	// NewID returns the unique part of response and item ids; by default the
	// gateway's request id, or 24 random hex digits without one.
	NewID func() string
}

// Dialect is the Responses API dialect. It is safe for concurrent use.
type Dialect struct {
	opts Options
	log  *slog.Logger
}

var _ proxy.Dialect = (*Dialect)(nil)

// New returns a Dialect with defaults filled in.
func New(opts Options) *Dialect {
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dialect{opts: opts, log: log}
}

func (d *Dialect) newID() string {
	if d.opts.NewID != nil {
		return d.opts.NewID()
	}
	return randomID()
}

func randomID() string {
	var b [12]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// WriteError writes e in OpenAI's error envelope.
func (d *Dialect) WriteError(w http.ResponseWriter, e *apierr.Error, requestID string) {
	openai.WriteError(w, e, requestID)
}

// fields are the members of a Responses request the dialect reads. The
// results alias the request body, which the engine keeps unchanged for the
// request's life.
type fields struct {
	model, input, instructions, tools, toolChoice, parallelToolCalls gjson.Result
	maxOutputTokens, temperature, topP, text, reasoning, user        gjson.Result
	safetyIdentifier, promptCacheKey, metadata, serviceTier          gjson.Result
	store, previousResponseID, conversation, background, prompt      gjson.Result
	stream                                                           bool
}

// Parse reads the request. Only malformed JSON is refused here: what a
// native upstream accepts is its business, what the bridge cannot translate
// is refused per attempt in Outbound.
func (d *Dialect) Parse(in *proxy.Inbound) (proxy.Request, error) {
	body := in.Body
	if err := checkHead(body); err != nil {
		return nil, err
	}
	root := gjson.Parse(unsafe.String(&body[0], len(body)))
	if !root.IsObject() {
		return nil, apierr.BadRequest("invalid_json", "the request body must be a JSON object")
	}
	r := &request{d: d, in: in}
	f := &r.f
	root.ForEach(func(k, v gjson.Result) bool {
		if p := f.field(k.Str); p != nil {
			*p = v
		}
		return true
	})
	f.stream = f.stream || root.Get("stream").Bool()
	user := f.user.String()
	if user == "" {
		user = f.safetyIdentifier.String()
	}
	r.head = proxy.Head{
		Model: f.model.String(), Stream: f.stream, User: user,
		MaxTokens: f.maxOutputTokens.Int(), N: 1, Metered: true,
	}
	return r, nil
}

// field is where a top-level member goes, nil for members not read.
func (f *fields) field(name string) *gjson.Result {
	switch name {
	case "model":
		return &f.model
	case "input":
		return &f.input
	case "instructions":
		return &f.instructions
	case "tools":
		return &f.tools
	case "tool_choice":
		return &f.toolChoice
	case "parallel_tool_calls":
		return &f.parallelToolCalls
	case "max_output_tokens":
		return &f.maxOutputTokens
	case "temperature":
		return &f.temperature
	case "top_p":
		return &f.topP
	case "text":
		return &f.text
	case "reasoning":
		return &f.reasoning
	case "user":
		return &f.user
	case "safety_identifier":
		return &f.safetyIdentifier
	case "prompt_cache_key":
		return &f.promptCacheKey
	case "metadata":
		return &f.metadata
	case "service_tier":
		return &f.serviceTier
	case "store":
		return &f.store
	case "previous_response_id":
		return &f.previousResponseID
	case "conversation":
		return &f.conversation
	case "background":
		return &f.background
	case "prompt":
		return &f.prompt
	}
	return nil
}

// echo is what Response objects repeat of the request.
func (f *fields) echo() *echo {
	r := func(v gjson.Result) string {
		if !v.Exists() || v.Type == gjson.Null {
			return ""
		}
		return oneLine(v.Raw)
	}
	e := &echo{
		instructions: r(f.instructions), maxOutputTokens: r(f.maxOutputTokens),
		parallelToolCalls: r(f.parallelToolCalls), temperature: r(f.temperature), topP: r(f.topP),
		toolChoice: r(f.toolChoice), tools: r(f.tools), text: r(f.text), user: r(f.user),
		metadata: r(f.metadata), promptCacheKey: r(f.promptCacheKey),
		safetyIdentifier: r(f.safetyIdentifier), serviceTier: r(f.serviceTier),
		effort: r(f.reasoning.Get("effort")), summary: r(f.reasoning.Get("summary")),
	}
	if f.text.Exists() && !f.text.Get("format").Exists() {
		e.text = "" // the default shape, so clients find text.format
	}
	return e
}

// stateful returns the 400 for a request that needs stored state, or nil.
func (f *fields) stateful() *apierr.Error {
	const hint = "; tollgate bridges /v1/responses statelessly to this upstream (send store:false and the whole conversation in input)"
	switch {
	case f.store.Type == gjson.True:
		return param(apierr.BadRequest("stateful_request_unsupported", "store:true is not supported"+hint), "store")
	case f.previousResponseID.Type == gjson.String && f.previousResponseID.Str != "":
		return param(apierr.BadRequest("stateful_request_unsupported", "previous_response_id is not supported"+hint), "previous_response_id")
	case f.conversation.Exists() && f.conversation.Type != gjson.Null:
		return param(apierr.BadRequest("stateful_request_unsupported", "conversation is not supported"+hint), "conversation")
	case f.background.Type == gjson.True:
		return param(apierr.BadRequest("stateful_request_unsupported", "background:true is not supported"+hint), "background")
	case f.prompt.Exists() && f.prompt.Type != gjson.Null:
		return param(apierr.BadRequest("stateful_request_unsupported", "stored prompt templates (prompt) are not supported"+hint), "prompt")
	}
	return nil
}

// oneLine drops the line breaks of a raw JSON value. Outside strings (where
// they are escaped) they are only whitespace, and an event's data must be
// one line.
func oneLine(raw string) string {
	if !strings.ContainsAny(raw, "\r\n") {
		return raw
	}
	return strings.NewReplacer("\r", "", "\n", "").Replace(raw)
}

// headFields decide routing, permissions, metering and statefulness. They are
// read by their exact names; an upstream built on encoding/json would also
// read a case variant, so a duplicate or a variant is refused rather than
// read differently on the two sides.
var headFields = []string{"model", "stream", "user", "safety_identifier", "max_output_tokens", "store", "previous_response_id"}

// checkHead validates body without recursion (bounded depth) and refuses
// ambiguous head fields.
func checkHead(body []byte) error {
	obj, err := jsonscan.Scan(body, jsonscan.Options{MaxDepth: openai.MaxDepth})
	if err != nil {
		if errors.Is(err, jsonscan.ErrTooDeep) {
			return apierr.BadRequest("json_too_deep", fmt.Sprintf("the request body nests deeper than %d levels", openai.MaxDepth))
		}
		return apierr.BadRequest("invalid_json", "the request body is not a valid JSON object: "+clip(err.Error()))
	}
	for _, name := range headFields {
		_, ok, err := obj.Field(name)
		if err == nil && ok {
			if _, exact := obj.Exact(name); !exact {
				err = fmt.Errorf("use the field name %q exactly", name)
			}
		}
		if err != nil {
			e := apierr.BadRequest("duplicate_field", "'"+name+"' is ambiguous: "+clip(err.Error()))
			e.Param = name
			return e
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 200 {
		return strings.ToValidUTF8(s[:200], "")
	}
	return s
}
