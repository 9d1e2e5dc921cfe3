package jsonscan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Form bodies (audio transcriptions, image edits) carry the same routing
// fields as JSON ones, and the same ambiguity applies: the gateway must read
// exactly the value the upstream will read, or refuse.

// Form errors, matched with errors.Is.
var (
	// ErrForm means the body is not a well-formed form of its Content-Type,
	// or a requested field is sent in a shape whose value is ambiguous (as a
	// file, or with a Content-Transfer-Encoding).
	ErrForm = errors.New("invalid form body")
	// ErrFormLimit means the form has more parts than FormLimits.MaxParts or
	// a requested field is longer than FormLimits.MaxFieldSize.
	ErrFormLimit = errors.New("form body exceeds limits")
)

// Defaults for FormLimits fields left zero.
const (
	DefaultMaxParts     = 1000
	DefaultMaxFieldSize = 64 << 10
)

// FormLimits bound the work ScanForm does on a hostile body.
type FormLimits struct {
	// MaxParts is the most parts (multipart) or pairs (urlencoded) read;
	// more is ErrFormLimit. Zero means DefaultMaxParts.
	MaxParts int
	// MaxFieldSize is the most bytes of one requested field's value; more
	// is ErrFormLimit. Other fields and files are skipped unread (they are
	// in memory already, so skipping costs one pass and no copy). Zero
	// means DefaultMaxFieldSize.
	MaxFieldSize int
}

func (l FormLimits) parts() int {
	if l.MaxParts <= 0 {
		return DefaultMaxParts
	}
	return l.MaxParts
}

func (l FormLimits) fieldSize() int {
	if l.MaxFieldSize <= 0 {
		return DefaultMaxFieldSize
	}
	return l.MaxFieldSize
}

// ScanForm reads the text fields named in names from a form body held in
// memory, given its Content-Type header: multipart/form-data or
// application/x-www-form-urlencoded. The result maps each name found to its
// value. Names match case-insensitively like Object.Field; a name present more
// than once (counting case variants) is an error wrapping ErrDuplicate. Any
// other Content-Type is ErrForm.
//
//	vals, err := jsonscan.ScanForm(body, r.Header.Get("Content-Type"),
//		[]string{"model", "user", "stream"}, jsonscan.FormLimits{})
func ScanForm(body []byte, contentType string, names []string, lim FormLimits) (map[string]string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("%w: Content-Type: %s", ErrForm, short(err.Error()))
	}
	switch mt {
	case "multipart/form-data":
		return ScanMultipart(body, params["boundary"], names, lim)
	case "application/x-www-form-urlencoded":
		return ScanURLEncoded(body, names, lim)
	}
	return nil, fmt.Errorf("%w: Content-Type %s is not a form", ErrForm, quoteKey([]byte(mt)))
}

// ScanMultipart is ScanForm for a multipart/form-data body with the given
// boundary. File parts are skipped unread unless their name is requested,
// which is ErrForm: a file is not a model name. Every part must carry a
// Content-Disposition with a plain name parameter (RFC 7578 section 4.2),
// else ErrForm. A requested field with a
// Content-Transfer-Encoding (Go decodes quoted-printable, most servers do
// not) is ErrForm too, so both sides read the same bytes.
func ScanMultipart(body []byte, boundary string, names []string, lim FormLimits) (map[string]string, error) {
	if boundary == "" {
		return nil, fmt.Errorf("%w: multipart boundary missing", ErrForm)
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	out := make(map[string]string, len(names))
	for n := 0; ; n++ {
		// NextRawPart, not NextPart: it leaves quoted-printable parts
		// undecoded, so the check below can see the header.
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrForm, short(err.Error()))
		}
		if n >= lim.parts() {
			return nil, fmt.Errorf("%w: more than %d parts", ErrFormLimit, lim.parts())
		}
		field, isFile, err := partName(p.Header.Get("Content-Disposition"))
		if err != nil {
			return nil, fmt.Errorf("%w: part %d: %v", ErrForm, n+1, err)
		}
		name := matchName(field, names)
		if name == "" {
			continue // the next NextRawPart reads past this one
		}
		if isFile {
			return nil, fmt.Errorf("%w: field %q is a file", ErrForm, name)
		}
		switch cte := strings.ToLower(p.Header.Get("Content-Transfer-Encoding")); cte {
		case "", "7bit", "8bit", "binary":
		default:
			return nil, fmt.Errorf("%w: field %q has Content-Transfer-Encoding %s", ErrForm, name, quoteKey([]byte(cte)))
		}
		v, err := io.ReadAll(io.LimitReader(p, int64(lim.fieldSize())+1))
		if err != nil {
			return nil, fmt.Errorf("%w: field %q: %s", ErrForm, name, short(err.Error()))
		}
		if err := set(out, name, string(v), lim); err != nil {
			return nil, err
		}
	}
}

