package responses

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

// bridgeReply reads a chat completions answer and writes a Response.
type bridgeReply struct {
	r     *request
	model string
}

var _ proxy.Reply = (*bridgeReply)(nil)

func (br *bridgeReply) Error(status int, h http.Header, body []byte) (int, []byte, string) {
	return upstreamError(status, h, body)
}

func (br *bridgeReply) Stream() proxy.Stream {
	d := br.r.d
	return &bridge{meta: br.r.meta(br.model), names: &br.r.names, log: d.log, limit: d.opts.MaxOutputBytes, now: d.opts.Now, open: -1}
}

func (br *bridgeReply) Whole() bool { return true }

// Tail is not used: the bridge reads whole bodies.
func (br *bridgeReply) Tail([]byte) (proxy.Usage, []byte) { return proxy.Usage{}, nil }

// errNotCompletion is returned for a success body that is no chat completion.
var errNotCompletion = errors.New("the upstream's answer is not a chat completion")

// Body translates a whole chat completion into a Response.
func (br *bridgeReply) Body(body []byte) ([]byte, string, proxy.Usage, error) {
	if len(body) == 0 || !gjson.ValidBytes(body) {
		return nil, "", proxy.Usage{}, errNotCompletion
	}
	doc := gjson.Parse(unsafe.String(&body[0], len(body)))
	u := toUsage(openai.ParseUsage(doc.Get("usage")))
	m := br.r.meta(br.model)
	if e := doc.Get("error"); e.Exists() && e.Type != gjson.Null {
		out := upstreamFailure(e)
		out.usage = &u
		return m.appendResponse(nil, nil, out), "application/json", u, nil
	}
	choice := doc.Get("choices.0")
	if !choice.Exists() {
		return nil, "", u, errNotCompletion
	}
	msg := choice.Get("message")
	status := "completed"
	end := outcome{status: "completed", completed: br.r.d.opts.Now().Unix(), usage: &u}
	switch choice.Get("finish_reason").String() {
	case "length":
		end, status = outcome{status: "incomplete", reason: "max_output_tokens", usage: &u}, "incomplete"
	case "content_filter":
		end, status = outcome{status: "incomplete", reason: "content_filter", usage: &u}, "incomplete"
	}
	var items []item
	id := func(prefix string) string { return prefix + m.id[len("resp_"):] + "_" + strconv.Itoa(len(items)) }
	if s := reasoningText(msg); s != "" {
		items = append(items, item{kind: kindReasoning, id: id("rs_"), text: []byte(s), status: status})
	}
	text := msg.Get("content").String() + msg.Get("refusal").String()
	if text != "" {
		items = append(items, item{kind: kindMessage, id: id("msg_"), text: []byte(text), status: status})
	}
	msg.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
		ns, name, kind := br.r.names.resolve(tc.Get("function.name").String())
		args := tc.Get("function.arguments")
		a := args.Str
		if args.Type == gjson.JSON {
			a = args.Raw
		}
		if a == "" {
			a = "{}"
		}
		it := item{kind: kind, callID: tc.Get("id").String(), name: name, namespace: ns, text: []byte(a), status: status}
		if it.callID == "" {
			it.callID = "call_" + m.id[len("resp_"):] + "_" + strconv.Itoa(len(items))
		}
		it.id = id("fc_")
		if kind == kindCustom {
			it.id = id("ctc_")
		}
		items = append(items, it)
		return true
	})
	if len(items) == 0 && status == "completed" {
		// An empty answer is still a message, as the Responses API shows it.
		items = append(items, item{kind: kindMessage, id: id("msg_"), status: status})
	}
	return m.appendResponse(make([]byte, 0, 1024+len(body)), items, &end), "application/json", u, nil
}

// nativeReply passes a native /v1/responses answer through and meters it.
type nativeReply struct {
	r     *request
	model string
}

var _ proxy.Reply = (*nativeReply)(nil)

func (nr *nativeReply) Error(status int, h http.Header, body []byte) (int, []byte, string) {
	return upstreamError(status, h, body)
}

func (nr *nativeReply) Stream() proxy.Stream {
	return &nativeStream{meta: nr.r.meta(nr.model), limit: nativeContentLimit}
}

func (nr *nativeReply) Whole() bool { return false }

func (nr *nativeReply) Body(body []byte) ([]byte, string, proxy.Usage, error) {
	return body, "application/json", toUsage(openai.UsageFromBody(body)), nil
}

// Tail reads the usage a Response carries near its end.
func (nr *nativeReply) Tail(tail []byte) (proxy.Usage, []byte) {
	return toUsage(openai.UsageFromTail(tail)), nil
}

// nativeContentLimit bounds the text a native stream keeps for estimating
// usage when the upstream reports none.
const nativeContentLimit = 1 << 20

// nativeStream passes a native Responses event stream through unchanged,
// reading usage from its terminal event. A stream that ends without one
// (the upstream broke or closed early) gets a response.failed, so a client
// always sees a terminal event.
type nativeStream struct {
	meta
	limit    int
	usage    proxy.Usage
	content  []byte
	lastSeq  int64
	terminal bool
}

var _ proxy.Stream = (*nativeStream)(nil)

func (ns *nativeStream) Event(dst []byte, ev sse.Event) ([]byte, error) {
	dst = append(dst, ev.Raw...)
	if !ev.Dispatch || len(ev.Data) == 0 || ev.Data[0] != '{' {
		return dst, nil
	}
	data := unsafe.String(&ev.Data[0], len(ev.Data))
	res := gjson.GetMany(data, "type", "sequence_number")
	if res[1].Exists() {
		ns.lastSeq = res[1].Int()
	}
	switch typ := res[0].Str; typ {
	case "response.output_text.delta":
		if d := gjson.Get(data, "delta").Str; len(ns.content)+len(d) <= ns.limit {
			ns.content = append(ns.content, d...)
		}
	case "response.created":
		if id := gjson.Get(data, "response.id"); id.Type == gjson.String {
			ns.id = strings.Clone(id.Str) // data aliases the reader's buffer
		}
	case "response.completed", "response.incomplete", "response.failed", "error":
		ns.terminal = true
		if u := gjson.Get(data, "response.usage"); u.IsObject() {
			ns.usage = toUsage(openai.ParseUsage(u))
		}
	}
	return dst, nil
}

func (ns *nativeStream) End(dst []byte, fail *apierr.Error) []byte {
	if ns.terminal {
		return dst
	}
	ns.terminal = true
	out := outcome{status: "failed", errCode: "server_error", errMessage: "the upstream ended the stream without a terminal event", usage: &ns.usage}
	if fail != nil {
		out.errMessage = fail.Message
		if fail.Code != "" {
			out.errCode = fail.Code
		}
	}
	dst = append(dst, "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":"...)
	dst = appendInt(dst, ns.lastSeq+1)
	dst = append(dst, `,"response":`...)
	dst = ns.appendResponse(dst, nil, &out)
	return append(dst, "}\n\n"...)
}

func (ns *nativeStream) Usage() proxy.Usage { return ns.usage }
func (ns *nativeStream) Content() []byte    { return ns.content }
