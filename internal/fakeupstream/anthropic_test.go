package fakeupstream

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

const msgBody = `{"model":"claude-sonnet-4-6","max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}`

func TestMessages(t *testing.T) {
	_, ts := newFake(t, Options{Chunks: 3, APIKey: "k"})
	resp, b := do(t, "POST", ts.URL+"/v1/messages", msgBody, "X-Api-Key", "k")
	if resp.StatusCode != 200 || gjson.GetBytes(b, "type").Str != "message" ||
		gjson.GetBytes(b, "content.0.text").Str != "echo: hello there" ||
		gjson.GetBytes(b, "stop_reason").Str != "end_turn" ||
		gjson.GetBytes(b, "usage.input_tokens").Int() != int64(anthropicPrompt([]byte(msgBody))) ||
		gjson.GetBytes(b, "usage.output_tokens").Int() != 3 {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
	// Bearer works too; a wrong key gets Anthropic's 401.
	if resp, _ := do(t, "POST", ts.URL+"/v1/messages", msgBody, "Authorization", "Bearer k"); resp.StatusCode != 200 {
		t.Errorf("Bearer: %d", resp.StatusCode)
	}
	resp, b = do(t, "POST", ts.URL+"/v1/messages", msgBody, "X-Api-Key", "bad")
	if resp.StatusCode != 401 || gjson.GetBytes(b, "error.type").Str != "authentication_error" {
		t.Errorf("bad key: %d %s", resp.StatusCode, b)
	}
}

func TestMessagesStream(t *testing.T) {
	_, ts := newFake(t, Options{Chunks: 3})
	body := strings.Replace(msgBody, `"max_tokens":100`, `"max_tokens":100,"stream":true,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]`, 1)
	resp, b := do(t, "POST", ts.URL+"/v1/messages?beta=true", body)
	evs, err := events(bytes.NewReader(b))
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode, err)
	}
	var names []string
	var text string
	for _, e := range evs {
		name, data, _ := strings.Cut(e, "|")
		names = append(names, name)
		if gjson.Get(data, "type").Str != name {
			t.Errorf("event %s carries %s", name, data)
		}
		text += gjson.Get(data, "delta.text").Str
	}
	want := "message_start ping content_block_start content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if strings.Join(names, " ") != want || text != "echo: hello there" {
		t.Errorf("events %v, text %q", names, text)
	}
	p := anthropicPrompt([]byte(body))
	start := evs[0][len("message_start|"):]
	if gjson.Get(start, "message.usage.cache_read_input_tokens").Int() != int64(p/2) ||
		gjson.Get(start, "message.usage.cache_creation_input_tokens").Int() != int64(p/4) ||
		gjson.Get(start, "message.usage.input_tokens").Int() != int64(p-p/2-p/4) {
		t.Errorf("message_start usage: %s (prompt %d)", start, p)
	}
	if d := evs[7]; gjson.Get(d[len("message_delta|"):], "usage.output_tokens").Int() != 3 {
		t.Errorf("message_delta: %s", d)
	}
}

func TestMessagesTools(t *testing.T) {
	_, ts := newFake(t, Options{Chunks: 4})
	body := `{"model":"m","max_tokens":100,"stream":true,"tools":[{"name":"Read","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"x"}]}`
	_, b := do(t, "POST", ts.URL+"/v1/messages", body)
	evs, _ := events(bytes.NewReader(b))
	var args string
	for _, e := range evs {
		args += gjson.Get(e[strings.IndexByte(e, '|')+1:], "delta.partial_json").Str
	}
	if args != `{"input":"x"}` || !strings.Contains(string(b), `"stop_reason":"tool_use"`) {
		t.Errorf("args %q in\n%s", args, b)
	}
	// After a tool result the fake answers in text.
	body = `{"model":"m","max_tokens":100,"tools":[{"name":"Read","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"x"},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"Read","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}]}`
	_, b = do(t, "POST", ts.URL+"/v1/messages", body)
	if gjson.GetBytes(b, "content.0.type").Str != "text" {
		t.Errorf("after tool_result: %s", b)
	}
}

func TestMessagesErrors(t *testing.T) {
	_, ts := newFake(t, Options{})
	tests := []struct {
		body, hdr, val string
		status         int
		typ            string
	}{
		{`{"max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, "", "", 400, "invalid_request_error"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}]}`, "", "", 400, "invalid_request_error"},
		{`{"model":"missing-model","max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, "", "", 404, "not_found_error"},
		{msgBody, "X-Fake-Status", "429", 429, "rate_limit_error"},
		{msgBody, "X-Fake-Status", "503", 529, "overloaded_error"},
		{msgBody, "X-Fake-Status", "500", 500, "api_error"},
	}
	for _, tt := range tests {
		var hdr []string
		if tt.hdr != "" {
			hdr = []string{tt.hdr, tt.val}
		}
		resp, b := do(t, "POST", ts.URL+"/v1/messages", tt.body, hdr...)
		if resp.StatusCode != tt.status || gjson.GetBytes(b, "type").Str != "error" || gjson.GetBytes(b, "error.type").Str != tt.typ {
			t.Errorf("%s %s: %d %s", tt.body, tt.val, resp.StatusCode, b)
		}
	}
	resp, b := do(t, "POST", ts.URL+"/v1/messages/count_tokens", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	if resp.StatusCode != 200 || gjson.GetBytes(b, "input_tokens").Int() < 1 {
		t.Errorf("count_tokens: %d %s", resp.StatusCode, b)
	}
}

func TestMessagesStreamReset(t *testing.T) {
	_, ts := newFake(t, Options{Chunks: 5})
	body := strings.Replace(msgBody, `"max_tokens":100`, `"max_tokens":100,"stream":true`, 1)
	resp, err := send(t, t.Context(), ts.URL+"/v1/messages", body, http.Header{"X-Fake-Reset": {"after:3"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Error("a reset stream read to a clean end")
	}
	if strings.Contains(string(b), "message_stop") || strings.Count(string(b), "event: ") != 3 {
		t.Errorf("reset after 3 events sent:\n%s", b)
	}
}
