package anthropic

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
)

// TestHeadRefusesWhatUpstreamsReadDifferently: the fields that decide
// routing, permissions and metering are read as case-insensitive upstreams
// read them; ambiguity and hostile nesting are 400s in Anthropic's shape.
func TestHeadRefusesWhatUpstreamsReadDifferently(t *testing.T) {
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body string
		wantParam  string // "" = accepted
	}{
		{"plain", `{"model":"claude-x","max_tokens":10,` + msgs + `}`, ""},
		{"case variant model", `{"model":"claude-x","MODEL":"gpt-4o","max_tokens":10,` + msgs + `}`, "model"},
		{"duplicate stream", `{"model":"m","stream":true,"Stream":false,"max_tokens":10,` + msgs + `}`, "stream"},
		{"duplicate user id", `{"model":"m","max_tokens":10,"metadata":{"user_id":"a","USER_ID":"b"},` + msgs + `}`, "metadata.user_id"},
		{"max_tokens as text", `{"model":"m","max_tokens":"10",` + msgs + `}`, "max_tokens"},
		{"too deep", `{"model":"m","max_tokens":10,"x":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `,` + msgs + `}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(nil).Parse(&proxy.Inbound{Method: http.MethodPost, Path: PathMessages, Body: []byte(tt.body)})
			e, isAPI := errors.AsType[*apierr.Error](err)
			switch {
			case tt.name == "too deep":
				if !isAPI || e.Status != 400 || !strings.Contains(e.Message, "deeper") {
					t.Errorf("err = %v; want a 400 about nesting", err)
				}
			case tt.wantParam == "":
				if err != nil {
					t.Errorf("err = %v; want accepted", err)
				}
			case !isAPI || e.Status != 400 || e.Param != tt.wantParam:
				t.Errorf("err = %#v; want a 400 for %q", err, tt.wantParam)
			}
		})
	}
}
