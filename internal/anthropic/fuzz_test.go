package anthropic

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate/tollgate/internal/proxy"
)

// FuzzStream feeds arbitrary upstream bytes to the translator: it must never
// panic and must always end the client's stream well-formed (message_stop or
// an error event last), whether the upstream ended cleanly or broke. The
// golden inputs in testdata/stream seed it besides the corpus in
// testdata/fuzz/FuzzStream.
func FuzzStream(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "stream", "*.sse"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	out := translated(f, streamRequest)
	f.Fuzz(func(t *testing.T, in []byte, abort uint8) {
		st := out.Reply.Stream()
		got := runStream(t, st, in, int(abort%16))
		checkWellFormed(t, got, abort%16 == 0)
		if bytes.Contains(got, []byte("\n\n\n")) {
			t.Fatalf("empty event in output:\n%s", got)
		}
		_ = st.Usage()
	})
}

// FuzzRequest translates arbitrary valid requests: never a panic, always a
// JSON object out.
func FuzzRequest(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "request", "*.json"))
	for _, s := range seeds {
		if filepath.Ext(s) == ".json" && !bytes.Contains([]byte(s), []byte("golden")) {
			b, err := os.ReadFile(s)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	d := New(nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := d.Parse(&proxy.Inbound{Method: "POST", Path: PathMessages, Body: in})
		if err != nil {
			return
		}
		out, err := req.Outbound(proxy.Target{API: proxy.APIOpenAI, Model: "m"})
		if err != nil {
			return
		}
		if !jsonValid(out.Body) {
			t.Fatalf("translation is not JSON:\n%s\nfrom\n%s", out.Body, in)
		}
		_ = CountTokens(in)
	})
}
