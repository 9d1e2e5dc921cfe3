package responses

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
)

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("JSON differs (-want +got):\n%s\ngot: %s", d, got)
	}
}

func TestTranslateCodexRequest(t *testing.T) {
	body, err := os.ReadFile("testdata/translate/codex.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/translate/codex.chat.json")
	if err != nil {
		t.Fatal(err)
	}
	req, out := outbound(t, testDialect(), string(body), proxy.Target{API: proxy.APIOpenAI, Model: "upstream-model"})
	if out.Path != "/chat/completions" {
		t.Errorf("Path = %q", out.Path)
	}
	if out.Header != nil || out.Verbatim {
		t.Error("the bridge should keep the engine's headers (session headers pass) and read usage")
	}
	jsonEqual(t, out.Body, want)
	h := req.Head()
	if h != (proxy.Head{Model: "gpt-5-codex", Stream: true, User: "u1", MaxTokens: 100, N: 1, Metered: true}) {
		t.Errorf("Head = %+v", h)
	}
	// A second attempt at another model translates the same way.
	out2, err := req.Outbound(proxy.Target{API: proxy.APIOpenAI, Model: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Replace(string(out2.Body), `"other"`, `"upstream-model"`, 1); got != string(out.Body) {
		t.Errorf("second attempt differs beyond the model:\n%s\n%s", out2.Body, out.Body)
	}
}

func TestTranslateSmall(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"string input", `{"model":"m","input":"hi"}`,
			`{"model":"m","messages":[{"role":"user","content":"hi"}]}`},
		{"no tools keeps no tool_choice", `{"model":"m","input":"hi","tools":[{"type":"web_search"}],"tool_choice":"required","parallel_tool_calls":true}`,
			`{"model":"m","messages":[{"role":"user","content":"hi"}]}`},
		{"json_object and allowed_tools", `{"model":"m","input":"hi","text":{"format":{"type":"json_object"}},"tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"allowed_tools","mode":"required","tools":[]}}`,
			`{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","response_format":{"type":"json_object"}}`},
		{"safety_identifier is the user only in the ledger", `{"model":"m","input":"hi","safety_identifier":"s","store":false}`,
			`{"model":"m","messages":[{"role":"user","content":"hi"}]}`},
		{"long namespaced names stay valid", `{"model":"m","input":"hi","tools":[{"type":"namespace","name":"mcp__a.b","tools":[{"type":"function","name":"` + strings.Repeat("x", 70) + `"}]}]}`,
			`{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"mcp__a_b__` + strings.Repeat("x", 45) + `_d4526d9e"}}]}`},
		{"file and audio parts", `{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_data":"ZGF0YQ==","filename":"a.pdf"},{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}]}`,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"ZGF0YQ==","filename":"a.pdf"}},{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out := outbound(t, testDialect(), tt.body, proxy.Target{API: proxy.APIOpenAI, Model: "m"})
			jsonEqual(t, out.Body, []byte(tt.want))
		})
	}
}

func TestOutboundRefusals(t *testing.T) {
	tests := []struct {
		name, body, param string
		target            proxy.Target
		status            int
	}{
		{"store true", `{"model":"m","input":"hi","store":true}`, "store", chatTarget, 400},
		{"previous response", `{"model":"m","input":"hi","previous_response_id":"resp_1"}`, "previous_response_id", chatTarget, 400},
		{"conversation", `{"model":"m","input":"hi","conversation":"conv_1"}`, "conversation", chatTarget, 400},
		{"background", `{"model":"m","input":"hi","background":true}`, "background", chatTarget, 400},
		{"prompt template", `{"model":"m","prompt":{"id":"pmpt_1"}}`, "prompt", chatTarget, 400},
		{"item reference", `{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`, "input", chatTarget, 400},
		{"no input", `{"model":"m"}`, "input", chatTarget, 400},
		{"bad role", `{"model":"m","input":[{"role":"tool","content":"x"}]}`, "input", chatTarget, 400},
		{"image by file id", `{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}]}`, "input", chatTarget, 400},
		{"anthropic upstream", `{"model":"m","input":"hi"}`, "", proxy.Target{Upstream: "claude", API: proxy.APIAnthropic}, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := testDialect().Parse(&proxy.Inbound{Body: []byte(tt.body)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = req.Outbound(tt.target)
			var e *apierr.Error
			if !errors.As(err, &e) {
				t.Fatalf("Outbound error = %v, want an *apierr.Error", err)
			}
			if e.Status != tt.status || e.Param != tt.param || e.Message == "" {
				t.Errorf("error = %+v", e)
			}
		})
	}
}

func TestNativePassthrough(t *testing.T) {
	body := `{"model":"gpt-5","input":"hi","store":true,"previous_response_id":"resp_1",  "x":1}`
	d := testDialect()
	req, err := d.Parse(&proxy.Inbound{Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := req.Outbound(proxy.Target{NativeResponses: true, API: proxy.APIOpenAI, Model: "gpt-5"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Path != "/responses" || string(out.Body) != body {
		t.Errorf("native attempt = %q %s; want the body byte for byte", out.Path, out.Body)
	}
	out, err = req.Outbound(proxy.Target{NativeResponses: true, API: proxy.APIOpenAI, Model: "gpt-5-mini"})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(body, `"gpt-5"`, `"gpt-5-mini"`, 1); string(out.Body) != want {
		t.Errorf("model rewrite = %s, want %s", out.Body, want)
	}
	usage, _ := out.Reply.Tail([]byte(`"output":[],"usage":{"input_tokens":9,"input_tokens_details":{"cached_tokens":4},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":12},"user":null}`))
	if usage != (proxy.Usage{Prompt: 9, Cached: 4, Completion: 3, Reasoning: 1}) {
		t.Errorf("Tail usage = %+v", usage)
	}
}

func TestParseRefusesBadJSON(t *testing.T) {
	for _, body := range []string{``, `{`, `[1]`, `"x"`} {
		_, err := testDialect().Parse(&proxy.Inbound{Body: []byte(body)})
		var e *apierr.Error
		if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
			t.Errorf("Parse(%q) = %v, want a 400", body, err)
		}
	}
}

func TestPromptTokens(t *testing.T) {
	req, err := testDialect().Parse(&proxy.Inbound{Body: []byte(`{"model":"m","instructions":"abcd","input":[{"role":"user","content":"abcdefgh"},{"type":"function_call_output","call_id":"c","output":"abcd"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	n := req.PromptTokens(func(b []byte) int64 { return int64(len(b)) })
	if want := int64(4 + 4 + 10 + 4 + 6); n != want {
		t.Errorf("PromptTokens = %d, want %d", n, want)
	}
}
