package responses

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
)

func TestHeadRefusesAmbiguity(t *testing.T) {
	tests := []struct {
		name, body string
		wantCode   string
	}{
		{"plain", `{"model":"m","input":"hi"}`, ""},
		{"case variant", `{"model":"m","MODEL":"other","input":"hi"}`, "duplicate_field"},
		{"variant alone", `{"Model":"m","input":"hi"}`, "duplicate_field"},
		{"store twice", `{"model":"m","store":false,"Store":true,"input":"hi"}`, "duplicate_field"},
		{"deep", `{"model":"m","input":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`, "json_too_deep"},
		{"not json", `{"model":`, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{}).Parse(&proxy.Inbound{Method: http.MethodPost, Path: "/responses", Body: []byte(tt.body)})
			code := ""
			if e, ok := errors.AsType[*apierr.Error](err); ok {
				code = e.Code
			} else if err != nil {
				t.Fatalf("err %v is not an *apierr.Error", err)
			}
			if code != tt.wantCode {
				t.Errorf("code %q (%v); want %q", code, err, tt.wantCode)
			}
		})
	}
}
