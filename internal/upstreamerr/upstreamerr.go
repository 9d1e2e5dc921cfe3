// Package upstreamerr decides what a client may see of an upstream's failure.
//
// An upstream's own OpenAI-shaped JSON error ({"error":{"message":...}}) is
// passed through, as DESIGN.md's "Errors speak OpenAI" asks. Anything else (a
// text/plain 404, a CDN's HTML 502 page, a JSON shape no SDK understands, a
// body cut short) must be wrapped in the gateway's own envelope, with a short
// message that carries no markup, no internal addresses and no credentials.
// Transport errors get a fixed vocabulary instead of Go's error text, which
// names local and remote socket addresses.
//
// The package is pure: no I/O, no logging, no state.
package upstreamerr

import (
	"fmt"
	"html"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tollgate/tollgate/internal/jsonscan"
)

// MaxMessage is the longest message Inspect and Sanitize return, in bytes.
const MaxMessage = 200

// maxInput bounds the bytes of a body Sanitize looks at, so a hostile
// upstream cannot make an error path slow.
const maxInput = 16 << 10

// Verdict is what Inspect decided about an upstream error response.
type Verdict struct {
	// PassThrough is true when the body is a well-formed OpenAI-style
	// JSON error object ({"error":{"message":"..."}}) with a JSON
	// Content-Type, and quotes no socket address or credential: the
	// gateway may forward status and body as the upstream sent them.
	PassThrough bool
	// Message is one sanitized line describing the failure, at most
	// MaxMessage bytes: "upstream returned 502 Bad Gateway: <detail>". It
	// is set in both cases; when wrapping, it is the message of the
	// gateway's own envelope; either way it is safe to log and record.
	Message string
	// Detail is the sanitized text taken from the body (the JSON error
	// message, or the text of a plain or HTML body), "" when there was none.
	Detail string
}

// Inspect looks at an upstream's non-2xx response: its status, its
// Content-Type header and the first bytes of its body (callers read at most
// a few KiB; a body cut short does not parse as JSON and is wrapped).
func Inspect(status int, contentType string, body []byte) Verdict {
	var v Verdict
	obj, err := jsonscan.Scan(body, jsonscan.Options{MaxDepth: 32})
	isJSON := err == nil
	if isJSON {
		var msg string
		var openaiShape bool
		msg, openaiShape = jsonMessage(&obj)
		v.Detail = Sanitize([]byte(msg), MaxMessage)
		v.PassThrough = openaiShape && jsonType(contentType) && !sensitive(body)
	} else {
		v.Detail = Sanitize(body, MaxMessage)
	}
	v.Message = message(status, v.Detail)
	return v
}

// message builds "upstream returned 404 Not Found: detail", cut to MaxMessage.
func message(status int, detail string) string {
	head := fmt.Sprintf("upstream returned %d", status)
	if t := http.StatusText(status); t != "" {
		head += " " + t
	}
	if detail == "" || strings.EqualFold(strings.TrimSpace(detail), http.StatusText(status)) {
		return head
	}
	return cut(head+": "+detail, MaxMessage)
}

// jsonType reports whether a Content-Type names JSON (application/json or
// any +json type). A missing Content-Type counts, as some upstreams omit it.
func jsonType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// jsonMessage returns the error message of a JSON error body, trying the
// shapes upstreams use: OpenAI's {"error":{"message":..}} (openai is true
// then), {"error":"..."}, {"message":"..."}, {"detail":"..."} (FastAPI,
// vLLM) and {"error_description":"..."} (OAuth).
func jsonMessage(obj *jsonscan.Object) (msg string, openai bool) {
	if raw, ok, err := obj.Field("error"); ok && err == nil {
		if inner, err := jsonscan.Scan(raw, jsonscan.Options{MaxDepth: 31}); err == nil {
			if m, ok, err := inner.Field("message"); ok && err == nil {
				if s, err := jsonscan.String(m); err == nil {
					return s, true
				}
			}
		}
		if s, err := jsonscan.String(raw); err == nil {
			return s, false
		}
	}
	for _, name := range []string{"message", "detail", "error_description"} {
		if raw, ok, err := obj.Field(name); ok && err == nil {
			if s, err := jsonscan.String(raw); err == nil {
				return s, false
			}
		}
	}
	return "", false
}

