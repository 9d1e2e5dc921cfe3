package realip

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted, err := ParseTrusted([]string{"10.0.0.0/8, 127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies trusted ignores the header", nil, "203.0.113.9:4000", []string{"1.1.1.1"}, "203.0.113.9"},
		{"untrusted peer cannot spoof", trusted, "203.0.113.9:4000", []string{"1.1.1.1"}, "203.0.113.9"},
		{"trusted peer, one client", trusted, "127.0.0.1:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"client-sent entry left of the real one is ignored", trusted, "127.0.0.1:5000",
			[]string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies", trusted, "127.0.0.1:5000",
			[]string{"6.6.6.6, 198.51.100.7, 10.1.2.3"}, "198.51.100.7"},
		{"several header lines read right to left", trusted, "127.0.0.1:5000",
			[]string{"6.6.6.6", "198.51.100.7", "10.1.2.3"}, "198.51.100.7"},
		{"every hop trusted gives the leftmost", trusted, "127.0.0.1:5000", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"trusted peer, no header", trusted, "127.0.0.1:5000", nil, "127.0.0.1"},
		{"garbage stops at the trusted hop", trusted, "127.0.0.1:5000", []string{"1.1.1.1, junk"}, "127.0.0.1"},
		{"garbage behind a trusted hop", trusted, "127.0.0.1:5000", []string{"junk, 10.0.0.5"}, "10.0.0.5"},
		{"empty entries are skipped", trusted, "127.0.0.1:5000", []string{"198.51.100.7,,"}, "198.51.100.7"},
		{"ipv6 peer and client", trusted, "[::1]:5000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"entry with port", trusted, "127.0.0.1:5000", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"v4-mapped peer is trusted", trusted, "[::ffff:127.0.0.1]:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"peer without port", trusted, "127.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"too many hops", trusted, "127.0.0.1:5000", []string{strings.Repeat("10.0.0.1,", 40) + "10.0.0.2"}, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			rv := &Resolver{Trusted: tt.trusted}
			if got := rv.ClientIP(r); got != tt.want {
				t.Errorf("ClientIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTrusted(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		wantErr bool
	}{
		{nil, "", false},
		{[]string{"10.1.2.3/8"}, "10.0.0.0/8", false},
		{[]string{"127.0.0.1,::1"}, "127.0.0.1/32 ::1/128", false},
		{[]string{" 192.168.0.0/16 ", ""}, "192.168.0.0/16", false},
		{[]string{"::ffff:10.0.0.1"}, "10.0.0.1/32", false},
		{[]string{"nginx"}, "", true},
		{[]string{"10.0.0.0/33"}, "", true},
	}
	for _, tt := range tests {
		got, err := ParseTrusted(tt.in)
		if (err != nil) != tt.wantErr {
			t.Fatalf("ParseTrusted(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, " ") != tt.want {
			t.Errorf("ParseTrusted(%q) = %q, want %q", tt.in, s, tt.want)
		}
	}
}

// FuzzClientIP checks the invariants that make the header safe to read: the
// answer is the peer or one of the header's addresses, an untrusted peer is
// always answered as itself, and the walk never panics.
func FuzzClientIP(f *testing.F) {
	f.Add("127.0.0.1:1", "1.2.3.4, 10.0.0.1")
	f.Add("203.0.113.1:1", "1.2.3.4")
	f.Add("[::1]:1", "[2001:db8::1]:80,junk,,")
	trusted, _ := ParseTrusted([]string{"127.0.0.0/8", "10.0.0.0/8", "::1"})
	rv := &Resolver{Trusted: trusted}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		got := rv.ClientIP(r)
		p, ok := parseAddr(peerAddr(peer))
		if !ok || !rv.trusted(p) {
			if got != peerAddr(peer) {
				t.Fatalf("untrusted peer %q answered as %q", peer, got)
			}
			return
		}
		if got == p.String() {
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("answer %q is not an address", got)
		}
		found := false
		for e := range strings.SplitSeq(xff, ",") {
			if b, ok := parseAddr(strings.TrimSpace(e)); ok && b == a {
				found = true
			}
		}
		if !found {
			t.Fatalf("answer %q is neither the peer nor in %q", got, xff)
		}
	})
}
