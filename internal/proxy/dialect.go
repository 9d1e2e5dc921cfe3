package proxy

import (
	"net/http"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/sse"
)

// A Dialect owns one inbound wire format (OpenAI chat/completions/embeddings,
// Anthropic Messages, OpenAI Responses, the /api/chat API). The engine owns
// everything that is the same for all of them: admission, routing, attempts,
// retries, the ledger record and metering. It learns about a request only
// through the Head a dialect parses, and about a response only through the
// Reply a dialect returns, in the manner of httputil.ReverseProxy's hooks.
type Dialect interface {
	// Parse validates the client's request and reads what the engine needs.
	// A refusal is an *apierr.Error (a 400 in the dialect's shape).
	Parse(in *Inbound) (Request, error)
	// WriteError writes a gateway error before any byte of a response was sent.
	WriteError(w http.ResponseWriter, e *apierr.Error, requestID string)
}

// Inbound is the client's request as the engine read it: the body is complete
// and bounded by the engine's limits.
type Inbound struct {
	RequestID string
	Method    string
	Path      string      // the path after /v1, e.g. "/chat/completions"
	Query     string      // raw query, without "?"
	Header    http.Header // during Parse only: the engine drops it after
	Body      []byte
}

// Request is one parsed client request. Its methods are called from the
// request's goroutine only.
type Request interface {
	// Head is what routing, the gate and the ledger read.
	Head() Head
	// PromptTokens estimates the prompt in tokens with estimate (for TPM
	// limits, budget reservations and usage an upstream did not report).
	PromptTokens(estimate func([]byte) int64) int64
	// Outbound builds the upstream request for one attempt at t. It is called
	// once per attempt, so a translation may differ per target.
	Outbound(t Target) (*Outbound, error)
}

// LocalAnswer is implemented by a Request that some targets need not be asked
// about (Anthropic's count_tokens on an upstream that does not speak
// Anthropic): before an attempt at t the engine calls Answer, and when ok is
// true it sends status, body and contentType to the client instead of asking
// the upstream. The request still leaves its ledger row, with no tokens.
type LocalAnswer interface {
	Answer(t Target) (status int, body []byte, contentType string, ok bool)
}

// Head is the part of a request the engine needs, whatever its dialect.
type Head struct {
	Model     string // after the default model was applied
	Stream    bool
	User      string // the end user, for the ledger
	MaxTokens int64  // the completion bound asked for, 0 when absent
	N         int64  // choices asked for; 0 or 1 mean one
	// Metered is false for requests the engine forwards verbatim without
	// routing by model or reading usage (unknown /v1 endpoints, GETs).
	Metered bool
}

// Target is one upstream attempt as a dialect sees it.
type Target struct {
	Upstream string // upstream name
	API      string // what the upstream speaks: "openai" or "anthropic"
	// NativeResponses: the upstream implements /v1/responses itself.
	NativeResponses bool
	Model           string // the model to ask the upstream for
}

// Upstream APIs a Target may speak.
const (
	APIOpenAI    = "openai"
	APIAnthropic = "anthropic"
)

// Outbound is one upstream request and how to read its answer.
type Outbound struct {
	// Path is appended to the upstream's base URL, e.g. "/chat/completions";
	// it carries the query string, if any is to be sent.
	Path string
	Body []byte
	// Header, when set, adjusts the outbound header after the engine built it
	// from the client's (hop-by-hop headers, gateway credentials and cookies
	// removed) and before the upstream's own credentials are set.
	Header func(h http.Header)
	// Verbatim keeps the client's Accept-Encoding: the response is passed
	// through as bytes and its usage is not read from a compressed body.
	Verbatim bool
	Reply    Reply
}

// Reply turns an upstream response into the client's. One Reply serves one
// attempt.
type Reply interface {
	// Error rewrites an upstream error response (status >= 400) in the
	// client's dialect; body holds at most the first 64 KiB. It returns the
	// body and content type to send with the upstream's status (which a
	// dialect may change only through the status it returns).
	Error(status int, h http.Header, body []byte) (outStatus int, out []byte, contentType string)
	// Stream returns the handler of an event-stream success response.
	Stream() Stream
	// Whole reports whether a non-stream success body must be read whole
	// (bounded) and passed to Body; otherwise it is copied through as bytes
	// and its last 16 KiB passed to Tail for the usage.
	Whole() bool
	// Body translates a whole non-stream success body.
	Body(body []byte) (out []byte, contentType string, u Usage, err error)
	// Tail reads the usage from the end of a body copied through.
	Tail(tail []byte) (Usage, []byte)
}

// ReplyHeader is implemented by a Reply that sets response headers of its
// own (a translated stream's Content-Type, Cache-Control) after the
// upstream's were copied.
type ReplyHeader interface {
	ResponseHeader(h http.Header)
}

// Stream translates or taps an upstream event stream one event at a time.
// It is not safe for concurrent use.
type Stream interface {
	// Event appends what the client receives for ev (possibly nothing) to dst.
	// An error ends the stream as broken.
	Event(dst []byte, ev sse.Event) ([]byte, error)
	// End appends the stream's closing events to dst: fail is nil when the
	// upstream ended cleanly, else the reason it broke (the client then gets
	// an error event in its dialect).
	End(dst []byte, fail *apierr.Error) []byte
	// Usage is what the stream reported so far.
	Usage() Usage
	// Content is the generated text seen so far (bounded), for estimating
	// usage when the upstream reported none.
	Content() []byte
}

// Usage is token usage in OpenAI's convention: Prompt counts every input
// token, cache reads (Cached) and cache writes (CacheWrite) included;
// Completion counts every output token, Reasoning included.
type Usage struct {
	Prompt     int64
	Cached     int64
	CacheWrite int64
	Completion int64
	Reasoning  int64
}

// Known reports whether any token count was reported.
func (u Usage) Known() bool { return u.Prompt > 0 || u.Completion > 0 }

// Total is Prompt + Completion.
func (u Usage) Total() int64 { return u.Prompt + u.Completion }
