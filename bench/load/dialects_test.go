package load

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRunAPI drives each API of the fake upstream, which speaks all three,
// whole and streamed.
func TestRunAPI(t *testing.T) {
	base := newFake(t)
	bodies := map[string]string{
		"chat":      plainBody,
		"messages":  `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}`,
		"responses": `{"model":"m","input":"hello there"}`,
	}
	for _, api := range []API{APIChat, APIMessages, APIResponses} {
		for _, stream := range []bool{false, true} {
			spec := Spec{Name: api.Name, Kind: ClosedLoop, Workers: 2, Duration: 100 * time.Millisecond, Body: []byte(bodies[api.Name])}
			if stream {
				spec.Kind, spec.MinEvents = Streams, 10
				spec.Body = []byte(strings.Replace(bodies[api.Name], `{"model"`, `{"stream":true,"model"`, 1))
				spec.Header = http.Header{"X-Fake-Chunks": {"10"}}
			}
			r, err := RunAPI(t.Context(), discard(), Target{Name: "fake", BaseURL: base, PID: os.Getpid()}, spec, api)
			if err != nil {
				t.Fatal(err)
			}
			if r.Errors != 0 || r.Requests == 0 || !r.Proc || r.CPUPerRequest != r.CPU/time.Duration(r.Requests) {
				t.Errorf("%s stream=%v: %d ok, %d errors (%s), proc %v", api.Name, stream, r.Requests, r.Errors, r.FirstError, r.Proc)
			}
			if stream && r.FirstChunk.Count == 0 {
				t.Errorf("%s: no first-chunk times", api.Name)
			}
		}
	}
}

func TestReadAPIStream(t *testing.T) {
	end := []byte(APIMessages.End)
	tests := []struct {
		name, body string
		min        int
		err        string
	}{
		{"ends", "event: a\ndata: {}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", 2, ""},
		{"too few events", "data: {\"type\":\"message_stop\"}\n\n", 2, "after 1 events"},
		{"no end", "data: {}\n\ndata: [DONE]\n\n", 1, "without"},
		{"long line", "data: " + strings.Repeat("x", 100<<10) + "\n\ndata: {\"type\":\"message_stop\"}\n\n", 2, ""},
	}
	for _, tt := range tests {
		_, err := readAPIStream(strings.NewReader(tt.body), tt.min, end, time.Now())
		if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.err)
		}
	}
}

func TestRunAPIRejectsOpenLoop(t *testing.T) {
	if _, err := RunAPI(t.Context(), discard(), Target{BaseURL: "http://127.0.0.1:1"}, Spec{Kind: OpenLoop}, APIChat); err == nil {
		t.Error("RunAPI ran an open loop")
	}
}
