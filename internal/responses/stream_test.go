package responses

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
)

// TestGoldenStreams runs each upstream chat stream in testdata/stream
// through the bridge and compares the client's events with the .golden file
// next to it (go test -update rewrites them; review the diff).
func TestGoldenStreams(t *testing.T) {
	tests := []struct {
		name      string
		want      proxy.Usage
		terminal  string
		wantItems []string
		fail      *apierr.Error // how the engine ends the stream
	}{
		{"text", proxy.Usage{Prompt: 20, Cached: 16, Completion: 5, Reasoning: 2}, "response.completed", []string{"message"}, nil},
		{"function_streamed", proxy.Usage{Prompt: 30, Completion: 9}, "response.completed", []string{"function_call"}, nil},
		{"function_one_piece", proxy.Usage{Prompt: 12, Completion: 7}, "response.completed", []string{"function_call"}, nil},
		{"several_calls", proxy.Usage{Prompt: 40, Cached: 32, Completion: 30}, "response.completed",
			[]string{"message", "function_call", "custom_tool_call", "function_call"}, nil},
		{"max_tokens", proxy.Usage{Prompt: 8, Completion: 3}, "response.incomplete", []string{"message"}, nil},
		{"upstream_error", proxy.Usage{}, "response.failed", []string{"message"}, nil},
		{"broken", proxy.Usage{}, "response.failed", []string{"message", "function_call"},
			&apierr.Error{Status: 504, Type: apierr.Timeout, Code: "upstream_idle_timeout", Message: "the upstream sent nothing for 2m0s"}},
		{"no_done", proxy.Usage{}, "response.failed", []string{"message"}, nil},
		{"reasoning", proxy.Usage{Prompt: 5, Completion: 6, Reasoning: 4}, "response.completed", []string{"reasoning", "message"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream, err := os.ReadFile(filepath.Join("testdata", "stream", tt.name+".sse"))
			if err != nil {
				t.Fatal(err)
			}
			_, ob := outbound(t, testDialect(), goldenRequest, chatTarget)
			st := ob.Reply.Stream()
			got := runStream(st, upstream, tt.fail)
			if err := checkTranscript(got); err != nil {
				t.Fatalf("transcript breaks the protocol: %v\n%s", err, got)
			}
			if st.Usage() != tt.want {
				t.Errorf("Usage() = %+v, want %+v", st.Usage(), tt.want)
			}
			last := lastEvent(got)
			if !strings.HasPrefix(last, "event: "+tt.terminal+"\n") {
				t.Errorf("last event %q, want %s", last, tt.terminal)
			}
			var kinds []string
			for _, ln := range strings.Split(string(got), "\n") {
				if strings.HasPrefix(ln, `data: {"type":"response.output_item.added"`) {
					kinds = append(kinds, gjson.Get(ln[len("data: "):], "item.type").Str)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tt.wantItems, ",") {
				t.Errorf("items %v, want %v", kinds, tt.wantItems)
			}
			golden := filepath.Join("testdata", "stream", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("transcript differs from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func lastEvent(out []byte) string {
	s := strings.TrimSuffix(string(out), "\n\n")
	return s[strings.LastIndex(s, "\n\n")+2:]
}
