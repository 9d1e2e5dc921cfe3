package openai

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"
)

// Bounds of a multipart head read: the form is in memory already; these keep
// a crafted one from costing more than a scan.
const (
	maxFormParts = 1000
	maxFormField = 64 << 10
)

// parseForm reads the model and user fields of a multipart upload (audio,
// files, image edits) for permissions, routing and the ledger. The body is
// forwarded unchanged.
func (r *request) parseForm(ct string) error {
	_, params, err := mime.ParseMediaType(ct)
	if err != nil || params["boundary"] == "" {
		return BadRequest("invalid_body", "the multipart body has no boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(r.in.Body), params["boundary"])
	seen := map[string]bool{}
	for range maxFormParts {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return BadRequest("invalid_body", "the multipart body is malformed")
		}
		name := strings.ToLower(p.FormName())
		if p.FileName() != "" || (name != "model" && name != "user" && name != "stream") {
			continue // NextPart skips the rest of a part unread
		}
		if seen[name] {
			return BadRequest("duplicate_field", "the form field '"+name+"' appears more than once")
		}
		seen[name] = true
		v, err := io.ReadAll(io.LimitReader(p, maxFormField+1))
		if err != nil || len(v) > maxFormField {
			return BadRequest("invalid_body", "the form field '"+name+"' is malformed or too long")
		}
		switch name {
		case "model":
			r.head.Model = string(v)
		case "user":
			r.head.User = string(v)
		case "stream":
			r.head.Stream = string(v) == "true"
		}
	}
	return BadRequest("invalid_body", "the multipart body has too many parts")
}
