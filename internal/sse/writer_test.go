package sse

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestWriteEvent(t *testing.T) {
	tests := []struct {
		data, want string
	}{
		{`{"a":1}`, "data: {\"a\":1}\n\n"},
		{"", "data: \n\n"},
		{"[DONE]", "data: [DONE]\n\n"},
		{"a\nb", "data: a\ndata: b\n\n"},
		{"a\r\nb\rc\n", "data: a\ndata: b\ndata: c\ndata: \n\n"},
		{" lead", "data:  lead\n\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := WriteEvent(&buf, []byte(tt.data)); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("WriteEvent(%q) wrote %q; want %q", tt.data, buf.String(), tt.want)
		}
		// Round trip: line breaks come back normalised to "\n".
		e, err := NewReader(&buf).Next()
		wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(tt.data)
		if err != nil || !e.Dispatch || string(e.Data) != wantData {
			t.Errorf("read back %q: Data %q, %v; want %q", tt.want, e.Data, err, wantData)
		}
	}
}

func TestWriteEventAllocs(t *testing.T) {
	data := []byte(`{"id":"chatcmpl-1","choices":[{"delta":{"content":"hi"}}]}`)
	allocs := testing.AllocsPerRun(100, func() { _ = WriteEvent(io.Discard, data) })
	// The stack buffer escapes through the io.Writer call: one allocation.
	if allocs > 1 {
		t.Errorf("WriteEvent allocates %v times per call; want at most 1", allocs)
	}
}

// openAIStream builds a realistic chat stream of n content chunks, with a role
// chunk, a finish chunk, a usage chunk and [DONE].
func openAIStream(n int) []byte {
	var b []byte
	head := `{"id":"chatcmpl-AbC123","object":"chat.completion.chunk","created":1763800000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_560af6e559","choices":[`
	b = AppendEvent(b, []byte(head+`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`))
	for i := range n {
		b = AppendEvent(b, fmt.Appendf(nil, `%s{"index":0,"delta":{"content":" word%d"},"logprobs":null,"finish_reason":null}],"usage":null}`, head, i))
	}
	b = AppendEvent(b, []byte(head+`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`))
	b = AppendEvent(b, []byte(head+`],"usage":{"prompt_tokens":19,"completion_tokens":50,"total_tokens":69}}`))
	return AppendEvent(b, []byte("[DONE]"))
}

func BenchmarkReader(b *testing.B) {
	in := openAIStream(50)
	src := bytes.NewReader(in)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(in)
		r := NewReader(src)
		n := 0
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if e.Dispatch {
				n++
			}
		}
		if n != 54 {
			b.Fatalf("read %d events; want 54", n)
		}
	}
}
