package fakeupstream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tollgate/tollgate/internal/sse"
)

func newFake(t testing.TB, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	f := New(opts)
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, ts
}

// do sends a request and returns the response with its body read (for
// non-streams).
func do(t testing.TB, method, url, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

// events reads an SSE body to the end: the data of every dispatched event
// (named events as "name|data") and the terminal error (nil at a clean end).
func events(body io.Reader) ([]string, error) {
	r := sse.NewReader(body)
	var out []string
	for range 100_000 {
		e, err := r.Next()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		if !e.Dispatch {
			continue
		}
		if e.Event != "" {
			out = append(out, e.Event+"|"+string(e.Data))
		} else {
			out = append(out, string(e.Data))
		}
	}
	return out, errors.New("too many events")
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return v
}

type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens *int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens *int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

type toolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role      string     `json:"role"`
			Content   *string    `json:"content"`
			ToolCalls []toolCall `json:"tool_calls"`
		} `json:"message"`
		Delta struct {
			Role      string     `json:"role"`
			Content   *string    `json:"content"`
			ToolCalls []toolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello big world"}]}`

func TestChat(t *testing.T) {
	_, ts := newFake(t, Options{})
	resp, b := do(t, "POST", ts.URL+"/v1/chat/completions", chatBody)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	got := decode[chatObject](t, b)
	if got.Object != "chat.completion" || got.Model != "gpt-4o-mini" || !strings.HasPrefix(got.ID, "chatcmpl-") || got.Created == 0 {
		t.Errorf("head = %+v", got)
	}
	if len(got.Choices) != 1 || got.Choices[0].Message.Role != "assistant" || got.Choices[0].Message.Content == nil || *got.Choices[0].FinishReason != "stop" {
		t.Fatalf("choices = %s", b)
	}
	const want = "echo: hello big world ok ok ok ok" // 8 pieces: 4 words + 4 " ok"
	if c := *got.Choices[0].Message.Content; c != want {
		t.Errorf("content = %q; want %q", c, want)
	}
	u := got.Usage
	promptBytes := len("be brief") + len("hello big world")
	if u == nil || u.PromptTokens != promptBytes/4 || u.CompletionTokens != 8 || u.TotalTokens != promptBytes/4+8 ||
		u.PromptTokensDetails.CachedTokens == nil || u.CompletionTokensDetails.ReasoningTokens == nil {
		t.Errorf("usage = %s", b)
	}
}

func TestChatStream(t *testing.T) {
	for _, includeUsage := range []bool{false, true} {
		t.Run("include_usage="+map[bool]string{false: "false", true: "true"}[includeUsage], func(t *testing.T) {
			_, ts := newFake(t, Options{Chunks: 5})
			body := strings.Replace(chatBody, `"messages"`, `"stream":true,"stream_options":{"include_usage":`+map[bool]string{false: "false", true: "true"}[includeUsage]+`},"messages"`, 1)
			resp, b := do(t, "POST", ts.URL+"/api/chat/completions", body)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("Content-Type %q", ct)
			}
			evs, err := events(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			want := 1 + 5 + 1 + 1 // role, content, finish, [DONE]
			if includeUsage {
				want++
			}
			if len(evs) != want || evs[len(evs)-1] != "[DONE]" {
				t.Fatalf("got %d events ending %q; want %d ending [DONE]:\n%s", len(evs), evs[len(evs)-1], want, b)
			}
			var content strings.Builder
			for i, e := range evs[:len(evs)-1] {
				c := decode[chatObject](t, []byte(e))
				if c.Object != "chat.completion.chunk" || c.Model != "gpt-4o-mini" {
					t.Errorf("event %d head = %s", i, e)
				}
				switch {
				case i == 0:
					if c.Choices[0].Delta.Role != "assistant" {
						t.Errorf("first chunk has no role: %s", e)
					}
				case i <= 5:
					content.WriteString(*c.Choices[0].Delta.Content)
				case i == 6:
					if c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "stop" {
						t.Errorf("finish chunk = %s", e)
					}
				case i == 7:
					if len(c.Choices) != 0 || c.Usage == nil || c.Usage.CompletionTokens != 5 || c.Usage.TotalTokens != c.Usage.PromptTokens+5 {
						t.Errorf("usage chunk = %s", e)
					}
				}
				if i < 7 && includeUsage != strings.Contains(e, `"usage":null`) {
					t.Errorf("chunk %d: usage:null present = %v; want %v", i, !includeUsage, includeUsage)
				}
			}
			if content.String() != "echo: hello big world ok" {
				t.Errorf("streamed content = %q", content.String())
			}
		})
	}
}

func TestChatTools(t *testing.T) {
	_, ts := newFake(t, Options{Chunks: 4})
	body := `{"model":"gpt-4o","tools":[{"type":"function","function":{"name":"lookup","parameters":{}}}],"messages":[{"role":"user","content":"天气 \"quoted\""}]}`
	wantArgs := `{"input":"天气 \"quoted\""}`

	_, b := do(t, "POST", ts.URL+"/v1/chat/completions", body)
	got := decode[chatObject](t, b)
	m := got.Choices[0].Message
	if *got.Choices[0].FinishReason != "tool_calls" || m.Content != nil || len(m.ToolCalls) != 1 ||
		m.ToolCalls[0].Function.Name != "lookup" || m.ToolCalls[0].Function.Arguments != wantArgs || m.ToolCalls[0].Type != "function" {
		t.Errorf("non-stream tool call = %s", b)
	}

	_, b = do(t, "POST", ts.URL+"/v1/chat/completions", strings.Replace(body, `{"model"`, `{"stream":true,"model"`, 1))
	evs, err := events(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var args strings.Builder
	var finish string
	for _, e := range evs[:len(evs)-1] {
		c := decode[chatObject](t, []byte(e))
		for _, tc := range c.Choices[0].Delta.ToolCalls {
			args.WriteString(tc.Function.Arguments)
			if tc.ID != "" && tc.Function.Name != "lookup" {
				t.Errorf("first tool delta = %s", e)
			}
		}
		if f := c.Choices[0].FinishReason; f != nil {
			finish = *f
		}
	}
	if args.String() != wantArgs || finish != "tool_calls" || len(evs) != 1+4+1+1 {
		t.Errorf("streamed args %q finish %q in %d events; want %q tool_calls in 7", args.String(), finish, len(evs), wantArgs)
	}

	// tool_choice "none" answers with text.
	_, b = do(t, "POST", ts.URL+"/v1/chat/completions", strings.Replace(body, `{"model"`, `{"tool_choice":"none","model"`, 1))
	if got := decode[chatObject](t, b); got.Choices[0].Message.Content == nil {
		t.Errorf("tool_choice none: %s", b)
	}
}

func TestChatMaxTokens(t *testing.T) {
	_, ts := newFake(t, Options{})
	_, b := do(t, "POST", ts.URL+"/v1/chat/completions", strings.Replace(chatBody, `{"model"`, `{"max_tokens":2,"model"`, 1))
	got := decode[chatObject](t, b)
	if *got.Choices[0].Message.Content != "echo: hello" || *got.Choices[0].FinishReason != "length" || got.Usage.CompletionTokens != 2 {
		t.Errorf("max_tokens 2: %s", b)
	}
}

func TestErrors(t *testing.T) {
	_, ts := newFake(t, Options{APIKey: "sk-fake-secret-123"})
	auth := []string{"Authorization", "Bearer sk-fake-secret-123"}
	tests := []struct {
		name, path, body string
		hdr              []string
		status           int
		code, param      any
	}{
		{"invalid json", "/v1/chat/completions", `{"model":`, auth, 400, nil, nil},
		{"no messages", "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, auth, 400, nil, "messages"},
		{"no model", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, auth, 400, nil, "model"},
		{"missing model", "/v1/chat/completions", `{"model":"missing-model","messages":[{"role":"user","content":"hi"}]}`, auth, 404, "model_not_found", "model"},
		{"missing model legacy", "/v1/completions", `{"model":"missing-model","prompt":"hi"}`, auth, 404, "model_not_found", "model"},
		{"bad embedding input", "/v1/embeddings", `{"model":"text-embedding-3-small","input":[]}`, auth, 400, nil, "input"},
		{"no key", "/v1/chat/completions", chatBody, nil, 401, "invalid_api_key", nil},
		{"wrong key", "/v1/models", "", []string{"Authorization", "Bearer sk-wrong"}, 401, "invalid_api_key", nil},
		{"bad fake header", "/v1/chat/completions", chatBody, []string{"X-Fake-Delay", "soon"}, 400, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.body == "" {
				method = "GET"
			}
			resp, b := do(t, method, ts.URL+tt.path, tt.body, tt.hdr...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d; want %d: %s", resp.StatusCode, tt.status, b)
			}
			var env struct {
				Error map[string]any `json:"error"`
			}
			if err := json.Unmarshal(b, &env); err != nil || env.Error == nil {
				t.Fatalf("not an OpenAI error envelope: %s", b)
			}
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := env.Error[k]; !ok {
					t.Errorf("error lacks %q: %s", k, b)
				}
			}
			if env.Error["code"] != tt.code || env.Error["param"] != tt.param {
				t.Errorf("code, param = %v, %v; want %v, %v", env.Error["code"], env.Error["param"], tt.code, tt.param)
			}
			if strings.Contains(string(b), "secret") || strings.Contains(string(b), "sk-wrong") {
				t.Errorf("error body leaks a key: %s", b)
			}
		})
	}
	if resp, _ := do(t, "GET", ts.URL+"/v1/models", "", auth...); resp.StatusCode != 200 {
		t.Errorf("right key: status %d", resp.StatusCode)
	}
}

func TestCompletions(t *testing.T) {
	_, ts := newFake(t, Options{Chunks: 3})
	_, b := do(t, "POST", ts.URL+"/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"say this"}`)
	type completion struct {
		Object  string `json:"object"`
		Choices []struct {
			Text         string `json:"text"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage usage `json:"usage"`
	}
	got := decode[completion](t, b)
	if got.Object != "text_completion" || got.Choices[0].Text != "echo: say this" || got.Choices[0].FinishReason != "stop" || got.Usage.CompletionTokens != 3 {
		t.Errorf("completion = %s", b)
	}

	_, b = do(t, "POST", ts.URL+"/v1/completions", `{"model":"m","prompt":["say this"],"stream":true,"stream_options":{"include_usage":true}}`)
	evs, err := events(bytes.NewReader(b))
	if err != nil || len(evs) != 3+1+1+1 || evs[5] != "[DONE]" || !strings.Contains(evs[4], `"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3`) {
		t.Fatalf("stream (%v):\n%s", err, b)
	}
	var text strings.Builder
	for _, e := range evs[:3] {
		text.WriteString(decode[completion](t, []byte(e)).Choices[0].Text)
	}
	if text.String() != "echo: say this" || !strings.Contains(evs[3], `"finish_reason":"stop"`) {
		t.Errorf("streamed text %q, finish chunk %s", text.String(), evs[3])
	}
}

func TestEmbeddings(t *testing.T) {
	_, ts := newFake(t, Options{})
	type embResp struct {
		Object string `json:"object"`
		Data   []struct {
			Object    string          `json:"object"`
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Model string `json:"model"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}
	vecs := func(r embResp) [][]float32 {
		var out [][]float32
		for _, d := range r.Data {
			var v []float32
			if d.Embedding[0] == '"' {
				raw, _ := base64.StdEncoding.DecodeString(strings.Trim(string(d.Embedding), `"`))
				for i := 0; i+4 <= len(raw); i += 4 {
					v = append(v, math.Float32frombits(uint32(raw[i])|uint32(raw[i+1])<<8|uint32(raw[i+2])<<16|uint32(raw[i+3])<<24))
				}
			} else if err := json.Unmarshal(d.Embedding, &v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	post := func(body string) [][]float32 {
		resp, b := do(t, "POST", ts.URL+"/v1/embeddings", body)
		r := decode[embResp](t, b)
		if resp.StatusCode != 200 || r.Object != "list" || r.Model != "text-embedding-3-small" || r.Usage.PromptTokens < 1 || r.Usage.TotalTokens != r.Usage.PromptTokens {
			t.Fatalf("%d: %s", resp.StatusCode, b)
		}
		for i, d := range r.Data {
			if d.Index != i || d.Object != "embedding" {
				t.Errorf("data[%d] = index %d object %q", i, d.Index, d.Object)
			}
		}
		return vecs(r)
	}
	one := post(`{"model":"text-embedding-3-small","input":"hello"}`)
	three := post(`{"model":"text-embedding-3-small","input":["hello","world","你好"]}`)
	b64 := post(`{"model":"text-embedding-3-small","input":"hello","encoding_format":"base64"}`)
	tokens := post(`{"model":"text-embedding-3-small","input":[1,2,3]}`)
	dims := post(`{"model":"text-embedding-3-small","input":"hello","dimensions":32}`)
	if len(one) != 1 || len(one[0]) != 8 || len(three) != 3 || len(tokens) != 1 || len(dims[0]) != 32 {
		t.Fatalf("shapes: %d/%d vectors, %d tokens, %d dims", len(one), len(three), len(tokens), len(dims[0]))
	}
	if diff := cmp.Diff(one[0], three[0]); diff != "" {
		t.Errorf("same input, different vectors:\n%s", diff)
	}
	if diff := cmp.Diff(one[0], b64[0]); diff != "" {
		t.Errorf("base64 vector differs from float vector:\n%s", diff)
	}
	if cmp.Equal(three[0], three[1]) {
		t.Error("different inputs, same vector")
	}
	var norm float64
	for _, x := range one[0] {
		norm += float64(x) * float64(x)
	}
	if math.Abs(norm-1) > 1e-4 {
		t.Errorf("|v|^2 = %v; want 1", norm)
	}
}

func TestModels(t *testing.T) {
	_, ts := newFake(t, Options{})
	_, b := do(t, "GET", ts.URL+"/v1/models", "")
	type modelList struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object, OwnedBy string
		} `json:"data"`
	}
	list := decode[modelList](t, b)
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if diff := cmp.Diff(DefaultModels(), ids); diff != "" || list.Object != "list" {
		t.Errorf("models (-want +got):\n%s", diff)
	}
	if resp, b := do(t, "GET", ts.URL+"/api/models/gpt-4o", ""); resp.StatusCode != 200 || !strings.Contains(string(b), `"id":"gpt-4o"`) {
		t.Errorf("GET model: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, "GET", ts.URL+"/v1/models/nope", ""); resp.StatusCode != 404 {
		t.Errorf("GET unknown model: %d", resp.StatusCode)
	}
	_, ts2 := newFake(t, Options{Models: []string{"only/one"}})
	if _, b := do(t, "GET", ts2.URL+"/models/", ""); !strings.Contains(string(b), `"only/one"`) || strings.Contains(string(b), "gpt-4o") {
		t.Errorf("Options.Models not used: %s", b)
	}
}

func TestRouting(t *testing.T) {
	_, ts := newFake(t, Options{})
	for _, p := range []string{"/v1/chat/completions", "/api/chat/completions", "/chat/completions", "/v1/chat/completions/"} {
		if _, b := do(t, "POST", ts.URL+p, chatBody); !strings.Contains(string(b), `"object":"chat.completion"`) {
			t.Errorf("POST %s did not reach chat: %s", p, b)
		}
	}
	tests := []struct{ method, path, body, want string }{
		{"POST", "/v1/unknown", `{"a":1}`, `{"object":"echo","method":"POST","path":"/v1/unknown","body_bytes":7}`},
		{"GET", "/v1/chat/completions", "", `{"object":"echo","method":"GET","path":"/v1/chat/completions","body_bytes":0}`},
		{"DELETE", "/v1/files/f1", "", `{"object":"echo","method":"DELETE","path":"/v1/files/f1","body_bytes":0}`},
		{"POST", "/v1/responses", `{"model":"gpt-4o","input":"hi"}`, `{"object":"echo","method":"POST","path":"/v1/responses","body_bytes":31}`},
	}
	for _, tt := range tests {
		if _, b := do(t, tt.method, ts.URL+tt.path, tt.body); string(b) != tt.want {
			t.Errorf("%s %s = %s; want %s", tt.method, tt.path, b, tt.want)
		}
	}
}

func TestEchoStreams(t *testing.T) {
	_, ts := newFake(t, Options{Chunks: 2})
	// Without NativeResponses a streamed Responses request still gets
	// Responses events (TestResponsesNative checks them).
	_, b := do(t, "POST", ts.URL+"/v1/responses", `{"model":"gpt-4o","input":"hi there","stream":true}`)
	evs, err := events(bytes.NewReader(b))
	if err != nil || len(evs) != 10 || !strings.HasPrefix(evs[0], "response.created|") || !strings.HasPrefix(evs[9], "response.completed|") {
		t.Fatalf("responses stream (%v):\n%s", err, b)
	}
	if !strings.Contains(evs[9], `"text":"echo: hi there"`) || !strings.Contains(evs[9], `"output_tokens":2`) {
		t.Errorf("completed event = %s", evs[9])
	}
	_, b = do(t, "POST", ts.URL+"/v1/other", `{"stream":true}`)
	if evs, err := events(bytes.NewReader(b)); err != nil || len(evs) != 4 || evs[3] != "[DONE]" || !strings.Contains(evs[0], `"path":"/v1/other"`) {
		t.Errorf("generic stream (%v): %q", err, evs)
	}
	_, b = do(t, "GET", ts.URL+"/v1/events", "", "Accept", "text/event-stream")
	if evs, _ := events(bytes.NewReader(b)); len(evs) != 4 {
		t.Errorf("Accept: text/event-stream gave %q", b)
	}
}
