package fakeupstream

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

const responsesTools = `"tools":[{"type":"web_search"},{"type":"function","name":"lookup","parameters":{"type":"object"}}]`

func TestResponsesNative(t *testing.T) {
	tests := []struct {
		name, body string
		hdr        []string
		// want: status, the output item's type, its text or arguments, and
		// the usage's input / cached / output / reasoning tokens.
		status, item, text          string
		input, cached, out, reasons int64
	}{
		{name: "string input", body: `{"model":"gpt-4o","input":"hello big world"}`,
			status: "completed", item: "message", text: "echo: hello big world ok", input: 4, out: 5},
		{name: "items, instructions, cache key, reasoning",
			body: `{"model":"gpt-4o","instructions":"be brief","prompt_cache_key":"s1","reasoning":{"effort":"low"},` +
				`"input":[{"role":"developer","content":"dev"},{"type":"message","role":"user","content":[{"type":"input_text","text":"hi there"}]}]}`,
			status: "completed", item: "message", text: "echo: hi there ok ok", input: 33, cached: 16, out: 5, reasons: 2},
		{name: "function call", body: `{"model":"gpt-4o","input":"a.go",` + responsesTools + `}`,
			status: "completed", item: "function_call", text: `{"input":"a.go"}`, input: 1, out: 4},
		{name: "X-Fake-Reply text", body: `{"model":"gpt-4o","input":"a.go",` + responsesTools + `}`, hdr: []string{"X-Fake-Reply", "text"},
			status: "completed", item: "message", text: "echo: a.go ok ok ok", input: 1, out: 5},
		{name: "after a function call output", body: `{"model":"gpt-4o",` + responsesTools + `,"input":[{"role":"user","content":"a.go"},` +
			`{"type":"function_call","call_id":"c","name":"lookup","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"ok"}]}`,
			status: "completed", item: "message", text: "echo: a.go ok ok ok", input: 41, out: 5},
		{name: "max_output_tokens", body: `{"model":"gpt-4o","input":"hello big world","max_output_tokens":2}`,
			status: "incomplete", item: "message", text: "echo: hello", input: 4, out: 2},
	}
	_, ts := newFake(t, Options{Chunks: 5, NativeResponses: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, "POST", ts.URL+"/v1/responses", tt.body, tt.hdr...)
			if resp.StatusCode != 200 || !gjson.ValidBytes(b) {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			whole := gjson.ParseBytes(b)
			checkResponse(t, whole, tt.status, tt.item, tt.text, [4]int64{tt.input, tt.cached, tt.out, tt.reasons})

			// The stream: events in OpenAI's order, deltas adding up, and a
			// final Response equal to the non-streamed one but for ids.
			_, b = do(t, "POST", ts.URL+"/v1/responses", strings.Replace(tt.body, `{"model"`, `{"stream":true,"model"`, 1), tt.hdr...)
			evs, err := events(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			var deltas strings.Builder
			for i, e := range evs {
				typ, data, _ := strings.Cut(e, "|")
				d := gjson.Parse(data)
				if d.Get("type").Str != typ || d.Get("sequence_number").Int() != int64(i) {
					t.Errorf("event %d: %s", i, e)
				}
				if strings.HasSuffix(typ, ".delta") {
					deltas.WriteString(d.Get("delta").Str)
					if len(types) > 0 && types[len(types)-1] == typ {
						continue
					}
				}
				types = append(types, typ)
			}
			want := "response.created response.in_progress response.output_item.added " +
				"response.content_part.added response.output_text.delta response.output_text.done response.content_part.done " +
				"response.output_item.done response." + tt.status
			if tt.item == "function_call" {
				want = "response.created response.in_progress response.output_item.added " +
					"response.function_call_arguments.delta response.function_call_arguments.done " +
					"response.output_item.done response.completed"
			}
			if got := strings.Join(types, " "); got != want {
				t.Errorf("events:\n%s\nwant\n%s", got, want)
			}
			if deltas.String() != tt.text {
				t.Errorf("deltas add up to %q", deltas.String())
			}
			_, last, _ := strings.Cut(evs[len(evs)-1], "|")
			checkResponse(t, gjson.Get(last, "response"), tt.status, tt.item, tt.text, [4]int64{tt.input, tt.cached, tt.out, tt.reasons})
		})
	}
}

