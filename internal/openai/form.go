package openai

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/url"

	"github.com/tollgate/tollgate/internal/jsonscan"
)

// formFields are the fields of a form upload (audio, files, image edits)
// that decide permissions, routing and the ledger.
var formFields = []string{"model", "user", "stream"}

// parseForm reads the routing fields of a form body; the body itself is
// forwarded unchanged unless the target renames the model.
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
	r.formType = ct
	return nil
}

// setFormModel returns body with its model field set to model. ScanForm has
// already accepted the body (one model field, plain parts), so only the
// model part changes; the others, files included, are copied as they are.
func setFormModel(body []byte, contentType, model string) ([]byte, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("openai: form Content-Type: %w", err)
	}
	if mt == "application/x-www-form-urlencoded" {
		// Pair by pair, so fields the gateway never decoded pass unchanged.
		pairs := bytes.Split(body, []byte("&"))
		for i, p := range pairs {
			k, _, _ := bytes.Cut(p, []byte("="))
			if key, err := url.QueryUnescape(string(k)); err == nil && key == "model" {
				pairs[i] = []byte("model=" + url.QueryEscape(model))
			}
		}
		return bytes.Join(pairs, []byte("&")), nil
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	out := bytes.NewBuffer(make([]byte, 0, len(body)+len(model)))
	mw := multipart.NewWriter(out)
	if err := mw.SetBoundary(params["boundary"]); err != nil {
		return nil, fmt.Errorf("openai: form boundary: %w", err)
	}
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("openai: form part: %w", err)
		}
		w, err := mw.CreatePart(p.Header)
		if err != nil {
			return nil, fmt.Errorf("openai: form part: %w", err)
		}
		if p.FormName() == "model" && p.FileName() == "" {
			_, err = io.WriteString(w, model)
		} else {
			_, err = io.Copy(w, p)
		}
		if err != nil {
			return nil, fmt.Errorf("openai: form part: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("openai: form: %w", err)
	}
	return out.Bytes(), nil
}
