// Package httpfield checks HTTP header field names for the gateway's own
// HTTP/1.1 writers (the upstream client and the taken stream connections),
// which write fields without net/http.
package httpfield

import "strings"

// ValidName reports whether k is an HTTP token (RFC 9110 5.1), as a field
// name must be.
func ValidName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
