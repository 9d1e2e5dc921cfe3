package anthropic

import (
	"hash/fnv"
)

// maxToolName is the longest function name OpenAI accepts
// (^[a-zA-Z0-9_-]{1,64}$); Anthropic allows longer names and more characters
// (MCP tools are named "mcp__server__tool").
const maxToolName = 64

// toolNames maps tool names that an OpenAI-compatible upstream would reject
// to names it accepts, and back. The mapping is a pure function of the name,
// so the tools list, tool_choice and earlier tool_use blocks agree; back
// holds only the names that changed (nil when none did).
type toolNames struct {
	back map[string]string // upstream name -> client name
}

// up returns the upstream name for a client's tool name and remembers it.
func (n *toolNames) up(name string) string {
	if validToolName(name) {
		return name
	}
	u := shortName(name)
	if n.back == nil {
		n.back = make(map[string]string)
	}
	n.back[u] = name
	return u
}

// client returns the client's name for a name the upstream used.
func (n *toolNames) client(name string) string {
	if c, ok := n.back[name]; ok {
		return c
	}
	return name
}

func validToolName(s string) bool {
	if len(s) == 0 || len(s) > maxToolName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !validToolByte(s[i]) {
			return false
		}
	}
	return true
}

func validToolByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// shortName replaces the characters OpenAI rejects with "_", keeps at most
// 55 bytes and appends "_" and 8 hex digits of a hash of the whole name, so
// two names that differ only past the cut or in a replaced character stay
// apart.
func shortName(s string) string {
	const keep = maxToolName - 9
	h := fnv.New32a()
	h.Write([]byte(s))
	sum := h.Sum32()
	b := make([]byte, 0, maxToolName)
	for i := 0; i < len(s) && len(b) < keep; i++ {
		c := s[i]
		if !validToolByte(c) {
			c = '_'
		}
		b = append(b, c)
	}
	b = append(b, '_')
	const hex = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, hex[(sum>>uint(shift))&0xF])
	}
	return string(b)
}
