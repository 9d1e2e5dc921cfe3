// Package openai holds the small part of the OpenAI wire protocol the gateway
// touches: the request head it reads (model, stream, stream_options, user), the
// usage it meters, and the error envelope every gateway error is written in.
//
// Everything else in a request or response passes through as bytes.
package openai

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/tollgate/tollgate/internal/jsonscan"
)

// Head is what the gateway reads from a request body.
type Head struct {
	Model        string
	Stream       bool
	IncludeUsage bool // stream_options.include_usage was true
	User         string
	HasMessages  bool  // "messages" is a non-empty array
	MaxTokens    int64 // max_completion_tokens or max_tokens, 0 when absent
	N            int64 // choices asked for ("n"), 0 when absent
}

// ParseHead reads the request head from a JSON body: one validating scan
// without recursion (depth and member count bounded), then case-insensitive,
// conflict-aware lookups of the fields that decide routing, permissions and
// metering. Upstreams built on Go's encoding/json match field names without
// regard to case, so {"model":"a","MODEL":"b"} would be served as "b" while
// the gateway checked "a": such a body, or a duplicate, is refused with a 400,
// as is a body that is not one JSON object.
func ParseHead(body []byte) (Head, error) {
	var h Head
	obj, err := jsonscan.Scan(body, jsonscan.Options{MaxDepth: MaxDepth})
	if err != nil {
		return h, jsonError(err, "")
	}
	str := func(name string, dst *string) error {
		raw, ok, err := obj.Field(name)
		if err == nil && ok && !jsonscan.IsNull(raw) {
			*dst, err = jsonscan.String(raw)
		}
		return jsonError(err, name)
	}
	num := func(name string, dst *int64) error {
		raw, ok, err := obj.Field(name)
		if err == nil && ok && !jsonscan.IsNull(raw) {
			if *dst, err = jsonscan.Int64(raw); err == nil && *dst < 0 {
				return &Error{Status: 400, Type: TypeInvalidRequest, Code: "invalid_value", Param: name,
					Message: "'" + name + "' must not be negative"}
			}
		}
		return jsonError(err, name)
	}
	var maxTokens, maxCompletion int64
	errs := []error{
		str("model", &h.Model), str("user", &h.User),
		num("max_tokens", &maxTokens), num("max_completion_tokens", &maxCompletion), num("n", &h.N),
	}
	if raw, ok, err := obj.Field("stream"); err != nil || (ok && !jsonscan.IsNull(raw)) {
		if err == nil {
			h.Stream, err = jsonscan.Bool(raw)
		}
		errs = append(errs, jsonError(err, "stream"))
	}
	if raw, ok, err := obj.Field("stream_options"); err != nil || (ok && !jsonscan.IsNull(raw)) {
		if err == nil {
			var opts jsonscan.Object
			if opts, err = jsonscan.Scan(raw, jsonscan.Options{MaxDepth: MaxDepth - 1}); err == nil {
				var iu []byte
				if iu, ok, err = opts.Field("include_usage"); err == nil && ok && !jsonscan.IsNull(iu) {
					h.IncludeUsage, err = jsonscan.Bool(iu)
				}
			}
		}
		errs = append(errs, jsonError(err, "stream_options"))
	}
	if raw, ok, err := obj.Field("messages"); err != nil {
		errs = append(errs, jsonError(err, "messages"))
	} else if ok {
		h.HasMessages = nonEmptyArray(raw)
	}
	for _, err := range errs {
		if err != nil {
			return Head{}, err
		}
	}
	h.MaxTokens = maxCompletion
	if h.MaxTokens == 0 {
		h.MaxTokens = maxTokens
	}
	return h, nil
}

// MaxDepth bounds the nesting of a request body (objects and arrays).
const MaxDepth = 128

// jsonError turns a scan or lookup failure into the client's 400.
func jsonError(err error, field string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	e := &Error{Status: 400, Type: TypeInvalidRequest, Code: "invalid_json", Param: field}
	switch {
	case errors.Is(err, jsonscan.ErrTooDeep):
		e.Code, e.Message = "json_too_deep", fmt.Sprintf("the request body nests deeper than %d levels", MaxDepth)
	case errors.Is(err, jsonscan.ErrDuplicate):
		e.Code, e.Message = "duplicate_field", "'"+field+"' appears more than once (names are matched without regard to case): "+msg
	case errors.Is(err, jsonscan.ErrType):
		e.Code, e.Message = "invalid_type", "'"+field+"' has the wrong type: "+msg
	default:
		e.Message = "the request body is not a valid JSON object: " + msg
	}
	return e
}

// nonEmptyArray reports whether raw is an array with at least one element.
func nonEmptyArray(raw []byte) bool {
	b := bytes.TrimSpace(raw)
	if len(b) < 2 || b[0] != '[' {
		return false
	}
	inner := bytes.TrimSpace(b[1:])
	return len(inner) > 0 && inner[0] != ']'
}

