package jsonscan

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// part is one multipart part for mpBody.
type part struct {
	name, file, value string
	header            map[string]string // extra headers
}

func mpBody(t testing.TB, parts ...part) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary("XyZ-boundary"); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disp := `form-data; name="` + p.name + `"`
		if p.file != "" {
			disp += `; filename="` + p.file + `"`
		}
		h.Set("Content-Disposition", disp)
		for k, v := range p.header {
			h.Set(k, v)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write([]byte(p.value))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

var routing = []string{"model", "user"}

func TestScanMultipart(t *testing.T) {
	audio := strings.Repeat("\x00\xffRIFF", 100_000) // a 700 KB "file"
	tests := []struct {
		name    string
		parts   []part
		lim     FormLimits
		want    map[string]string
		wantErr error
	}{
		{"model and user", []part{{name: "file", file: "a.wav", value: audio}, {name: "model", value: "whisper-1"},
			{name: "user", value: "u1"}, {name: "language", value: "en"}},
			FormLimits{}, map[string]string{"model": "whisper-1", "user": "u1"}, nil},
		{"no model", []part{{name: "prompt", value: "x"}}, FormLimits{}, map[string]string{}, nil},
		{"upper-case name", []part{{name: "MODEL", value: "m"}}, FormLimits{}, map[string]string{"model": "m"}, nil},
		{"empty value", []part{{name: "model", value: ""}}, FormLimits{}, map[string]string{"model": ""}, nil},
		{"duplicate model", []part{{name: "model", value: "a"}, {name: "model", value: "b"}}, FormLimits{}, nil, ErrDuplicate},
		{"case variant model", []part{{name: "model", value: "a"}, {name: "Model", value: "b"}}, FormLimits{}, nil, ErrDuplicate},
		{"model as a file", []part{{name: "model", file: "m.txt", value: "a"}}, FormLimits{}, nil, ErrForm},
		{"quoted-printable model", []part{{name: "model", value: "gpt=2D4o", header: map[string]string{
			"Content-Transfer-Encoding": "quoted-printable"}}}, FormLimits{}, nil, ErrForm},
		{"binary CTE is fine", []part{{name: "model", value: "m", header: map[string]string{
			"Content-Transfer-Encoding": "binary"}}}, FormLimits{}, map[string]string{"model": "m"}, nil},
		{"QP on other field is fine", []part{{name: "prompt", value: "a=3Db", header: map[string]string{
			"Content-Transfer-Encoding": "quoted-printable"}}, {name: "model", value: "m"}},
			FormLimits{}, map[string]string{"model": "m"}, nil},
		{"too many parts", []part{{name: "a"}, {name: "b"}, {name: "c"}}, FormLimits{MaxParts: 2}, nil, ErrFormLimit},
		{"parts at the limit", []part{{name: "a"}, {name: "model", value: "m"}}, FormLimits{MaxParts: 2},
			map[string]string{"model": "m"}, nil},
		{"field too large", []part{{name: "model", value: strings.Repeat("m", 11)}}, FormLimits{MaxFieldSize: 10}, nil, ErrFormLimit},
		{"field at the limit", []part{{name: "model", value: strings.Repeat("m", 10)}}, FormLimits{MaxFieldSize: 10},
			map[string]string{"model": strings.Repeat("m", 10)}, nil},
		{"attachment disposition still names the field", []part{{name: "x", value: "m", header: map[string]string{
			"Content-Disposition": `attachment; name="model"`}}}, FormLimits{}, map[string]string{"model": "m"}, nil},
		{"large file is not a field", []part{{name: "file", file: "a", value: audio}, {name: "model", value: "m"}},
			FormLimits{MaxFieldSize: 10}, map[string]string{"model": "m"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := mpBody(t, tt.parts...)
			got, err := ScanForm(body, ct, routing, tt.lim)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ScanForm = %v, %v; want error %v", got, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
				t.Errorf("ScanForm (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScanFormMalformed(t *testing.T) {
	good, ct := mpBody(t, part{name: "model", value: "m"})
	tests := []struct {
		name, ct string
		body     []byte
	}{
		{"no boundary", "multipart/form-data", good},
		{"bad content type", "multipart/form-data; boundary", good},
		{"duplicate boundary param", ct + "; boundary=other", good},
		{"json is not a form", "application/json", []byte(`{"model":"m"}`)},
		{"wrong boundary", "multipart/form-data; boundary=nope", good},
		{"truncated", ct, good[:len(good)-10]},
		{"garbage", ct, []byte("\x00\x01--XyZ-boundary\r\nxx")},
	}
	raw := func(disposition string) []byte {
		return []byte("--B\r\n" + disposition + "\r\n\r\nm\r\n--B--\r\n")
	}
	for _, r := range []struct{ name, disp string }{
		{"no disposition", "Content-Type: text/plain"},
		{"no name", "Content-Disposition: form-data"},
		{"duplicate name", `Content-Disposition: form-data; name="user"; name="model"`},
		{"rfc 2231 name", `Content-Disposition: form-data; name="user"; name*=UTF-8''model`},
		{"model as empty filename", `Content-Disposition: form-data; name="model"; filename=""`},
		{"attachment model as file", `Content-Disposition: attachment; name="model"; filename="x"`},
	} {
		tests = append(tests, struct {
			name, ct string
			body     []byte
		}{r.name, "multipart/form-data; boundary=B", raw(r.disp)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ScanForm(tt.body, tt.ct, routing, FormLimits{}); !errors.Is(err, ErrForm) {
				t.Errorf("ScanForm = %v, %v; want ErrForm", got, err)
			}
		})
	}
}

func TestScanURLEncoded(t *testing.T) {
	const ct = "application/x-www-form-urlencoded"
	tests := []struct {
		body    string
		lim     FormLimits
		want    map[string]string
		wantErr error
	}{
		{"model=gpt-4o&user=u%201&x=y", FormLimits{}, map[string]string{"model": "gpt-4o", "user": "u 1"}, nil},
		{"model=a+b&other", FormLimits{}, map[string]string{"model": "a b"}, nil},
		{"%6Dodel=x", FormLimits{}, map[string]string{"model": "x"}, nil},
		{"MODEL=x", FormLimits{}, map[string]string{"model": "x"}, nil},
		{"", FormLimits{}, map[string]string{}, nil},
		{"model", FormLimits{}, map[string]string{"model": ""}, nil},
		{"model=a&model=b", FormLimits{}, nil, ErrDuplicate},
		{"model=a&%4dodel=b", FormLimits{}, nil, ErrDuplicate},
		{"model=a;model=b", FormLimits{}, nil, ErrForm},
		{"x=1;model=b", FormLimits{}, nil, ErrForm},
		{"model=%zz", FormLimits{}, nil, ErrForm},
		{"%zz=1", FormLimits{}, nil, ErrForm},
		{"other=%zz&model=m", FormLimits{}, map[string]string{"model": "m"}, nil},
		{"a&b&c", FormLimits{MaxParts: 2}, nil, ErrFormLimit},
		{"model=" + strings.Repeat("m", 11), FormLimits{MaxFieldSize: 10}, nil, ErrFormLimit},
	}
	for _, tt := range tests {
		got, err := ScanForm([]byte(tt.body), ct, routing, tt.lim)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("ScanForm(%q) = %v, %v; want error %v", tt.body, got, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
			t.Errorf("ScanForm(%q) (-want +got):\n%s", tt.body, diff)
		}
	}
}

func FuzzMultipart(f *testing.F) {
	seed := func(parts ...part) {
		body, ct := mpBody(f, parts...)
		f.Add(body, ct)
	}
	seed(part{name: "model", value: "whisper-1"}, part{name: "file", file: "a.wav", value: "RIFF\x00\x01"})
	seed(part{name: "model", value: "a"}, part{name: "MODEL", value: "b"})
	seed(part{name: "model", value: "gpt=2D4o", header: map[string]string{"Content-Transfer-Encoding": "quoted-printable"}})
	seed(part{name: "user", value: "u"}, part{name: "prompt", value: "p"})
	f.Add([]byte("model=a&user=b%20c"), "application/x-www-form-urlencoded")
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--B--\r\n"), "multipart/form-data; boundary=B")
	lim := FormLimits{MaxParts: 8, MaxFieldSize: 32}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		got, err := ScanForm(body, ct, routing, lim)
		if err != nil {
			if !errors.Is(err, ErrForm) && !errors.Is(err, ErrFormLimit) && !errors.Is(err, ErrDuplicate) {
				t.Fatalf("ScanForm error %v wraps no sentinel", err)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error message is %d bytes", len(err.Error()))
			}
			return
		}
		for k, v := range got {
			if k != "model" && k != "user" {
				t.Fatalf("unrequested key %q", k)
			}
			if len(v) > lim.MaxFieldSize {
				t.Fatalf("value of %q is %d bytes; limit %d", k, len(v), lim.MaxFieldSize)
			}
		}
	})
}
