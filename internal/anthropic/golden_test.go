package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const longTool = "mcp__github__search_repositories_with_a_very_long_name_that_openai_rejects_because_it_is_long"

// streamRequest is the client request every stream and body golden answers.
var streamRequest = `{"model":"claude-sonnet-4-6","max_tokens":1024,"stream":true,` +
	`"stop_sequences":["END"],"messages":[{"role":"user","content":"hi"}],"tools":[` +
	`{"name":"Read","input_schema":{"type":"object"}},{"name":"Bash","input_schema":{"type":"object"}},` +
	`{"name":"` + longTool + `","input_schema":{"type":"object"}},{"name":"Glob","input_schema":{"type":"object"}}]}`

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func parse(t testing.TB, body string, path string) proxy.Request {
	t.Helper()
	req, err := New(nil).Parse(&proxy.Inbound{Method: http.MethodPost, Path: path, Body: []byte(body), Header: http.Header{}})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return req
}

func translated(t testing.TB, body string) *proxy.Outbound {
	t.Helper()
	out, err := parse(t, body, PathMessages).Outbound(proxy.Target{Upstream: "u", API: proxy.APIOpenAI, Model: "gpt-4o"})
	if err != nil {
		t.Fatalf("Outbound: %v", err)
	}
	return out
}

// runStream feeds an upstream SSE transcript through a Stream. abort > 0
// stops after that many events as a client that went away (no End); a
// transcript that ends inside an event is an upstream that broke.
func runStream(t testing.TB, st proxy.Stream, in []byte, abort int) []byte {
	r := sse.NewReader(bytes.NewReader(in))
	var out []byte
	for n := 0; ; n++ {
		if abort > 0 && n == abort {
			return out
		}
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return st.End(out, nil)
		}
		if err != nil {
			return st.End(out, apierr.New(http.StatusBadGateway, apierr.Upstream, "upstream_broken", "upstream stream broke: "+err.Error()))
		}
		if out, err = st.Event(out, ev); err != nil {
			return st.End(out, apierr.New(http.StatusBadGateway, apierr.Upstream, "upstream_broken", err.Error()))
		}
	}
}

func TestStreamGolden(t *testing.T) {
	tests := []struct {
		name  string
		abort int
	}{
		{"text", 0},
		{"tools", 0},
		{"multi_tools", 0},
		{"max_tokens", 0},
		{"thinking", 0},
		{"error_midstream", 0},
		{"client_abort", 2},
		{"error_event", 0},
		{"no_usage", 0},
		{"cut_clean", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "stream", tt.name+".sse"))
			if err != nil {
				t.Fatal(err)
			}
			in = bytes.ReplaceAll(in, []byte("SHORTNAME"), []byte(shortName(longTool)))
			st := translated(t, streamRequest).Reply.Stream()
			out := runStream(t, st, in, tt.abort)
			checkWellFormed(t, out, tt.abort == 0)
			u := st.Usage()
			out = fmt.Appendf(out, "# usage: prompt=%d cached=%d cache_write=%d completion=%d reasoning=%d\n# content: %q\n",
				u.Prompt, u.Cached, u.CacheWrite, u.Completion, u.Reasoning, st.Content())
			golden(t, filepath.Join("stream", tt.name+".golden"), out)
		})
	}
}

func TestBodyGolden(t *testing.T) {
	for _, name := range []string{"text", "tools", "thinking_length", "stop_sequence"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "body", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			in = bytes.ReplaceAll(in, []byte("SHORTNAME"), []byte(shortName(longTool)))
			reply := translated(t, strings.Replace(streamRequest, `"stream":true`, `"stream":false`, 1)).Reply
			if !reply.Whole() {
				t.Fatal("Whole() = false; the translation needs the whole body")
			}
			out, ct, u, err := reply.Body(in)
			if err != nil || ct != "application/json" {
				t.Fatalf("Body: %v, %q", err, ct)
			}
			golden(t, filepath.Join("body", name+".golden.json"), indent(t, out))
			usage := fmt.Sprintf("prompt=%d cached=%d completion=%d reasoning=%d\n", u.Prompt, u.Cached, u.Completion, u.Reasoning)
			golden(t, filepath.Join("body", name+".usage"), []byte(usage))
		})
	}
}

func TestRequestGolden(t *testing.T) {
	for _, name := range []string{"claude_code", "simple", "tool_choice"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "request", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := parse(t, string(in), PathMessages).Outbound(proxy.Target{API: proxy.APIOpenAI})
			if err != nil {
				t.Fatal(err)
			}
			if out.Path != "/chat/completions" {
				t.Errorf("Path = %q", out.Path)
			}
			golden(t, filepath.Join("request", name+".golden.json"), indent(t, out.Body))
		})
	}
}

func indent(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// checkWellFormed checks the Anthropic event grammar of a translated stream:
// message_start first; blocks started once, in order, deltas only to started
// blocks, each stopped once; one message_delta after every block stopped;
// message_stop last, or an error event last. Every data payload is JSON whose
// type matches its event name. An aborted stream (complete=false) need only
// be a valid prefix.
func checkWellFormed(t testing.TB, out []byte, complete bool) {
	t.Helper()
	if err := wellFormed(out, complete); err != nil {
		t.Fatalf("malformed stream: %v\n%s", err, out)
	}
}

func wellFormed(out []byte, complete bool) error {
	r := sse.NewReader(bytes.NewReader(out))
	started, ended, delta := false, false, false
	state := map[int64]int{} // block index -> 1 open, 2 stopped
	var next int64
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("unparsable SSE: %w", err)
		}
		if !ev.Dispatch {
			continue
		}
		if ended {
			return fmt.Errorf("event %q after the end", ev.Event)
		}
		var p struct {
			Type  string `json:"type"`
			Index *int64 `json:"index"`
		}
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			return fmt.Errorf("event %q: data not JSON: %v", ev.Event, err)
		}
		if p.Type != ev.Event {
			return fmt.Errorf("event %q carries type %q", ev.Event, p.Type)
		}
		if ev.Event != "message_start" && ev.Event != "error" && !started {
			return fmt.Errorf("%s before message_start", ev.Event)
		}
		switch ev.Event {
		case "message_start":
			if started {
				return errors.New("second message_start")
			}
			started = true
		case "content_block_start":
			if p.Index == nil || *p.Index != next || delta {
				return fmt.Errorf("content_block_start index %v, want %d", p.Index, next)
			}
			for i, s := range state {
				if s == 1 {
					return fmt.Errorf("block %d started while block %d is open", next, i)
				}
			}
			state[next] = 1
			next++
		case "content_block_delta":
			if p.Index == nil || state[*p.Index] == 0 {
				return fmt.Errorf("delta to a block never started: %v", p.Index)
			}
		case "content_block_stop":
			if p.Index == nil || state[*p.Index] != 1 {
				return fmt.Errorf("stop of a block not open: %v", p.Index)
			}
			state[*p.Index] = 2
		case "message_delta":
			for i, s := range state {
				if s == 1 {
					return fmt.Errorf("message_delta with block %d open", i)
				}
			}
			delta = true
		case "message_stop":
			if !delta {
				return errors.New("message_stop without message_delta")
			}
			ended = true
		case "error":
			ended = true
		case "ping":
		default:
			return fmt.Errorf("unknown event %q", ev.Event)
		}
	}
	if complete && !ended {
		return errors.New("stream does not end with message_stop or error")
	}
	return nil
}

func jsonValid(b []byte) bool { return json.Valid(b) }