// SetModel returns body with "model" set to model.
func SetModel(body []byte, model string) ([]byte, error) {
	return sjson.SetBytes(body, "model", model)
}

// SetIncludeUsage returns body with stream_options.include_usage set to true,
// so a stream ends with a usage chunk the gateway can meter.
func SetIncludeUsage(body []byte) ([]byte, error) {
	return sjson.SetBytes(body, "stream_options.include_usage", true)
}

// Usage is token usage as reported by an upstream, normalised: cached and
// reasoning tokens are parts of prompt and completion tokens respectively.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	CachedTokens     int64 // cache reads, part of PromptTokens
	CacheWriteTokens int64 // cache writes, part of PromptTokens
	ReasoningTokens  int64
}

// Known reports whether any token count was reported.
func (u Usage) Known() bool { return u.PromptTokens > 0 || u.CompletionTokens > 0 || u.TotalTokens > 0 }

// ParseUsage reads the "usage" object of a response or chunk. Providers name
// cached tokens differently; all known spellings are folded into CachedTokens.
func ParseUsage(u gjson.Result) Usage {
	if !u.IsObject() {
		return Usage{}
	}
	var out Usage
	u.ForEach(func(k, v gjson.Result) bool {
		foldUsage(&out, k.Str, gjsonValue(v))
		return true
	})
	return out.withTotal()
}

// usageValue is a member's value in a usage object, as a reader sees it.
type usageValue[V any] interface {
	// count is the value as a token count; false when the reader cannot
	// tell what it is.
	count() (int64, bool)
	// member is the first member name of the value (an object): found
	// false when it has none, ok false when the reader cannot tell.
	member(name string) (v V, found, ok bool)
}

// foldUsage applies one member of a usage object to u, for ParseUsage and
// parseUsageFast alike; false when v could not be read.
func foldUsage[V usageValue[V]](u *Usage, key string, v V) bool {
	switch key {
	case "prompt_tokens", "input_tokens":
		return setCount(&u.PromptTokens, v)
	case "completion_tokens", "output_tokens":
		return setCount(&u.CompletionTokens, v)
	case "total_tokens":
		return setCount(&u.TotalTokens, v)
	case "prompt_tokens_details", "input_tokens_details":
		return setMember(&u.CachedTokens, v, "cached_tokens") &&
			setMember(&u.CacheWriteTokens, v, "cache_write_tokens") // OpenRouter
	case "cache_creation_input_tokens": // Anthropic-style counts on an OpenAI response
		if u.CacheWriteTokens == 0 {
			return setCount(&u.CacheWriteTokens, v)
		}
	case "prompt_cache_hit_tokens": // DeepSeek
		if u.CachedTokens == 0 {
			return setCount(&u.CachedTokens, v)
		}
	case "completion_tokens_details", "output_tokens_details":
		u.ReasoningTokens = 0 // a details object without it says none
		return setMember(&u.ReasoningTokens, v, "reasoning_tokens")
	}
	return true
}

func setCount[V usageValue[V]](dst *int64, v V) bool {
	n, ok := v.count()
	*dst = n
	return ok
}

// setMember sets *dst from v's member name, when v has one.
func setMember[V usageValue[V]](dst *int64, v V, name string) bool {
	m, found, ok := v.member(name)
	if !ok || !found {
		return ok
	}
	return setCount(dst, m)
}

// withTotal fills in TotalTokens when the upstream left it out.
func (u Usage) withTotal() Usage {
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u
}

// gjsonValue reads a member's value with gjson's conversions.
type gjsonValue gjson.Result

func (v gjsonValue) count() (int64, bool) { return gjson.Result(v).Int(), true }

func (v gjsonValue) member(name string) (gjsonValue, bool, bool) {
	m := gjson.Result(v).Get(name)
	return gjsonValue(m), m.Exists(), true
}

// UsageFromBody finds the "usage" object of a complete JSON response.
func UsageFromBody(body []byte) Usage {
	return ParseUsage(gjson.GetBytes(body, "usage"))
}

// UsageFromTail finds the last "usage" object in the tail of a response body
// that may have been cut at the front. OpenAI puts usage last, so keeping a
// bounded tail while streaming a large body through is enough to meter it.
func UsageFromTail(tail []byte) Usage {
	i := bytes.LastIndex(tail, []byte(`"usage"`))
	if i < 0 {
		return Usage{}
	}
	// Parse the value after `"usage":` in place: gjson reads only the first
	// value of what it is given, and nothing it returns outlives this call,
	// so the tail is viewed as a string without a copy.
	j := i + len(`"usage"`)
	for j < len(tail) && isSpace(tail[j]) {
		j++
	}
	if j == len(tail) || tail[j] != ':' {
		return Usage{}
	}
	for j++; j < len(tail) && isSpace(tail[j]); j++ {
	}
	if j == len(tail) || tail[j] != '{' {
		return Usage{}
	}
	if u, ok := parseUsageFast(tail[j:]); ok {
		return u
	}
	return ParseUsage(gjson.Parse(unsafe.String(&tail[j], len(tail)-j)))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
