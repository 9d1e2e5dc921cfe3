package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzDepth is small so the fuzzer reaches the depth limit often.
const fuzzDepth = 16

func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"a","MODEL":"b"}`, `{"mod\u0065l":"x"}`, `{"max_to\u212Aens":1}`, `{"ſtream":true}`,
		`{"a":[1,-0.5e+3,true,false,null,{"b":{}}]}`, `{"s":"\ud83d\ude80\ud800\"\\\/\b\f\n\r\t"}`,
		"{\"\xff\":\"\xfe\"}", `[1]`, `"x"`, `{"a":01}`, `{"a":1}x`, `{"a":[}`, "{\"a\":\"\x01\"}",
		`{"a":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}`, ` {"a" : { "b" : [ ] } } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		obj, err := Scan(in, Options{MaxDepth: fuzzDepth})
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Offset < 0 || e.Offset > len(in)) {
			t.Fatalf("Scan(%q) error %v: want *Error with offset in [0,%d]", in, err, len(in))
		}
		if errors.Is(err, ErrTooDeep) || errors.Is(err, ErrTooManyMembers) {
			return // limits encoding/json does not have; nothing to compare
		}
		valid := json.Valid(in)
		if got := err == nil || errors.Is(err, ErrNotObject); got != valid {
			t.Fatalf("Scan(%q) = %v; json.Valid = %v", in, err, valid)
		}
		if err != nil {
			return
		}
		// Members agree with encoding/json decoding into a map (last
		// duplicate wins in both).
		var ref map[string]json.RawMessage
		if err := json.Unmarshal(in, &ref); err != nil {
			t.Fatalf("json.Unmarshal(%q) into a map: %v", in, err)
		}
		got := make(map[string]json.RawMessage, obj.Len())
		for i := range obj.Len() {
			k, v := obj.Member(i)
			if !bytes.Contains(in, v) {
				t.Fatalf("member value %q is not part of the input", v)
			}
			got[string(k)] = json.RawMessage(v)
		}
		if diff := cmp.Diff(ref, got); diff != "" {
			t.Fatalf("Scan(%q) members differ from encoding/json (-want +got):\n%s", in, diff)
		}
		// Field agrees with an encoding/json struct field when it reports
		// no conflict (encoding/json itself takes the last case variant).
		var st struct {
			Model json.RawMessage `json:"model"`
		}
		if err := json.Unmarshal(in, &st); err != nil {
			return // e.g. a model member that is null decodes fine, others may not
		}
		raw, found, ferr := obj.Field("model")
		if ferr == nil && found != (st.Model != nil) {
			t.Fatalf("Field(model) found = %v; encoding/json found %q in %q", found, st.Model, in)
		}
		if ferr == nil && found && !bytes.Equal(raw, st.Model) {
			t.Fatalf("Field(model) = %q; encoding/json decoded %q from %q", raw, st.Model, in)
		}
	})
}

func FuzzString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud800"`, `"\ud83d\ude80"`, "\"\xff\"", `"\u0000"`, `"\ud800\udc00\udc00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := String(raw)
		var ref string
		refErr := json.Unmarshal(raw, &ref)
		if err == nil && (refErr != nil || ref != got) {
			t.Fatalf("String(%q) = %q; encoding/json: %q, %v", raw, got, ref, refErr)
		}
		if err != nil && refErr == nil && len(raw) > 0 && raw[0] == '"' && raw[len(raw)-1] == '"' {
			t.Fatalf("String(%q) = %v; encoding/json decoded %q", raw, err, ref)
		}
	})
}
