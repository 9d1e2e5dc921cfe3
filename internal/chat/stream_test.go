package chat

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/sse"

	"github.com/tollgate/tollgate/internal/fakeupstream"
)

func TestStreamAppendsFullReply(t *testing.T) {
	h := newHarness(t, setup{})
	h.fake.Enqueue(fakeupstream.Fault{Chunks: 4}) // "echo:", " hello", " there", " world"
	status, hdr, evs, raw := h.stream(t, `{"message":"hello there world","conversation":"s"}`)
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d content type %q body %s", status, hdr.Get("Content-Type"), raw)
	}
	var reply strings.Builder
	i := 0
	for ; i < len(evs) && evs[i].Content != nil; i++ {
		reply.WriteString(*evs[i].Content)
	}
	if i != 4 {
		t.Errorf("got %d content events, want 4 (one per delta)", i)
	}
	if got, want := reply.String(), "echo: hello there world"; got != want {
		t.Errorf("assembled reply %q, want %q", got, want)
	}
	if len(evs) != i+2 || evs[i].Usage == nil || !evs[i+1].Done {
		t.Fatalf("events after the content: %s", raw)
	}
	if u := evs[i].Usage; u.TotalTokens <= 0 || u.CompletionTokens <= 0 || evs[i].Conversation != "s" {
		t.Errorf("final event usage %+v conversation %q", u, evs[i].Conversation)
	}
	var up struct {
		Stream        bool `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(h.fake.Requests()[0].Body, &up); err != nil || !up.Stream || !up.StreamOptions.IncludeUsage {
		t.Errorf("upstream request asked stream=%v include_usage=%v (%v)", up.Stream, up.StreamOptions.IncludeUsage, err)
	}
	_, hist := h.history(t, http.MethodGet, "conversation=s")
	want := []string{"user:hello there world", "assistant:echo: hello there world"}
	if diff := cmp.Diff(want, contents(hist.Messages)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	recs := h.recordsFor("/api/chat/stream")
	if len(recs) != 1 || !recs[0].Stream || recs[0].TotalTokens == 0 || recs[0].Status != 200 {
		t.Errorf("ledger records %+v", recs)
	}
	// The streamed turn is context for the next call.
	h.mustChat(t, `{"message":"next","conversation":"s"}`)
	if got := h.upstreamMessages(t, -1); !cmp.Equal(append(want, "user:next"), got) {
		t.Errorf("next call's context %v", got)
	}
}

func TestStreamFailures(t *testing.T) {
	tests := []struct {
		name   string
		faults []fakeupstream.Fault
		// status is the answer's status; 200 means the stream had started
		// and must end with an error event and [DONE].
		status int
	}{
		{name: "reset after 3 chunks", faults: []fakeupstream.Fault{{ResetAfterChunks: 3}}, status: 200},
		{name: "400 before streaming", faults: []fakeupstream.Fault{{Status: 400}}, status: 400},
		{name: "429 beyond retries", faults: repeat(fakeupstream.Fault{Status: 429, RetryAfter: "0.01"}, 3), status: 429},
		{name: "500 beyond retries", faults: repeat(fakeupstream.Fault{Status: 500}, 3), status: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, setup{})
			h.fake.Enqueue(tt.faults...)
			status, hdr, evs, raw := h.stream(t, `{"message":"one two three four five"}`)
			if status != tt.status {
				t.Fatalf("status %d body %s, want %d", status, raw, tt.status)
			}
			if status != 200 {
				var out chatResponse
				if err := json.Unmarshal(raw, &out); err != nil || out.Success || out.Error == "" ||
					!strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
					t.Errorf("error answer %s (%v)", raw, err)
				}
			} else {
				n := len(evs)
				if n < 3 || evs[0].Content == nil || evs[n-2].Error == nil || *evs[n-2].Error == "" || !evs[n-1].Done {
					t.Errorf("events %s; want content, an error event, [DONE]", raw)
				}
				for _, e := range evs {
					if e.Usage != nil {
						t.Errorf("a failed stream reported final usage: %s", raw)
					}
				}
			}
			_, hist := h.history(t, http.MethodGet, "")
			if len(hist.Messages) != 0 {
				t.Errorf("a failed stream was remembered: %v", contents(hist.Messages))
			}
		})
	}
}

func TestStreamClientDisconnect(t *testing.T) {
	h := newHarness(t, setup{})
	h.fake.Enqueue(fakeupstream.Fault{Chunks: 50, ChunkDelay: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.gw.URL+"/api/chat/stream", strings.NewReader(`{"message":"go"}`))
	resp, err := h.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "content") {
		t.Fatalf("first line %q: %v", line, err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.svc.locks.size() != 0 || len(h.recordsFor("/api/chat/stream")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream call did not end within 5s of the client leaving")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rec := h.recordsFor("/api/chat/stream")[0]; rec.Status != 499 {
		t.Errorf("ledger status %d, want 499", rec.Status)
	}
	_, hist := h.history(t, http.MethodGet, "")
	if len(hist.Messages) != 0 {
		t.Errorf("an abandoned stream was remembered: %v", contents(hist.Messages))
	}
}

// TestStreamTranslation feeds one transcript, with each line ending and
// read one byte at a time, through the SSE reader and the stream translator.
func TestStreamTranslation(t *testing.T) {
	transcript := "data: {\"model\":\"m1\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
		": keep-alive comment\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n" +
		"event: message\nid: 7\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo \\\"you\\\"\"}}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n" +
		"data: [DONE]\n\n"
	wantOut := "data: {\"content\":\"Hel\"}\n\ndata: {\"content\":\"lo \\\"you\\\"\"}\n\n"
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		in := strings.ReplaceAll(transcript, "\n", eol)
		st := &stream{c: &call{t: &turn{model: "m0"}}}
		rd := sse.NewReader(iotest.OneByteReader(strings.NewReader(in)))
		var out []byte
		for {
			ev, err := rd.Next()
			if err != nil {
				break
			}
			if out, err = st.Event(out, ev); err != nil {
				t.Fatal(err)
			}
		}
		if got := string(out); got != wantOut || !st.done || st.reply.String() != "Hello \"you\"" ||
			st.usage.TotalTokens != 5 || st.model != "m1" {
			t.Fatalf("eol %q: out %q done %v reply %q usage %+v model %q",
				eol, got, st.done, st.reply.String(), st.usage, st.model)
		}
	}
}
