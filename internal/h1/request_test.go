package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestWriteRequestMatchesRequestWrite: what writeRequest writes parses to
// the same request as what Request.Write writes.
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	type req struct {
		name, method, url, body string
		header                  http.Header
		host                    string
	}
	tests := []req{
		{"post json", "POST", "http://up.test:8080/v1/chat/completions?x=1", `{"model":"m"}`,
			http.Header{"Authorization": {"Bearer k"}, "Content-Type": {"application/json"}, "X-Multi": {"a", "b"}}, ""},
		{"no body get", "GET", "http://up.test/v1/models", "", http.Header{"Accept": {"*/*"}}, ""},
		{"empty post", "POST", "http://up.test/x", "", nil, ""},
		{"own user agent and host", "POST", "http://up.test/x", "abc", http.Header{"User-Agent": {"sdk/1"}}, "other.test"},
		{"empty user agent", "POST", "http://up.test/x", "abc", http.Header{"User-Agent": {""}}, ""},
		{"excluded headers ignored", "POST", "http://up.test/x", "abc",
			http.Header{"Content-Length": {"99"}, "Transfer-Encoding": {"chunked"}, "Host": {"evil.test"}}, ""},
		{"newline in value", "POST", "http://up.test/x", "abc", http.Header{"X-A": {"a\r\nX-Injected: 1"}}, ""},
	}
	parse := func(t *testing.T, b []byte) (*http.Request, string) {
		t.Helper()
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		body, _ := io.ReadAll(r.Body)
		return r, string(body)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *http.Request {
				var body io.Reader = http.NoBody
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				r, err := http.NewRequest(tc.method, tc.url, body)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.header {
					r.Header[k] = v
				}
				r.Host = tc.host
				if r.Host == "" {
					r.Host = r.URL.Host
				}
				return r
			}
			var ours, std bytes.Buffer
			bw := bufio.NewWriter(&ours)
			if err := writeRequest(bw, mk()); err != nil {
				t.Fatal(err)
			}
			bw.Flush()
			if err := mk().Write(&std); err != nil {
				t.Fatal(err)
			}
			got, gotBody := parse(t, ours.Bytes())
			want, wantBody := parse(t, std.Bytes())
			if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
				got.ContentLength != want.ContentLength || gotBody != wantBody || !reflect.DeepEqual(got.Header, want.Header) {
				t.Errorf("ours:\n%s\nRequest.Write:\n%s", ours.Bytes(), std.Bytes())
			}
		})
	}
}

// TestWriteRequestRejects: invalid names and hosts, and bodies that do not
// match their length, are errors, not bytes on the wire.
func TestWriteRequestRejects(t *testing.T) {
	tests := []struct {
		name string
		mod  func(r *http.Request)
	}{
		{"header name with colon", func(r *http.Request) { r.Header["X-A: b\r\nX-B"] = []string{"1"} }},
		{"host with newline", func(r *http.Request) { r.Host = "a.test\r\nX-B: 1" }},
		{"body shorter than its length", func(r *http.Request) { r.ContentLength = 10 }},
		{"body longer than its length", func(r *http.Request) { r.ContentLength = 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", "http://up.test/x", strings.NewReader("abc"))
			tc.mod(r)
			var b bytes.Buffer
			bw := bufio.NewWriter(&b)
			if err := writeRequest(bw, r); err == nil {
				t.Errorf("no error; wrote %q", b.Bytes())
			}
		})
	}
}
