package h1

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRoundTrip compares h1 with net/http's Transport (same buffer
// sizes) against one in-process upstream, so each op's CPU includes the
// upstream's share, which is the same for both.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 50 {
				fmt.Fprintf(w, "data: {\"i\":%d}\n\n", i)
				w.(http.Flusher).Flush()
			}
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	transports := []struct {
		name string
		rt   func() http.RoundTripper
	}{
		{"net-http", func() http.RoundTripper {
			return &http.Transport{MaxIdleConnsPerHost: 64, WriteBufferSize: 2 << 10, ReadBufferSize: 2 << 10}
		}},
		{"h1", func() http.RoundTripper { return &Transport{Fallback: &http.Transport{}, MaxIdlePerHost: 64} }},
	}
	cases := []struct {
		name, path string
		body       []byte
	}{
		{"small", "/", bytes.Repeat([]byte("a"), 300)},
		{"body200k", "/", bytes.Repeat([]byte("a"), 200<<10)},
		{"stream50", "/stream", bytes.Repeat([]byte("a"), 300)},
	}
	for _, c := range cases {
		for _, tc := range transports {
			b.Run(c.name+"/"+tc.name, func(b *testing.B) {
				rt := tc.rt()
				defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					buf := make([]byte, 4<<10)
					for pb.Next() {
						req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+c.path, bytes.NewReader(c.body))
						resp, err := rt.RoundTrip(req)
						if err != nil {
							b.Error(err)
							return
						}
						for {
							if _, err := resp.Body.Read(buf); err != nil {
								break
							}
						}
						resp.Body.Close()
					}
				})
			})
		}
	}
}
