package responses

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

func TestWholeBody(t *testing.T) {
	tests := []struct {
		name, chat, want string
		usage            proxy.Usage
	}{
		{"text", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":1}}}`,
			`{"status":"completed","incomplete_details":null,"error":null,"output":[{"id":"msg_test_0","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Hi"}]}],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":8},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":12}}`,
			proxy.Usage{Prompt: 10, Cached: 8, Completion: 2, Reasoning: 1}},
		{"calls", `{"choices":[{"message":{"content":null,"reasoning_content":"hmm","tool_calls":[{"id":"c1","type":"function","function":{"name":"crm__lookup","arguments":"{\"id\":1}"}},{"id":"c2","type":"function","function":{"name":"apply_patch","arguments":"{\"input\":\"P\"}"}},{"type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}`,
			`{"status":"completed","incomplete_details":null,"error":null,"output":[
			 {"id":"rs_test_0","type":"reasoning","status":"completed","summary":[],"content":[{"type":"reasoning_text","text":"hmm"}]},
			 {"id":"fc_test_1","type":"function_call","status":"completed","arguments":"{\"id\":1}","call_id":"c1","name":"lookup","namespace":"crm"},
			 {"id":"ctc_test_2","type":"custom_tool_call","status":"completed","call_id":"c2","input":"P","name":"apply_patch"},
			 {"id":"fc_test_3","type":"function_call","status":"completed","arguments":"{}","call_id":"call_test_3","name":"get_weather"}],
			 "usage":{"input_tokens":3,"input_tokens_details":{"cached_tokens":0},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":7}}`,
			proxy.Usage{Prompt: 3, Completion: 4}},
		{"length", `{"choices":[{"message":{"content":"abc"},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`,
			`{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"error":null,"output":[{"id":"msg_test_0","type":"message","status":"incomplete","role":"assistant","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"abc"}]}],"usage":{"input_tokens":1,"input_tokens_details":{"cached_tokens":0},"output_tokens":1,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":2}}`,
			proxy.Usage{Prompt: 1, Completion: 1}},
		{"error in a 200", `{"error":{"message":"overloaded","code":"overloaded"}}`,
			`{"status":"failed","incomplete_details":null,"error":{"code":"overloaded","message":"overloaded"},"output":[],"usage":{"input_tokens":0,"input_tokens_details":{"cached_tokens":0},"output_tokens":0,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":0}}`,
			proxy.Usage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ob := outbound(t, testDialect(), strings.Replace(goldenRequest, `"stream":true`, `"stream":false`, 1), chatTarget)
			if !ob.Reply.Whole() {
				t.Fatal("the bridge must read whole bodies")
			}
			out, ct, u, err := ob.Reply.Body([]byte(tt.chat))
			if err != nil || ct != "application/json" {
				t.Fatalf("Body: %v %q", err, ct)
			}
			if u != tt.usage {
				t.Errorf("usage %+v, want %+v", u, tt.usage)
			}
			doc := gjson.ParseBytes(out)
			if doc.Get("id").Str != "resp_test" || doc.Get("object").Str != "response" || doc.Get("model").Str != "gpt-test" || doc.Get("store").Type != gjson.False {
				t.Errorf("head of the Response: %s", out)
			}
			var got bytes.Buffer
			got.WriteByte('{')
			for i, k := range []string{"status", "incomplete_details", "error", "output", "usage"} {
				if i > 0 {
					got.WriteByte(',')
				}
				got.WriteString(`"` + k + `":` + doc.Get(k).Raw)
			}
			got.WriteByte('}')
			jsonEqual(t, got.Bytes(), []byte(tt.want))
		})
	}
	_, ob := outbound(t, testDialect(), `{"model":"m","input":"x"}`, chatTarget)
	if _, _, _, err := ob.Reply.Body([]byte(`{"object":"list"}`)); err == nil {
		t.Error("a body without choices must be an error")
	}
}

