package responses

import (
	"net/http"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
)

// request is one parsed Responses request.
type request struct {
	d    *Dialect
	in   *proxy.Inbound
	f    fields
	head proxy.Head

	// The translation is the same for every bridged attempt but the model,
	// so it is built once.
	chat   *chatRequest
	names  toolNames
	chatEr *apierr.Error
}

var _ proxy.Request = (*request)(nil)

func (r *request) Head() proxy.Head { return r.head }

// PromptTokens estimates the instructions and the input: the text of each
// item, plus a few tokens of framing per item.
func (r *request) PromptTokens(estimate func([]byte) int64) int64 {
	n := estimate([]byte(r.f.instructions.Str))
	in := r.f.input
	if in.Type == gjson.String {
		return n + estimate([]byte(in.Str))
	}
	in.ForEach(func(_, it gjson.Result) bool {
		n += 4
		m := readMembers(it)
		for _, v := range [...]gjson.Result{m.content, m.output, m.arguments, m.input} {
			if v.Exists() {
				n += estimate([]byte(v.Raw))
				break
			}
		}
		return true
	})
	return n
}

// Outbound builds the upstream request for one attempt at t.
func (r *request) Outbound(t proxy.Target) (*proxy.Outbound, error) {
	model := t.Model
	if model == "" {
		model = r.head.Model
	}
	if t.NativeResponses {
		body := r.in.Body
		if model != r.head.Model {
			var err error
			if body, err = sjson.SetBytes(body, "model", model); err != nil {
				return nil, apierr.BadRequest("invalid_json", "cannot set the model of the request body")
			}
		}
		return &proxy.Outbound{Path: "/responses", Body: body, Reply: &nativeReply{r: r, model: model}}, nil
	}
	if e := r.f.stateful(); e != nil {
		return nil, e
	}
	if t.API != "" && t.API != proxy.APIOpenAI {
		return nil, apierr.New(http.StatusBadGateway, apierr.Upstream, "unsupported_upstream",
			"upstream "+quote(t.Upstream)+" speaks the "+t.API+" API; /v1/responses is bridged only to chat completions upstreams")
	}
	if r.chat == nil && r.chatEr == nil {
		r.chat, r.chatEr = translate(&r.f, &r.names, r.d.log)
	}
	if r.chatEr != nil {
		return nil, r.chatEr
	}
	body, err := r.chat.marshal(model)
	if err != nil {
		return nil, apierr.BadRequest("invalid_input", "the request cannot be translated to a chat completion: "+err.Error())
	}
	return &proxy.Outbound{Path: "/chat/completions", Body: body, Reply: &bridgeReply{r: r, model: model}}, nil
}

// meta starts the Response of one attempt. Its id is the gateway's request
// id when there is one, so a client can quote it against the ledger.
func (r *request) meta(model string) meta {
	if r.head.Model != "" {
		model = r.head.Model // the client's name, not the upstream's
	}
	id := r.in.RequestID
	if id == "" || r.d.opts.NewID != nil || !validID(id) {
		id = r.d.newID()
	}
	return meta{id: "resp_" + id, model: model, created: r.d.opts.Now().Unix(), echo: r.f.echo()}
}

func validID(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return len(s) <= 64
}

// upstreamError is the body sent to the client for an upstream error: the
// upstream's own body when it is OpenAI's error envelope (a chat upstream's
// errors are in the same shape as the Responses API's), else an envelope
// saying what came back.
func upstreamError(status int, h http.Header, body []byte) (int, []byte, string) {
	if e := gjson.GetBytes(body, "error"); e.IsObject() && gjson.ValidBytes(body) {
		return status, body, "application/json"
	}
	msg := "the upstream answered " + http.StatusText(status)
	if status < 500 {
		if e := gjson.GetBytes(body, "error"); e.Type == gjson.String && e.Str != "" {
			msg += ": " + e.Str
		} else if m := gjson.GetBytes(body, "message"); m.Type == gjson.String && m.Str != "" {
			msg += ": " + m.Str
		}
	}
	typ := apierr.Upstream
	if status < 500 {
		typ = apierr.InvalidRequest
	}
	return status, openai.Marshal(apierr.New(status, typ, "", msg), ""), "application/json"
}
