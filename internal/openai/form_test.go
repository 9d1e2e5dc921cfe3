package openai

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/jsonscan"
	"github.com/tollgate/tollgate/internal/upstream"
)

// multipartBody builds an upload with a model field and a binary file part.
func multipartBody(t *testing.T, model string, file []byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, err := mw.CreateFormFile("file", "a.wav")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(file)
	mw.WriteField("model", model)
	mw.WriteField("language", "en")
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// readForm returns the fields and the file of a multipart body.
func readForm(t *testing.T, body []byte, ct string) (map[string]string, []byte) {
	t.Helper()
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	fields := map[string]string{}
	var file []byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return fields, file
		}
		if err != nil {
			t.Fatalf("upstream got a broken multipart body: %v", err)
		}
		data, _ := io.ReadAll(p)
		if p.FileName() != "" {
			file = data
			continue
		}
		fields[p.FormName()] = string(data)
	}
}

// An upstream's model map renames the model inside a form upload, as it
// does in a JSON body; the file reaches the upstream byte for byte.
func TestModelMapRenamesInsideForms(t *testing.T) {
	file := append([]byte("RIFF\x00\x01--not-a-boundary\r\n"), bytes.Repeat([]byte{0xff, 0x00}, 3000)...)
	f := newFleet(t, func(cfgs []upstream.Config, o *upstream.Options) {
		cfgs[0].ModelMap = map[string]string{"whisper": "openai/whisper-1"}
	})
	post := func(t *testing.T, body []byte, ct string) {
		t.Helper()
		status, _, out := f.post(t, "/v1/audio/transcriptions", string(body), "Content-Type", ct)
		if status != 200 {
			t.Fatalf("status %d: %s", status, out)
		}
	}
	t.Run("multipart", func(t *testing.T) {
		body, ct := multipartBody(t, "whisper", file)
		post(t, body, ct)
		reqs := f.fakes[0].Requests()
		got := reqs[len(reqs)-1]
		fields, gotFile := readForm(t, got.Body, got.Header.Get("Content-Type"))
		if fields["model"] != "openai/whisper-1" || fields["language"] != "en" {
			t.Errorf("upstream fields %v; want the mapped model and the other fields kept", fields)
		}
		if !bytes.Equal(gotFile, file) {
			t.Errorf("file changed on the way: %d bytes, want %d", len(gotFile), len(file))
		}
		if rec := f.rec.next(t); rec.Model != "whisper" || rec.Upstream != "a" {
			t.Errorf("record model=%q upstream=%q; want whisper via a", rec.Model, rec.Upstream)
		}
	})
	t.Run("urlencoded", func(t *testing.T) {
		post(t, []byte("model=whisper&user=u1&note=a%26b"), "application/x-www-form-urlencoded")
		reqs := f.fakes[0].Requests()
		vals, err := url.ParseQuery(string(reqs[len(reqs)-1].Body))
		if err != nil {
			t.Fatal(err)
		}
		if vals.Get("model") != "openai/whisper-1" || vals.Get("note") != "a&b" || vals.Get("user") != "u1" {
			t.Errorf("upstream form %v; want the mapped model and the other fields kept", vals)
		}
		f.rec.next(t)
	})
	t.Run("unmapped model is forwarded unchanged", func(t *testing.T) {
		body, ct := multipartBody(t, "whisper-2", file)
		post(t, body, ct)
		reqs := f.fakes[0].Requests()
		if got := reqs[len(reqs)-1].Body; !bytes.Equal(got, body) {
			t.Errorf("body changed although the model was not renamed")
		}
		f.rec.next(t)
	})
}

func TestSetFormModelRejectsBadType(t *testing.T) {
	if _, err := setFormModel([]byte("x"), "multipart/form-data; boundary=\"", "m"); err == nil || !strings.Contains(err.Error(), "Content-Type") {
		t.Errorf("err = %v; want a Content-Type error", err)
	}
}

// Any form ScanForm accepts can have its model renamed, and the result
// scans back with the new model and the same user.
func FuzzSetFormModel(f *testing.F) {
	body, ct := multipartBody(&testing.T{}, "whisper", []byte("abc"))
	f.Add(body, ct)
	f.Add([]byte("model=a&user=b"), "application/x-www-form-urlencoded")
	f.Add([]byte("model=a&x=%zz&user=u"), "application/x-www-form-urlencoded")
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--x--\r\n"), "multipart/form-data; boundary=x")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		before, err := jsonscan.ScanForm(body, ct, formFields, jsonscan.FormLimits{})
		if err != nil || before["model"] == "" {
			return
		}
		out, err := setFormModel(body, ct, "renamed/model-1")
		if err != nil {
			t.Fatalf("accepted form could not be rewritten: %v", err)
		}
		after, err := jsonscan.ScanForm(out, ct, formFields, jsonscan.FormLimits{})
		if err != nil {
			t.Fatalf("rewritten form does not scan: %v", err)
		}
		if after["model"] != "renamed/model-1" || after["user"] != before["user"] {
			t.Fatalf("after rewrite model=%q user=%q; before user=%q", after["model"], after["user"], before["user"])
		}
	})
}
