package openai

import (
	"errors"

	"github.com/tollgate/tollgate/internal/jsonscan"
)

// formFields are the fields of a form upload (audio, files, image edits)
// that decide permissions, routing and the ledger.
var formFields = []string{"model", "user", "stream"}

// parseForm reads the routing fields of a form body; the body itself is
// forwarded unchanged.
func (r *request) parseForm(ct string) error {
	vals, err := jsonscan.ScanForm(r.in.Body, ct, formFields, jsonscan.FormLimits{})
	if err != nil {
		code := "invalid_body"
		if errors.Is(err, jsonscan.ErrDuplicate) {
			code = "duplicate_field"
		}
		msg := err.Error()
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return BadRequest(code, "the form body cannot be read: "+msg)
	}
	r.head.Model, r.head.User, r.head.Stream = vals["model"], vals["user"], vals["stream"] == "true"
	return nil
}
