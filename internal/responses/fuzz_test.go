package responses

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate/tollgate/internal/apierr"
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