func TestUpstreamErrors(t *testing.T) {
	tests := []struct {
		status         int
		body, wantBody string
	}{
		{429, `{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit"}}`, `{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit"}}`},
		{502, `<html>bad gateway</html>`, `{"error":{"message":"the upstream answered Bad Gateway","type":"upstream_error","param":null,"code":null}}`},
		{400, `{"error":"model is required"}`, `{"error":{"message":"the upstream answered Bad Request: model is required","type":"invalid_request_error","param":null,"code":null}}`},
	}
	for _, native := range []bool{false, true} {
		for _, tt := range tests {
			_, ob := outbound(t, testDialect(), `{"model":"m","input":"x"}`, proxy.Target{API: proxy.APIOpenAI, NativeResponses: native})
			st, body, ct := ob.Reply.Error(tt.status, http.Header{}, []byte(tt.body))
			if st != tt.status || ct != "application/json" {
				t.Errorf("Error(%d) = %d %q", tt.status, st, ct)
			}
			jsonEqual(t, body, []byte(tt.wantBody))
		}
	}
}

func TestNativeStream(t *testing.T) {
	upstream := "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_up\"}}\n\n" +
		": ping\n\n" +
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"Hi\"}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_up\",\"usage\":{\"input_tokens\":7,\"input_tokens_details\":{\"cached_tokens\":5},\"output_tokens\":2,\"output_tokens_details\":{\"reasoning_tokens\":1},\"total_tokens\":9}}}\n\n"
	_, ob := outbound(t, testDialect(), `{"model":"m","input":"x","stream":true}`, proxy.Target{NativeResponses: true})
	st := ob.Reply.Stream()
	got := runStream(st, []byte(upstream), nil)
	if string(got) != upstream {
		t.Errorf("native stream changed:\n%s", got)
	}
	if st.Usage() != (proxy.Usage{Prompt: 7, Cached: 5, Completion: 2, Reasoning: 1}) || string(st.Content()) != "Hi" {
		t.Errorf("usage %+v content %q", st.Usage(), st.Content())
	}

	// Cut before the terminal event: the client still gets one.
	cut := upstream[:strings.Index(upstream, "event: response.completed")]
	st = ob.Reply.Stream()
	got = runStream(st, []byte(cut), &apierr.Error{Status: 502, Code: "upstream_broken", Message: "the upstream connection broke"})
	last := lastEvent(got)
	if !strings.HasPrefix(last, "event: response.failed\n") || !strings.Contains(last, `"sequence_number":2,`) ||
		!strings.Contains(last, `"id":"resp_up"`) || !strings.Contains(last, `"message":"the upstream connection broke"`) {
		t.Errorf("last event after a cut: %s", last)
	}
}

// TestMemoryBound checks that a bridged stream keeps at most MaxOutputBytes
// and then ends with response.failed.
func TestMemoryBound(t *testing.T) {
	d := New(Options{MaxOutputBytes: 1000, NewID: func() string { return "x" }})
	_, ob := outbound(t, d, `{"model":"m","input":"x","stream":true}`, chatTarget)
	st := ob.Reply.Stream()
	chunk := `{"choices":[{"index":0,"delta":{"content":"` + strings.Repeat("a", 100) + `"}}]}`
	var out []byte
	for range 50 {
		out, _ = st.Event(out, sse.Event{Dispatch: true, Data: []byte(chunk)})
	}
	out = st.End(out, nil)
	if err := checkTranscript(out); err != nil {
		t.Fatal(err)
	}
	if last := lastEvent(out); !strings.Contains(last, `"code":"output_too_large"`) {
		t.Errorf("last event: %.300s", last)
	}
	if n := len(st.Content()); n > 1000 {
		t.Errorf("kept %d bytes, bound 1000", n)
	}
	if c := strings.Count(string(out), "response.output_text.delta\n"); c != 10 {
		t.Errorf("%d deltas sent before the bound, want 10", c)
	}
}