var (
	// Markup whose content is not text.
	htmlHidden = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)\s*>|<!--.*?(-->|$)`)
	htmlTitle  = regexp.MustCompile(`(?is)<title\b[^>]*>(.*?)</title\s*>`)
	htmlTag    = regexp.MustCompile(`(?s)</?[a-zA-Z!][^>]*(>|$)`)
	// A URL, to rebuild without userinfo, query and fragment.
	urlPattern = regexp.MustCompile(`\b[a-zA-Z][a-zA-Z0-9+.\-]{1,15}://[^\s"'<>` + "`" + `]+`)
	// Go's net.OpError text: "read tcp 127.0.0.1:54786->10.1.2.3:443".
	sockPair = regexp.MustCompile(`\b(read|write|dial|listen|accept|close) (tcp|udp|ip|unix)[46]?\s+\S*[^\s:]`)
	// IPv4 with optional port, bracketed IPv6 with optional port.
	ipv4 = regexp.MustCompile(`(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?`)
	ipv6 = regexp.MustCompile(`\[[0-9A-Fa-f:.]+(?:%[\w.\-]+)?\](?::\d{1,5})?`)
	// Candidates for bare IPv6 addresses, confirmed with net.ParseIP.
	ipv6Bare = regexp.MustCompile(`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}`)
	// Credentials: gateway and provider keys, bearer tokens, key=value pairs.
	secretToken = regexp.MustCompile(`(?i)\b(tg-|sk-|sk_|key-|bearer\s+)[A-Za-z0-9_*\-]{4,}(?:\.[A-Za-z0-9_*\-]+)*`)
	secretPair  = regexp.MustCompile(`(?i)\b(api[_\-]?key|access[_\-]?token|token|password|passwd|secret|authorization)("?\s*[:=]\s*"?)[^\s"'&,;]+`)
)

// Sanitize turns upstream-supplied bytes into one line of plain text of at
// most limit bytes (cut at a UTF-8 rune boundary): HTML reduced to its title or
// its text, whitespace and control characters collapsed to single spaces,
// invalid UTF-8 replaced, URLs stripped of credentials, query and fragment,
// socket addresses replaced by "[address]", and things that look like keys
// or tokens replaced by "[redacted]". limit <= 0 means MaxMessage.
func Sanitize(b []byte, limit int) string {
	if limit <= 0 {
		limit = MaxMessage
	}
	if len(b) > maxInput {
		b = b[:maxInput]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if looksHTML(s) {
		s = stripHTML(s)
	}
	s = collapse(s)
	s = redact(s)
	return cut(s, limit)
}

// sensitive reports whether an upstream body would lose something to
// Sanitize's address or credential rules, so it must not pass through.
func sensitive(b []byte) bool {
	s := string(b)
	return sockPair.MatchString(s) || ipv4.MatchString(s) || ipv6.MatchString(s) ||
		hasBareIPv6(s) || secretToken.MatchString(s) || secretPair.MatchString(s) ||
		strings.Contains(s, "://") && urlPattern.MatchString(s) && redactURLs(s) != s
}

func looksHTML(s string) bool {
	i := strings.IndexByte(s, '<')
	return i >= 0 && htmlTag.MatchString(s[i:])
}

// stripHTML keeps a page's <title> when it has one (CDN error pages put the
// status there and boilerplate in the body), else the text of the body.
func stripHTML(s string) string {
	if m := htmlTitle.FindStringSubmatch(s); m != nil && strings.TrimSpace(htmlTag.ReplaceAllString(m[1], " ")) != "" {
		return html.UnescapeString(htmlTag.ReplaceAllString(m[1], " "))
	}
	s = htmlHidden.ReplaceAllString(s, " ")
	s = htmlTag.ReplaceAllString(s, " ")
	return html.UnescapeString(s)
}

// collapse replaces every run of whitespace and control characters with
// one space and trims the ends.
func collapse(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func redact(s string) string {
	s = redactURLs(s)
	s = sockPair.ReplaceAllString(s, "$1 $2 [address]")
	s = ipv6.ReplaceAllString(s, "[address]")
	s = ipv4.ReplaceAllString(s, "[address]")
	s = ipv6Bare.ReplaceAllStringFunc(s, func(m string) string {
		if isIPv6(m) {
			return "[address]"
		}
		return m
	})
	s = secretToken.ReplaceAllString(s, "[redacted]")
	s = secretPair.ReplaceAllString(s, "$1$2[redacted]")
	return s
}

// redactURLs rewrites each URL as scheme://host/path: userinfo, query and
// fragment may hold credentials (?key=..., https://user:pass@host).
func redactURLs(s string) string {
	return urlPattern.ReplaceAllStringFunc(s, func(m string) string {
		trail := ""
		for strings.HasSuffix(m, ".") || strings.HasSuffix(m, ",") || strings.HasSuffix(m, ")") {
			trail = m[len(m)-1:] + trail
			m = m[:len(m)-1]
		}
		u, err := url.Parse(m)
		if err != nil || u.Host == "" {
			scheme, _, _ := strings.Cut(m, "://")
			return scheme + "://[url]" + trail
		}
		return u.Scheme + "://" + u.Host + u.EscapedPath() + trail
	})
}

func hasBareIPv6(s string) bool {
	for _, m := range ipv6Bare.FindAllString(s, 8) {
		if isIPv6(m) {
			return true
		}
	}
	return false
}

func isIPv6(m string) bool {
	ip := net.ParseIP(m)
	return ip != nil && strings.Contains(m, ":")
}

// cut returns s cut to at most limit bytes at a rune boundary, marking the
// cut with "…".
func cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ell = "…"
	n := limit - len(ell)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	if n <= 0 {
		return ""
	}
	return strings.TrimRight(s[:n], " ") + ell
}
