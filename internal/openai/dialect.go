package openai

import (
	"bytes"
	"net/http"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/jsonscan"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

// Dialect is the OpenAI wire format of /v1/*: chat completions, completions
// and embeddings are parsed and metered; every other path is forwarded
// verbatim, routed by the model its body names.
type Dialect struct{}

var _ proxy.Dialect = Dialect{}

// meteredPaths are the endpoints whose bodies the gateway parses and meters.
var meteredPaths = map[string]bool{
	"/chat/completions": true,
	"/completions":      true,
	"/embeddings":       true,
}

// WriteError writes e in OpenAI's error envelope.
func (Dialect) WriteError(w http.ResponseWriter, e *apierr.Error, requestID string) {
	WriteError(w, e, requestID)
}

// Parse reads the head of an OpenAI request.
func (Dialect) Parse(in *proxy.Inbound) (proxy.Request, error) {
	r := &request{in: in, body: in.Body, metered: in.Method == http.MethodPost && meteredPaths[in.Path]}
	if err := r.parse(); err != nil {
		return nil, err
	}
	return r, nil
}

// request is one OpenAI request being served.
type request struct {
	in      *Inbound
	body    []byte // as forwarded: include_usage injected when the gateway needs it
	head    Head
	metered bool
	json    bool // the body is a JSON object (its model can be rewritten)
	// formType is the Content-Type of a form body ("" otherwise): an
	// alias or a model map renames the model inside it too.
	formType string
	// hideUsage: the client did not ask for the usage chunk; we injected it.
	hideUsage bool
}

// Inbound is the engine's view of the client's request.
type Inbound = proxy.Inbound

// jsonPaths are unmetered endpoints whose bodies are JSON: a body that is not
// is refused rather than forwarded unread.
var jsonPaths = map[string]bool{
	"/images/generations": true, "/moderations": true, "/audio/speech": true, "/responses": true,
	"/messages": true, "/rerank": true, "/batches": true, "/fine_tuning/jobs": true,
}

// parse reads the head of every body whatever its Content-Type claims, so no
// label can carry a model past the key's permissions or the ledger.
func (r *request) parse() error {
	body := r.in.Body
	ct := r.in.Header.Get("Content-Type")
	switch {
	case len(body) == 0:
		if r.metered {
			return BadRequest("invalid_json", "the request body is empty; a JSON object is required")
		}
		return nil
	case !r.metered && isForm(ct):
		return r.parseForm(ct)
	case r.metered || jsonPaths[r.in.Path] || isJSON(ct) || looksJSON(body):
		h, err := ParseHead(body)
		if err != nil {
			return err
		}
		r.head, r.json = h, true
	}
	if !r.metered {
		return nil
	}
	if r.in.Path == "/chat/completions" && !r.head.HasMessages {
		return &Error{Status: 400, Type: TypeInvalidRequest, Code: "missing_messages",
			Param: "messages", Message: "'messages' is required and must be a non-empty array"}
	}
	if r.head.Stream && r.in.Path != "/embeddings" && !r.head.IncludeUsage {
		var err error
		if r.body, err = SetIncludeUsage(r.body); err != nil {
			return BadRequest("invalid_json", "could not set stream_options")
		}
		r.hideUsage = true
	}
	return nil
}

func isJSON(ct string) bool { return len(ct) >= 16 && strings.EqualFold(ct[:16], "application/json") }

func isForm(ct string) bool {
	return (len(ct) >= 19 && strings.EqualFold(ct[:19], "multipart/form-data")) ||
		(len(ct) >= 33 && strings.EqualFold(ct[:33], "application/x-www-form-urlencoded"))
}

// looksJSON reports whether body starts like a JSON object.
func looksJSON(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// Head is what the engine reads.
func (r *request) Head() proxy.Head {
	return proxy.Head{Model: r.head.Model, Stream: r.head.Stream, User: r.head.User,
		MaxTokens: r.head.MaxTokens, N: r.head.N, Metered: r.metered}
}

// Outbound sends the body on with the target's model.
func (r *request) Outbound(t proxy.Target) (*proxy.Outbound, error) {
	body := r.body
	if r.json && t.Model != "" && t.Model != r.head.Model && (r.metered || r.head.Model != "") {
		var err error
		if body, err = SetModel(body, t.Model); err != nil {
			return nil, BadRequest("invalid_json", "could not rewrite the model")
		}
	}
	if r.formType != "" && t.Model != "" && t.Model != r.head.Model && r.head.Model != "" {
		var err error
		if body, err = setFormModel(body, r.formType, t.Model); err != nil {
			return nil, BadRequest("invalid_body", "could not rewrite the model in the form")
		}
	}
	path := r.in.Path
	if r.in.Query != "" {
		path += "?" + r.in.Query
	}
	return &proxy.Outbound{Path: path, Body: body, Verbatim: !r.metered,
		Reply: &reply{req: r}}, nil
}

// PromptTokens estimates the prompt from the message contents.
func (r *request) PromptTokens(estimate func([]byte) int64) int64 {
	body := r.in.Body
	if len(body) == 0 {
		return 0
	}
	var field string
	switch r.in.Path {
	case "/chat/completions":
		field = "messages"
	case "/completions":
		field = "prompt"
	case "/embeddings":
		field = "input"
	default:
		return estimate(body) / 2
	}
	// Parse over the body in place (no copy of a large prompt): the
	// strings below alias the body and are only read.
	v := gjson.Get(unsafe.String(&body[0], len(body)), field)
	if field != "messages" {
		return estimate(aliasBytes(v.Raw))
	}
	var n int64
	v.ForEach(func(_, m gjson.Result) bool {
		n += 4 + estimate(aliasBytes(m.Get("content").Raw)) // ~4 tokens of framing per message
		return true
	})
	return n
}

// aliasBytes views s as bytes without copying; the result must not be written.
func aliasBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// reply passes an upstream response through, reading its usage.
type reply struct{ req *request }

func (rp *reply) Error(status int, h http.Header, body []byte) (int, []byte, string) {
	return WrapUpstreamError(status, h.Get("Content-Type"), body)
}

func (rp *reply) Stream() proxy.Stream {
	if !rp.req.metered {
		return verbatimStream{}
	}
	s := &stream{hideUsage: rp.req.hideUsage, requestID: rp.req.in.RequestID,
		contentPath: "choices.0.delta.content", contentName: contentName}
	if rp.req.in.Path == "/completions" {
		s.contentPath, s.contentName = "choices.0.text", textName
	}
	return s
}

func (rp *reply) Whole() bool { return false }

func (rp *reply) Body([]byte) ([]byte, string, proxy.Usage, error) {
	panic("openai: Body called on a pass-through reply")
}

func (rp *reply) Tail(tail []byte) (proxy.Usage, []byte) {
	if !rp.req.metered {
		return proxy.Usage{}, nil
	}
	u := UsageFromTail(tail).Engine()
	if u.Total() > 0 || len(tail) == 0 {
		// The content only serves to estimate a usage the upstream did not
		// report; finding it meant parsing the whole body (~1.5% of a
		// non-stream call's CPU at 1000 req/s).
		return u, nil
	}
	// The tail is viewed as a string without a copy; content copies the
	// one string kept (GetBytes would copy what it returns twice).
	var content []byte
	if c := gjson.Get(unsafe.String(&tail[0], len(tail)), "choices.0.message.content"); c.Type == gjson.String {
		content = []byte(c.Str)
	}
	return u, content
}

// Engine converts u to the engine's usage.
func (u Usage) Engine() proxy.Usage {
	return proxy.Usage{Prompt: u.PromptTokens, Cached: u.CachedTokens, CacheWrite: u.CacheWriteTokens,
		Completion: u.CompletionTokens, Reasoning: u.ReasoningTokens}
}

// verbatimStream forwards the events of an unmetered stream unchanged.
type verbatimStream struct{}

func (verbatimStream) Event(dst []byte, ev sse.Event) ([]byte, error) {
	return append(dst, ev.Raw...), nil
}
func (verbatimStream) End(dst []byte, _ *apierr.Error) []byte { return dst }
func (verbatimStream) Usage() proxy.Usage                     { return proxy.Usage{} }
func (verbatimStream) Content() []byte                        { return nil }

// maxContent bounds the streamed text kept for estimating usage.
const maxContent = 1 << 20

// stream taps a chat or completions stream: it reads the usage from the
// chunk that carries it and hides that chunk (and the "usage":null members)
// when the client did not ask for them.
type stream struct {
	hideUsage   bool
	requestID   string
	contentPath string
	contentName []byte // the quoted member name contentPath ends in
	u           Usage
	content     []byte
}

var (
	usageKey  = []byte(`"usage"`)
	usageNull = []byte(`"usage":null`)
)

func (s *stream) Event(dst []byte, ev sse.Event) ([]byte, error) {
	// One search for "usage" serves both questions below. With
	// include_usage on, OpenAI puts "usage":null in every chunk: only a
	// chunk whose usage is something else is parsed for it.
	u := bytes.Index(ev.Data, usageKey)
	if data := ev.Data; len(data) > 0 && data[0] == '{' {
		if u >= 0 && !onlyUsageNull(data[u:]) {
			if uj := gjson.GetBytes(data, "usage"); uj.IsObject() {
				s.u = usageIn(data, uj)
				if s.hideUsage && gjson.GetBytes(data, "choices.#").Int() == 0 {
					return dst, nil
				}
			}
		}
		if len(s.content) < maxContent {
			s.appendContent(data)
		}
	}
	if s.hideUsage && ev.Dispatch && u >= 0 {
		// OpenAI adds "usage":null to every chunk once include_usage is on;
		// the client did not ask for it, so it does not see it. It is
		// almost always the first "usage" in the chunk: no second search.
		n := u
		if !bytes.HasPrefix(ev.Data[u:], usageNull) {
			if n = bytes.Index(ev.Data[u:], usageNull); n >= 0 {
				n += u
			}
		}
		if n >= 0 {
			dst = append(dst, "data: "...)
			dst = appendWithoutUsageNull(dst, ev.Data, n)
			return append(dst, "\n\n"...), nil
		}
	}
	return append(dst, ev.Raw...), nil
}

// onlyUsageNull reports whether b, which starts with "usage", is
// "usage":null and names usage nowhere else.
func onlyUsageNull(b []byte) bool {
	return bytes.HasPrefix(b, usageNull) && !bytes.Contains(b[len(usageNull):], usageKey)
}

var (
	contentName = []byte(`"content"`)
	textName    = []byte(`"text"`)
)

// appendContent adds the text a chunk carries to s.content (kept to estimate
// usage an upstream does not report). Nearly every chunk names it once, as a
// string without escapes: its bytes are then taken as they are, at the cost
// of two searches rather than a parse of the chunk; one with escapes is
// decoded in place. Anything else (null, the name seen twice, a space after
// the colon) goes through gjson.
func (s *stream) appendContent(data []byte) {
	name := s.contentName
	i := bytes.Index(data, name)
	if i < 0 {
		return // no member of that name: nothing to take
	}
	rest := data[i+len(name):]
	if len(rest) > 1 && rest[0] == ':' && rest[1] == '"' && bytes.Index(rest, name) < 0 {
		v := rest[2:]
		if q := bytes.IndexByte(v, '"'); q >= 0 && bytes.IndexByte(v[:q], '\\') < 0 {
			s.content = append(s.content, v[:q]...)
			return
		}
		// Escapes (a newline, a quote) are common in generated text: decoded
		// here, such a chunk is not parsed either. gjson's recursive descent
		// through the chunk would also take the handler goroutine past 8 KB
		// of stack for the rest of the stream (docs/perf.md).
		if out, _, err := jsonscan.AppendUnquote(s.content, rest[1:]); err == nil {
			s.content = out
			return
		}
	}
	if c := gjson.GetBytes(data, s.contentPath); c.Type == gjson.String {
		s.content = append(s.content, c.Str...)
	}
}

func (s *stream) End(dst []byte, fail *apierr.Error) []byte {
	if fail == nil {
		return dst
	}
	return append(dst, SSEError(fail, s.requestID)...)
}

func (s *stream) Usage() proxy.Usage { return s.u.Engine() }
func (s *stream) Content() []byte    { return s.content }

// appendWithoutUsageNull appends data to dst minus the `"usage":null` member
// at data[i:].
func appendWithoutUsageNull(dst, data []byte, i int) []byte {
	j := i + len(usageNull)
	switch {
	case i > 0 && data[i-1] == ',':
		i--
	case j < len(data) && data[j] == ',':
		j++
	}
	return append(append(dst, data[:i]...), data[j:]...)
}
