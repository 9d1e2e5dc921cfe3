package upstreamerr

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestInspect(t *testing.T) {
	cloudflare, err := os.ReadFile("testdata/cloudflare_502.html")
	if err != nil {
		t.Fatal(err)
	}
	nginx, err := os.ReadFile("testdata/nginx_502.html")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		status  int
		ct      string
		body    string
		pass    bool
		message string
	}{
		{"openai shape", 404, "application/json",
			`{"error":{"message":"The model 'gpt-9' does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
			true, "upstream returned 404 Not Found: The model 'gpt-9' does not exist"},
		{"openai shape with charset", 400, "application/json; charset=utf-8",
			`{"error":{"message":"bad"}}`, true, "upstream returned 400 Bad Request: bad"},
		{"problem+json", 400, "application/problem+json", `{"error":{"message":"bad"}}`, true,
			"upstream returned 400 Bad Request: bad"},
		{"no content type", 400, "", `{"error":{"message":"bad"}}`, true, "upstream returned 400 Bad Request: bad"},
		{"json but text/plain", 400, "text/plain", `{"error":{"message":"bad"}}`, false,
			"upstream returned 400 Bad Request: bad"},
		{"error is a string", 500, "application/json", `{"error":"model overloaded"}`, false,
			"upstream returned 500 Internal Server Error: model overloaded"},
		{"fastapi detail", 422, "application/json", `{"detail":"Not Found"}`, false,
			"upstream returned 422 Unprocessable Entity: Not Found"},
		{"message field", 503, "application/json", `{"message":"try later","code":7}`, false,
			"upstream returned 503 Service Unavailable: try later"},
		{"message not a string", 400, "application/json", `{"error":{"message":{"x":1}}}`, false,
			"upstream returned 400 Bad Request"},
		{"duplicate error members", 400, "application/json",
			`{"error":{"message":"a"},"ERROR":{"message":"b"}}`, false, "upstream returned 400 Bad Request"},
		{"json array", 400, "application/json", `[{"error":"x"}]`, false, `upstream returned 400 Bad Request: [{"error":"x"}]`},
		{"truncated json", 400, "application/json", `{"error":{"message":"the request was`, false,
			`upstream returned 400 Bad Request: {"error":{"message":"the request was`},
		{"text 404", 404, "text/plain; charset=utf-8", "404 page not found\n", false,
			"upstream returned 404 Not Found: 404 page not found"},
		{"text equal to status text", 404, "text/plain", "Not Found", false, "upstream returned 404 Not Found"},
		{"empty body", 502, "", "", false, "upstream returned 502 Bad Gateway"},
		{"cloudflare page", 502, "text/html", string(cloudflare), false,
			"upstream returned 502 Bad Gateway: example.com | 502: Bad gateway"},
		{"nginx page", 502, "text/html", string(nginx), false,
			"upstream returned 502 Bad Gateway: 502 Bad Gateway"},
		{"html without title", 500, "text/html", "<html><body><h1>Oops</h1>\n<p>Something   broke</p><script>var k='sk-secret123';</script></body></html>",
			false, "upstream returned 500 Internal Server Error: Oops Something broke"},
		{"socket address in openai shape", 502, "application/json",
			`{"error":{"message":"dial tcp 10.0.3.7:8000: connect: connection refused"}}`, false,
			"upstream returned 502 Bad Gateway: dial tcp [address]: connect: connection refused"},
		{"masked key in openai shape", 401, "application/json",
			`{"error":{"message":"Incorrect API key provided: sk-proj-****abcd. You can find your API key at https://platform.openai.com/account/api-keys."}}`,
			false, "upstream returned 401 Unauthorized: Incorrect API key provided: [redacted]. You can find your API key at https://platform.openai.com/account/api-keys."},
		{"unknown status", 599, "text/plain", "odd", false, "upstream returned 599: odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Inspect(tt.status, tt.ct, []byte(tt.body))
			if v.PassThrough != tt.pass || v.Message != tt.message {
				t.Errorf("Inspect(%d, %q, %.60q) = %+v;\nwant pass %v, message %q", tt.status, tt.ct, tt.body, v, tt.pass, tt.message)
			}
			checkSafe(t, v.Message, MaxMessage)
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "upstream busy", "upstream busy"},
		{"whitespace", "  a\t\tb\r\n\n c \x00\x07 d\u2028e ", "a b c d e"},
		{"invalid utf-8", "a\xffb", "a\uFFFDb"},
		{"read tcp pair", "read tcp 127.0.0.1:54786->127.0.0.1:8080: read: connection reset by peer",
			"read tcp [address]: read: connection reset by peer"},
		{"dial ipv6", "dial tcp [::1]:443: connect: connection refused", "dial tcp [address]: connect: connection refused"},
		{"bare ipv4 port", "backend 192.168.1.20:9000 down", "backend [address] down"},
		{"bare ipv4", "from 10.0.0.1 denied", "from [address] denied"},
		{"bracketed ipv6 zone", "at [fe80::1%eth0]:80 now", "at [address] now"},
		{"bare ipv6", "peer 2001:db8::42 closed", "peer [address] closed"},
		{"time is not ipv6", "retry at 12:30:45 UTC", "retry at 12:30:45 UTC"},
		{"url query", `Get "https://api.example.com/v1/chat?key=SECRET&x=1": EOF`,
			`Get "https://api.example.com/v1/chat": EOF`},
		{"url credentials", "proxy http://user:pa55@proxy.local:3128/ failed", "proxy http://proxy.local:3128/ failed"},
		{"url fragment and trailing dot", "see https://docs.example.com/errors#x.", "see https://docs.example.com/errors."},
		{"url with ip", "http://10.1.2.3:8000/v1 down", "http://[address]/v1 down"},
		{"bearer", "Authorization: Bearer abcdef123456", "Authorization: [redacted]"},
		{"sk key", "key sk-proj-AbCdEf123456 invalid", "key [redacted] invalid"},
		{"gateway key", "tg-ABCDEFGHJKLMNPQRSTUVWXYZ23 unknown", "[redacted] unknown"},
		{"key pair", `{"api_key": "abc123"}`, `{"api_key": "[redacted]"}`},
		{"html entities", "<p>a &amp; b &lt;c&gt;</p>", "a & b <c>"},
		{"html comment", "<div><!-- 10.0.0.1 -->ok</div>", "ok"},
		{"not html", "a < b and c > d", "a < b and c > d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sanitize([]byte(tt.in), 0); got != tt.want {
				t.Errorf("Sanitize(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSanitizeCut(t *testing.T) {
	for _, tt := range []struct {
		in  string
		max int
	}{
		{strings.Repeat("é", 300), 200},
		{strings.Repeat("🚀", 100), 50},
		{strings.Repeat("a", 1<<20), 200},
		{strings.Repeat("<b>x</b> ", 1<<16), 200},
		{strings.Repeat("ab ", 100), 10},
		{"🚀🚀", 4},
	} {
		got := Sanitize([]byte(tt.in), tt.max)
		checkSafe(t, got, tt.max)
		if len(tt.in) > tt.max && !strings.HasSuffix(got, "…") && got != "" {
			t.Errorf("Sanitize(%.20q..., %d) = %q; want a cut marked with …", tt.in, tt.max, got)
		}
	}
}

// addrPattern finds what must never survive: an IPv4 address (with or
// without port) or a bracketed IPv6 address with a port.
var addrPattern = regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\]:\d`)

// checkSafe asserts the properties every message must have.
func checkSafe(t *testing.T, s string, max int) {
	t.Helper()
	if len(s) > max {
		t.Errorf("message is %d bytes; max %d: %q", len(s), max, s)
	}
	if !utf8.ValidString(s) {
		t.Errorf("message is not valid UTF-8: %q", s)
	}
	if addrPattern.MatchString(s) {
		t.Errorf("message quotes a socket address: %q", s)
	}
	if strings.ContainsAny(s, "\n\r\t\x00") {
		t.Errorf("message is not one line: %q", s)
	}
}

// urlQuery finds a URL that kept its query string.
var urlQuery = regexp.MustCompile(`(?i)\bhttps?://[^\s"'<>]*\?`)

func FuzzWrapError(f *testing.F) {
	for _, s := range []string{
		`{"error":{"message":"bad","type":"invalid_request_error"}}`,
		"read tcp 127.0.0.1:54786->127.0.0.1:8080: read: connection reset by peer",
		"<html><head><title>502</title></head><body>10.0.0.1:80</body></html>",
		`{"detail":"dial tcp [::1]:443: refused"}`, "https://u:p@h/x?k=v", "a\xff\xfe\x00b",
		`{"error":{"message":"Bearer abc.def.ghi at 192.168.0.1:5"}}`, "<title>a<b>c</b></title>",
	} {
		f.Add(502, "text/html", []byte(s))
		f.Add(400, "application/json", []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte) {
		v := Inspect(status, ct, body)
		checkSafe(t, v.Message, MaxMessage)
		checkSafe(t, v.Detail, MaxMessage)
		if v.PassThrough && sensitive(body) {
			t.Fatalf("passes through a body with an address or credential: %q", body)
		}
		s := Sanitize(body, 60)
		checkSafe(t, s, 60)
		if urlQuery.MatchString(s) {
			t.Fatalf("Sanitize(%q) = %q keeps a URL query", body, s)
		}
	})
}
