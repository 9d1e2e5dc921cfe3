package responses

import (
	"github.com/tollgate/tollgate/internal/proxy"
)

// echo holds the request fields a Response object repeats, as raw JSON
// taken from the client's body ("" when absent).
type echo struct {
	instructions, maxOutputTokens, parallelToolCalls, temperature, topP string
	toolChoice, tools, text, effort, summary, user, metadata            string
	promptCacheKey, safetyIdentifier, serviceTier                       string
}

// Item kinds of a Response's output.
const (
	kindMessage = iota
	kindReasoning
	kindFunction
	kindCustom
)

// item is one output item. Its text is what the final events repeat: the
// message text, the reasoning text or the call's arguments (a custom tool's
// arguments before its input is extracted).
type item struct {
	kind      int
	id        string
	callID    string
	name      string
	namespace string
	text      []byte
	status    string // in_progress, completed or incomplete
	added     bool   // output_item.added was sent (streams only)
	flat      string // a call's name as the upstream spelled it, until added
}

// meta is what every Response object of one response carries.
type meta struct {
	id      string
	model   string
	created int64
	echo    *echo
}

// outcome is how a response ended.
type outcome struct {
	status     string // completed, incomplete or failed
	reason     string // incomplete_details.reason
	errCode    string // error.code when failed
	errMessage string
	completed  int64 // completed_at, unix seconds
	usage      *proxy.Usage
}

// appendResponse appends the Response object. output appends the items of
// its output array; end is nil while the response is in progress.
func (m *meta) appendResponse(b []byte, items []item, end *outcome) []byte {
	e := m.echo
	status := "in_progress"
	if end != nil {
		status = end.status
	}
	b = append(b, `{"id":`...)
	b = appendString(b, m.id)
	b = append(b, `,"object":"response","created_at":`...)
	b = appendInt(b, m.created)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, `","background":false,"error":`...)
	if end != nil && end.status == "failed" {
		b = append(b, `{"code":`...)
		b = appendString(b, end.errCode)
		b = append(b, `,"message":`...)
		b = appendString(b, end.errMessage)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"incomplete_details":`...)
	if end != nil && end.status == "incomplete" {
		b = append(b, `{"reason":`...)
		b = appendString(b, end.reason)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"instructions":`...)
	b = appendRawOr(b, e.instructions, "null")
	b = append(b, `,"max_output_tokens":`...)
	b = appendRawOr(b, e.maxOutputTokens, "null")
	b = append(b, `,"metadata":`...)
	b = appendRawOr(b, e.metadata, "{}")
	b = append(b, `,"model":`...)
	b = appendString(b, m.model)
	b = append(b, `,"output":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendItem(b, &items[i])
	}
	b = append(b, `],"parallel_tool_calls":`...)
	b = appendRawOr(b, e.parallelToolCalls, "true")
	b = append(b, `,"previous_response_id":null,"prompt_cache_key":`...)
	b = appendRawOr(b, e.promptCacheKey, "null")
	b = append(b, `,"reasoning":{"effort":`...)
	b = appendRawOr(b, e.effort, "null")
	b = append(b, `,"summary":`...)
	b = appendRawOr(b, e.summary, "null")
	b = append(b, `},"safety_identifier":`...)
	b = appendRawOr(b, e.safetyIdentifier, "null")
	b = append(b, `,"service_tier":`...)
	b = appendRawOr(b, e.serviceTier, `"default"`)
	b = append(b, `,"store":false,"temperature":`...)
	b = appendRawOr(b, e.temperature, "1")
	b = append(b, `,"text":`...)
	b = appendRawOr(b, e.text, `{"format":{"type":"text"}}`)
	b = append(b, `,"tool_choice":`...)
	b = appendRawOr(b, e.toolChoice, `"auto"`)
	b = append(b, `,"tools":`...)
	b = appendRawOr(b, e.tools, "[]")
	b = append(b, `,"top_p":`...)
	b = appendRawOr(b, e.topP, "1")
	b = append(b, `,"truncation":"disabled","usage":`...)
	if end != nil && end.usage != nil {
		b = appendUsage(b, end.usage)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"user":`...)
	b = appendRawOr(b, e.user, "null")
	if end != nil && end.status == "completed" {
		b = append(b, `,"completed_at":`...)
		b = appendInt(b, end.completed)
	}
	return append(b, '}')
}

// appendUsage appends u in the Responses API's shape.
func appendUsage(b []byte, u *proxy.Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.Prompt)
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.Cached)
	b = append(b, `},"output_tokens":`...)
	b = appendInt(b, u.Completion)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, u.Reasoning)
	b = append(b, `},"total_tokens":`...)
	b = appendInt(b, u.Total())
	return append(b, '}')
}

// appendItem appends one output item as the Responses API shows it.
func appendItem(b []byte, it *item) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, it.id)
	switch it.kind {
	case kindMessage:
		b = append(b, `,"type":"message","status":"`...)
		b = append(b, it.status...)
		b = append(b, `","role":"assistant","content":[`...)
		if it.status != "in_progress" {
			b = appendTextPart(b, it.text)
		}
		return append(b, "]}"...)
	case kindReasoning:
		b = append(b, `,"type":"reasoning","status":"`...)
		b = append(b, it.status...)
		b = append(b, `","summary":[],"content":[`...)
		if it.status != "in_progress" {
			b = appendReasoningPart(b, it.text)
		}
		return append(b, "]}"...)
	case kindCustom:
		b = append(b, `,"type":"custom_tool_call","status":"`...)
		b = append(b, it.status...)
		b = append(b, `","call_id":`...)
		b = appendString(b, it.callID)
		b = append(b, `,"input":`...)
		if it.status == "in_progress" {
			b = append(b, `""`...)
		} else {
			b = appendString(b, customInput(it.text))
		}
	default:
		b = append(b, `,"type":"function_call","status":"`...)
		b = append(b, it.status...)
		b = append(b, `","arguments":`...)
		if it.status == "in_progress" {
			b = append(b, `""`...)
		} else {
			b = appendString(b, it.text)
		}
		b = append(b, `,"call_id":`...)
		b = appendString(b, it.callID)
	}
	b = append(b, `,"name":`...)
	b = appendString(b, it.name)
	if it.namespace != "" {
		b = append(b, `,"namespace":`...)
		b = appendString(b, it.namespace)
	}
	return append(b, '}')
}

func appendTextPart(b, text []byte) []byte {
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":`...)
	b = appendString(b, text)
	return append(b, '}')
}

func appendReasoningPart(b, text []byte) []byte {
	b = append(b, `{"type":"reasoning_text","text":`...)
	b = appendString(b, text)
	return append(b, '}')
}
