package anthropic

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

// benchBody is a Claude Code sized request: a long system prompt, a dozen
// tools and a few turns of tool use, about 30 KB.
func benchBody(b *testing.B) []byte {
	b.Helper()
	base, err := os.ReadFile(filepath.Join("testdata", "request", "claude_code.json"))
	if err != nil {
		b.Fatal(err)
	}
	var tools []string
	for i := range 12 {
		tools = append(tools, fmt.Sprintf(`{"name":"Tool%d","description":%q,"input_schema":{"type":"object","properties":{"path":{"type":"string","description":"The absolute path"},"limit":{"type":"number"}},"required":["path"]}}`,
			i, strings.Repeat("Reads a file from the local filesystem. ", 30)))
	}
	s := strings.Replace(string(base), `"tools":[`, `"tools":[`+strings.Join(tools, ",")+",", 1)
	s = strings.Replace(s, `Be concise.`, strings.Repeat("Be concise and careful. ", 300), 1)
	return []byte(s)
}

// BenchmarkRequest is the per-request cost of the translated path: parse and
// translate to chat completions.
func BenchmarkRequest(b *testing.B) {
	body := benchBody(b)
	d := New(nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := d.Parse(&proxy.Inbound{Method: http.MethodPost, Path: PathMessages, Body: body})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := req.Outbound(proxy.Target{API: proxy.APIOpenAI, Model: "gpt-4o"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestPassthrough is the same request to an Anthropic upstream.
func BenchmarkRequestPassthrough(b *testing.B) {
	body := benchBody(b)
	d := New(nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := d.Parse(&proxy.Inbound{Method: http.MethodPost, Path: PathMessages, Body: body})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := req.Outbound(proxy.Target{API: proxy.APIAnthropic, Model: "claude-sonnet-4-6"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestOpenAIBaseline is what the OpenAI dialect does to the chat
// body of the same size: parse its head and inject include_usage.
func BenchmarkRequestOpenAIBaseline(b *testing.B) {
	req, _ := New(nil).Parse(&proxy.Inbound{Method: http.MethodPost, Path: PathMessages, Body: benchBody(b)})
	out, _ := req.Outbound(proxy.Target{API: proxy.APIOpenAI, Model: "gpt-4o"})
	body := []byte(strings.Replace(string(out.Body), `,"stream_options":{"include_usage":true}`, "", 1))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := openai.ParseHead(body); err != nil {
			b.Fatal("bad body")
		}
		if _, err := openai.SetIncludeUsage(body); err != nil {
			b.Fatal(err)
		}
	}
}

var textChunk = []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":null}],"usage":null}`)

// BenchmarkStreamEvent is the translation of one streamed text chunk.
func BenchmarkStreamEvent(b *testing.B) {
	out := translated(b, streamRequest)
	st := out.Reply.Stream()
	ev := sse.Event{Data: textChunk, Dispatch: true}
	dst, _ := st.Event(nil, ev) // message_start and the block start
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = st.Event(dst[:0], ev)
		if cs := st.(*chatStream); len(cs.content) >= maxContent {
			cs.content = cs.content[:0]
		}
	}
}

// BenchmarkStreamEventToolArgs is one streamed tool-argument fragment.
func BenchmarkStreamEventToolArgs(b *testing.B) {
	out := translated(b, streamRequest)
	st := out.Reply.Stream()
	first := sse.Event{Data: []byte(`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"Read","arguments":""}}]}}]}`), Dispatch: true}
	ev := sse.Event{Data: []byte(`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"path\": \"/tmp"}}]},"finish_reason":null}]}`), Dispatch: true}
	dst, _ := st.Event(nil, first)
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = st.Event(dst[:0], ev)
		if cs := st.(*chatStream); len(cs.content) >= maxContent {
			cs.content = cs.content[:0]
		}
	}
}

// BenchmarkStreamEventPassthrough is one Anthropic event tapped on the way
// past.
func BenchmarkStreamEventPassthrough(b *testing.B) {
	out, _ := parse(b, streamRequest, PathMessages).Outbound(proxy.Target{API: proxy.APIAnthropic})
	st := out.Reply.Stream()
	data := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" world"}}`)
	ev := sse.Event{Event: "content_block_delta", Data: data, Raw: []byte("event: content_block_delta\ndata: " + string(data) + "\n\n"), Dispatch: true}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = st.Event(dst[:0], ev)
		if ps := st.(*passStream); len(ps.content) >= maxContent {
			ps.content = ps.content[:0]
		}
	}
}

// BenchmarkResponse is the translation of a whole non-stream answer.
func BenchmarkResponse(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "body", "tools.json"))
	if err != nil {
		b.Fatal(err)
	}
	reply := translated(b, streamRequest).Reply
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := reply.Body(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCountTokens is the local count of a Claude Code sized request.
func BenchmarkCountTokens(b *testing.B) {
	body := benchBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		CountTokens(body)
	}
}