// ScanURLEncoded is ScanForm for an application/x-www-form-urlencoded body.
// Like net/url.ParseQuery it rejects a ';' anywhere in a pair (older
// servers split pairs on it, newer ones do not, so "model=a;model=b" means
// different things to each), and malformed %-escapes in the fields it reads.
func ScanURLEncoded(body []byte, names []string, lim FormLimits) (map[string]string, error) {
	out := make(map[string]string, len(names))
	rest := string(body)
	for n := 0; rest != ""; n++ {
		if n >= lim.parts() {
			return nil, fmt.Errorf("%w: more than %d fields", ErrFormLimit, lim.parts())
		}
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if strings.Contains(pair, ";") {
			return nil, fmt.Errorf("%w: invalid semicolon separator", ErrForm)
		}
		key, val, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(key, "%+") {
			k, err := url.QueryUnescape(key)
			if err != nil {
				return nil, fmt.Errorf("%w: %s", ErrForm, short(err.Error()))
			}
			key = k
		}
		name := matchName(key, names)
		if name == "" {
			continue
		}
		v, err := url.QueryUnescape(val)
		if err != nil {
			return nil, fmt.Errorf("%w: field %q: %s", ErrForm, name, short(err.Error()))
		}
		if err := set(out, name, v, lim); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// partName reads a part's field name from its Content-Disposition header,
// stricter than Part.FormName so no parser can see a different name: the
// header must parse (no duplicate parameters), must name the field, and must
// not also carry an RFC 2231 "name*" (which Go decodes and others ignore).
// The disposition type is not checked (FormName ignores parts that are not
// "form-data"; other parsers do not). isFile is true when a filename
// parameter is present at all, even empty, as most servers then see a file.
func partName(disposition string) (name string, isFile bool, err error) {
	if strings.Contains(strings.ToLower(disposition), "name*") {
		return "", false, errors.New("RFC 2231 encoded parameter in Content-Disposition")
	}
	_, params, err := mime.ParseMediaType(disposition)
	if err != nil {
		return "", false, fmt.Errorf("Content-Disposition: %s", short(err.Error()))
	}
	name, ok := params["name"]
	if !ok {
		return "", false, errors.New("Content-Disposition without a name")
	}
	_, isFile = params["filename"]
	return name, isFile, nil
}

// matchName returns the requested name key matches under case folding, or "".
func matchName(key string, names []string) string {
	for _, n := range names {
		if foldEqual([]byte(key), n) {
			return n
		}
	}
	return ""
}

func set(out map[string]string, name, v string, lim FormLimits) error {
	if len(v) > lim.fieldSize() {
		return fmt.Errorf("%w: field %q longer than %d bytes", ErrFormLimit, name, lim.fieldSize())
	}
	if _, dup := out[name]; dup {
		return fmt.Errorf("%w: form field %q appears more than once", ErrDuplicate, name)
	}
	out[name] = v
	return nil
}

// short bounds an error text that may quote client bytes (textproto quotes a
// malformed header line whole), so a hostile body cannot make a long error.
func short(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
