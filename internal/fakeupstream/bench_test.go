package fakeupstream

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func benchPost(b *testing.B, body string) {
	_, ts := newFake(b, Options{NoRecord: true})
	client := ts.Client()
	url := ts.URL + "/v1/chat/completions"
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkChat is one non-streamed chat completion through a real loopback
// HTTP server and client; the client's share is included.
func BenchmarkChat(b *testing.B) { benchPost(b, chatBody) }

// BenchmarkChatStream is one streamed chat completion of 8 chunks with usage.
func BenchmarkChatStream(b *testing.B) {
	benchPost(b, strings.Replace(chatBody, `{"model"`, `{"stream":true,"stream_options":{"include_usage":true},"model"`, 1))
}

// BenchmarkServeHTTP is the fake's own cost per non-streamed chat request,
// without a network.
func BenchmarkServeHTTP(b *testing.B) {
	f := New(Options{NoRecord: true})
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", "/v1/chat/completions", strings.NewReader(chatBody))
		f.ServeHTTP(discardWriter{h: http.Header{}}, req)
	}
}

type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w discardWriter) WriteHeader(int)             {}
