package responses

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
)

// FuzzBridge feeds arbitrary upstream bytes through the bridge as a chat
// event stream: it must never panic and must always end with exactly one
// terminal event in a transcript that keeps the protocol's rules.
func FuzzBridge(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "stream", "*.sse"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	d := New(Options{MaxOutputBytes: 4096})
	f.Fuzz(func(t *testing.T, upstream []byte, broken bool) {
		_, ob := outbound(t, d, goldenRequest, chatTarget)
		st := ob.Reply.Stream()
		var fail *apierr.Error
		if broken {
			fail = &apierr.Error{Status: 502, Type: apierr.Upstream, Message: "broken"}
		}
		out := runStream(st, upstream, fail)
		if err := checkTranscript(out); err != nil {
			t.Fatalf("%v\nupstream: %q\nout: %s", err, upstream, out)
		}
		if len(st.Content()) > 4096 {
			t.Fatalf("kept %d bytes", len(st.Content()))
		}
	})
}

// FuzzTranslate translates arbitrary requests to chat completions: never a
// panic, and whatever is sent upstream is valid JSON (the encoder is
// hand-written and does not check its output at run time).
func FuzzTranslate(f *testing.F) {
	for _, name := range []string{"codex.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "translate", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(goldenRequest))
	d := testDialect()
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := d.Parse(&proxy.Inbound{Method: "POST", Path: "/responses", Body: body})
		if err != nil {
			return
		}
		req.PromptTokens(func(b []byte) int64 { return int64(len(b)) })
		out, err := req.Outbound(chatTarget)
		if err != nil {
			return
		}
		if !json.Valid(out.Body) {
			t.Fatalf("translation is not JSON:\n%s\nfrom\n%s", out.Body, body)
		}
	})
}
