package responses

import (
	"os"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

var textChunk = sse.Event{Dispatch: true, Data: []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}],"usage":null}`)}

// BenchmarkBridgeEvent is the cost of one upstream text chunk in a bridged
// stream (a fresh stream every 4096 events keeps memory flat).
func BenchmarkBridgeEvent(b *testing.B) {
	_, ob := outbound(b, testDialect(), `{"model":"m","input":"x","stream":true}`, chatTarget)
	dst := make([]byte, 0, 4096)
	st := ob.Reply.Stream()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i++; i%4096 == 0 {
			st = ob.Reply.Stream()
		}
		dst, _ = st.Event(dst[:0], textChunk)
	}
}

// BenchmarkBridgeStream is one whole bridged stream: 100 text chunks, the
// finish and usage chunks, [DONE] and the terminal event.
func BenchmarkBridgeStream(b *testing.B) {
	_, ob := outbound(b, testDialect(), goldenRequest, chatTarget)
	events := []sse.Event{textChunk}
	for range 99 {
		events = append(events, textChunk)
	}
	events = append(events,
		sse.Event{Dispatch: true, Data: []byte(`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`)},
		sse.Event{Dispatch: true, Data: []byte(`{"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":100,"total_tokens":120}}`)},
		sse.Event{Dispatch: true, Data: []byte(`[DONE]`)})
	dst := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		st := ob.Reply.Stream()
		for _, ev := range events {
			dst, _ = st.Event(dst[:0], ev)
		}
		dst = st.End(dst[:0], nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// BenchmarkNativeEvent is the cost of tapping one native Responses event.
func BenchmarkNativeEvent(b *testing.B) {
	_, ob := outbound(b, testDialect(), `{"model":"m","input":"x","stream":true}`, proxy.Target{NativeResponses: true})
	ev := sse.Event{Dispatch: true, Data: []byte(`{"type":"response.output_text.delta","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" word","logprobs":[]}`)}
	ev.Raw = append(append([]byte("event: response.output_text.delta\ndata: "), ev.Data...), "\n\n"...)
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	i := 0
	st := ob.Reply.Stream()
	for b.Loop() {
		if i++; i%4096 == 0 {
			st = ob.Reply.Stream()
		}
		dst, _ = st.Event(dst[:0], ev)
	}
}

// BenchmarkRequest is Parse plus the first bridged Outbound: a Codex-shaped
// request, and one whose input carries 200 KB of conversation.
func BenchmarkRequest(b *testing.B) {
	codex, err := os.ReadFile("testdata/translate/codex.json")
	if err != nil {
		b.Fatal(err)
	}
	turn := `{"role":"user","content":[{"type":"input_text","text":"` + strings.Repeat("lorem ipsum ", 400) + `"}]},`
	big := `{"model":"m","stream":true,"input":[` + strings.Repeat(turn, 40) + `{"role":"user","content":"go"}]}`
	for _, bc := range []struct {
		name string
		body []byte
	}{{"codex", codex}, {"200KB", []byte(big)}} {
		b.Run(bc.name, func(b *testing.B) {
			d := testDialect()
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				req, err := d.Parse(&proxy.Inbound{Body: bc.body})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := req.Outbound(chatTarget); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWholeBody translates a non-stream chat completion.
func BenchmarkWholeBody(b *testing.B) {
	_, ob := outbound(b, testDialect(), goldenRequest, chatTarget)
	body := []byte(`{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` + strings.Repeat("word ", 200) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":200,"total_tokens":210}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := ob.Reply.Body(body); err != nil {
			b.Fatal(err)
		}
	}
}