func checkResponse(t *testing.T, r gjson.Result, status, item, text string, u [4]int64) {
	t.Helper()
	out := r.Get("output.0")
	got := out.Get("content.0.text").Str
	if item == "function_call" {
		got = out.Get("arguments").Str
		if out.Get("name").Str != "lookup" || !strings.HasPrefix(out.Get("call_id").Str, "call_fake_") {
			t.Errorf("function call: %s", out.Raw)
		}
	}
	if r.Get("object").Str != "response" || r.Get("status").Str != status || out.Get("type").Str != item || got != text {
		t.Errorf("response %s; want status %s, a %s with %q", r.Raw, status, item, text)
	}
	if status == "incomplete" && r.Get("incomplete_details.reason").Str != "max_output_tokens" {
		t.Errorf("incomplete_details: %s", r.Get("incomplete_details").Raw)
	}
	us := r.Get("usage")
	gotU := [4]int64{us.Get("input_tokens").Int(), us.Get("input_tokens_details.cached_tokens").Int(),
		us.Get("output_tokens").Int(), us.Get("output_tokens_details.reasoning_tokens").Int()}
	if gotU != u || us.Get("total_tokens").Int() != u[0]+u[2] {
		t.Errorf("usage %s; want input, cached, output, reasoning = %v", us.Raw, u)
	}
}

func TestResponsesErrors(t *testing.T) {
	_, ts := newFake(t, Options{NativeResponses: true})
	for body, want := range map[string]int{
		`{"model":"missing-model","input":"x"}`: http.StatusNotFound,
		`{"input":"x"}`:                         http.StatusBadRequest,
		`{"model":`:                             http.StatusBadRequest,
	} {
		if resp, b := do(t, "POST", ts.URL+"/v1/responses", body); resp.StatusCode != want || !gjson.GetBytes(b, "error.message").Exists() {
			t.Errorf("%s: %d %s", body, resp.StatusCode, b)
		}
	}
}

// TestReplyText: X-Fake-Reply: text (or a queued Fault) makes every dialect
// answer in text although tools are offered.
func TestReplyText(t *testing.T) {
	tests := []struct{ path, body, textPath string }{
		{"/v1/chat/completions", `{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`, "choices.0.message.content"},
		{"/v1/messages", `{"model":"m","max_tokens":9,"tools":[{"name":"f","input_schema":{}}],"messages":[{"role":"user","content":"hi"}]}`, "content.0.text"},
		{"/v1/responses", `{"model":"m","tools":[{"type":"function","name":"f"}],"input":"hi"}`, "output.0.content.0.text"},
	}
	f, ts := newFake(t, Options{Chunks: 2, NativeResponses: true})
	for _, tt := range tests {
		if _, b := do(t, "POST", ts.URL+tt.path, tt.body); gjson.GetBytes(b, tt.textPath).Type == gjson.String {
			t.Errorf("%s without the header answered text: %s", tt.path, b)
		}
		if _, b := do(t, "POST", ts.URL+tt.path, tt.body, "X-Fake-Reply", "text"); gjson.GetBytes(b, tt.textPath).Str != "echo: hi" {
			t.Errorf("%s with X-Fake-Reply: text: %s", tt.path, b)
		}
		f.Enqueue(Fault{Reply: ReplyText})
		if _, b := do(t, "POST", ts.URL+tt.path, tt.body); gjson.GetBytes(b, tt.textPath).Str != "echo: hi" {
			t.Errorf("%s with a queued Fault{Reply: text}: %s", tt.path, b)
		}
	}
	if resp, b := do(t, "POST", ts.URL+"/v1/chat/completions", tests[0].body, "X-Fake-Reply", "tool"); resp.StatusCode != 400 ||
		!strings.Contains(string(b), "X-Fake-Reply") {
		t.Errorf("invalid X-Fake-Reply: %d %s", resp.StatusCode, b)
	}
}
