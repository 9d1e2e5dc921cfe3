package proxy

import (
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// maxLoggedBody bounds a body kept in the ledger.
const maxLoggedBody = 64 << 10

// contentPaths are the fields that carry message content, in requests and
// responses, removed from logged bodies unless LogContent is on.
var contentPaths = []string{"messages", "prompt", "input", "choices", "system", "instructions"}

// loggedBodies fills the record's bodies when LogBodies is on.
func (ex *exchange) loggedBodies() {
	p := ex.p
	if !p.LogBodies {
		return
	}
	ex.rec.RequestBody = p.keepBody(ex.body)
	switch {
	case ex.head.Stream && ex.content != nil && p.LogContent:
		out, _ := sjson.SetBytes([]byte(`{}`), "content", string(ex.content))
		ex.rec.ResponseBody = out
	case len(ex.tail) > 0 && gjson.ValidBytes(ex.tail):
		ex.rec.ResponseBody = p.keepBody(ex.tail)
	}
}

// keepBody returns a bounded copy of a JSON body, with content removed
// unless LogContent.
func (p *Proxy) keepBody(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	out := append([]byte(nil), b...)
	if !p.LogContent && gjson.ValidBytes(out) {
		for _, path := range contentPaths {
			if gjson.GetBytes(out, path).Exists() {
				out, _ = sjson.SetBytes(out, path, "[content removed]")
			}
		}
	}
	if len(out) > maxLoggedBody {
		out = out[:maxLoggedBody]
	}
	return out
}
