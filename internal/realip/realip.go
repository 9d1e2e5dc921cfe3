// Package realip finds the client address of a request that may have come
// through reverse proxies (nginx, a load balancer), without letting a client
// choose its own address by sending X-Forwarded-For.
//
// Each proxy appends the address it received the request from to
// X-Forwarded-For, so the list is only as trustworthy as the hop that wrote
// each entry. The Resolver starts at the TCP peer and walks the list from the
// right; it believes an entry only while the hop that wrote it is trusted, and
// answers with the first untrusted address it meets. A client talking to
// tollgate directly (an untrusted peer) gets its peer address whatever header
// it sends.
package realip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver answers the client address of requests. Its zero value trusts no
// proxy, so ClientIP is the TCP peer address.
type Resolver struct {
	// Trusted are the networks of the proxies in front of tollgate, whose
	// X-Forwarded-For entries are believed.
	Trusted []netip.Prefix
}

// maxHops bounds the X-Forwarded-For entries looked at, so a long header
// costs no more than a short one.
const maxHops = 32

// ParseTrusted parses a list of CIDRs or single addresses ("10.0.0.0/8",
// "127.0.0.1", "::1"). Entries may also be comma-separated within one string,
// as in the environment variable TOLLGATE_TRUSTED_PROXIES.
func ParseTrusted(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range list {
		for s := range strings.SplitSeq(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if strings.Contains(s, "/") {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
				}
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: not an IP address or CIDR", s)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// ClientIP returns the address of the client as a string: the peer address
// when the peer is not a trusted proxy, else the rightmost X-Forwarded-For
// entry that is not itself a trusted proxy. When every hop is trusted it is
// the leftmost entry. A malformed entry stops the walk and the answer is the
// trusted hop that passed it on: nothing left of garbage can be believed.
func (rv *Resolver) ClientIP(r *http.Request) string {
	peer := peerAddr(r.RemoteAddr)
	addr, ok := parseAddr(peer)
	if !ok || len(rv.Trusted) == 0 || !rv.trusted(addr) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	n := 0
	for i := len(hops) - 1; i >= 0; i-- {
		entries := hops[i]
		for entries != "" {
			var e string
			if j := strings.LastIndexByte(entries, ','); j >= 0 {
				entries, e = entries[:j], entries[j+1:]
			} else {
				entries, e = "", entries
			}
			if n++; n > maxHops {
				return addr.String()
			}
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			a, ok := parseAddr(e)
			if !ok {
				return addr.String()
			}
			addr = a
			if !rv.trusted(a) {
				return a.String()
			}
		}
	}
	return addr.String()
}

func (rv *Resolver) trusted(a netip.Addr) bool {
	for _, p := range rv.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the host part of RemoteAddr ("1.2.3.4:5678" -> "1.2.3.4").
func peerAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// parseAddr parses one address as proxies write it: bare, or as nginx and
// RFC 7239 may write it with a port or brackets ("[::1]:80", "1.2.3.4:80").
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}
