package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScanValidity(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error // nil, ErrSyntax, ErrTooDeep or ErrNotObject
	}{
		{"empty object", `{}`, nil},
		{"whitespace around", " \t\r\n{ } \n", nil},
		{"members", `{"a":1,"b":"x","c":[1,2,{"d":null}],"e":true,"f":false,"g":{}}`, nil},
		{"escapes", `{"s":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE80"}`, nil},
		{"lone surrogate is valid JSON", `{"s":"\ud800"}`, nil},
		{"invalid UTF-8 is accepted like json.Valid", "{\"s\":\"\xff\xfe\"}", nil},
		{"raw non-ASCII", `{"s":"naïve 東京 🚀"}`, nil},
		{"empty", ``, ErrSyntax},
		{"only spaces", `   `, ErrSyntax},
		{"array", `[1,2]`, ErrNotObject},
		{"string", `"x"`, ErrNotObject},
		{"number", `12`, ErrNotObject},
		{"null", `null`, ErrNotObject},
		{"invalid non-object", `[1,]`, ErrSyntax},
		{"trailing garbage", `{"a":1}x`, ErrSyntax},
		{"two objects", `{}{}`, ErrSyntax},
		{"trailing comma", `{"a":1,}`, ErrSyntax},
		{"trailing comma in array", `{"a":[1,]}`, ErrSyntax},
		{"missing colon", `{"a" 1}`, ErrSyntax},
		{"missing value", `{"a":}`, ErrSyntax},
		{"unquoted key", `{a:1}`, ErrSyntax},
		{"single quotes", `{'a':1}`, ErrSyntax},
		{"unterminated string", `{"a":"x`, ErrSyntax},
		{"unterminated object", `{"a":1`, ErrSyntax},
		{"unterminated array", `{"a":[1`, ErrSyntax},
		{"mismatched bracket", `{"a":[1}`, ErrSyntax},
		{"control char in string", "{\"a\":\"x\ny\"}", ErrSyntax},
		{"bad escape", `{"a":"\x"}`, ErrSyntax},
		{"short unicode escape", `{"a":"\u12"}`, ErrSyntax},
		{"bad hex", `{"a":"\u12G4"}`, ErrSyntax},
		{"escape at end", `{"a":"\`, ErrSyntax},
		{"leading zero", `{"a":01}`, ErrSyntax},
		{"minus alone", `{"a":-}`, ErrSyntax},
		{"plus sign", `{"a":+1}`, ErrSyntax},
		{"dot without digits", `{"a":1.}`, ErrSyntax},
		{"leading dot", `{"a":.5}`, ErrSyntax},
		{"empty exponent", `{"a":1e}`, ErrSyntax},
		{"exponent sign only", `{"a":1e+}`, ErrSyntax},
		{"hex number", `{"a":0x10}`, ErrSyntax},
		{"NaN", `{"a":NaN}`, ErrSyntax},
		{"Infinity", `{"a":-Infinity}`, ErrSyntax},
		{"numbers ok", `{"a":[0,-0,1.5,-1.5e10,1E-2,1e+2,123456789012345678901234567890]}`, nil},
		{"truncated literal", `{"a":tru}`, ErrSyntax},
		{"capital literal", `{"a":True}`, ErrSyntax},
		{"BOM", "\uFEFF{}", ErrSyntax},
		{"NUL outside string", "{}\x00", ErrSyntax},
		{"vertical tab is not whitespace", "{\v}", ErrSyntax},
		{"comment", `{/*c*/}`, ErrSyntax},
		{"depth 128 ok", `{"a":` + strings.Repeat("[", 127) + strings.Repeat("]", 127) + `}`, nil},
		{"depth 129", `{"a":` + strings.Repeat("[", 128) + strings.Repeat("]", 128) + `}`, ErrTooDeep},
		{"deep array body", strings.Repeat("[", 200), ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Scan([]byte(tt.in), Options{})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Scan(%q) = %v; want %v", tt.in, err, tt.want)
			}
			var e *Error
			if err != nil && (!errors.As(err, &e) || e.Offset < 0 || e.Offset > len(tt.in)) {
				t.Errorf("Scan(%q) error %#v: want *Error with offset in [0,%d]", tt.in, err, len(tt.in))
			}
			// encoding/json is the oracle for validity below its own depth limit.
			if tt.want != ErrTooDeep {
				valid := json.Valid([]byte(tt.in))
				if got := err == nil || errors.Is(err, ErrNotObject); got != valid {
					t.Errorf("Scan(%q) valid = %v; json.Valid = %v", tt.in, got, valid)
				}
			}
		})
	}
}

func TestScanErrorOffset(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		want   string
	}{
		{`{"a":1}x`, 7, "invalid JSON at offset 7: invalid character 'x' after top-level value"},
		{`{"a":[`, 6, "invalid JSON at offset 6: unexpected end of input after opening bracket"},
		{"{\"a\":\"\x01\"}", 6, "invalid JSON at offset 6: invalid character 0x01 in string literal"},
		{`{"a":` + strings.Repeat("[", 10), 8, "JSON nesting too deep at offset 8: more than 4 levels"},
	}
	for _, tt := range tests {
		_, err := Scan([]byte(tt.in), Options{MaxDepth: 4})
		var e *Error
		if !errors.As(err, &e) || e.Offset != tt.offset || err.Error() != tt.want {
			t.Errorf("Scan(%q) = %v; want offset %d, %q", tt.in, err, tt.offset, tt.want)
		}
	}
}

func TestScanMaxDepth(t *testing.T) {
	nest := func(n int) []byte { // an object whose deepest container is at depth n
		return []byte(`{"a":` + strings.Repeat("[", n-1) + "1" + strings.Repeat("]", n-1) + `}`)
	}
	tests := []struct {
		max, depth int
		wantErr    bool
	}{
		{1, 1, false}, {1, 2, true}, {-5, 1, false}, {-5, 2, true},
		{64, 64, false}, {64, 65, true}, {65, 65, false},
		{256, 256, false}, {256, 257, true},
		{300, 300, false}, {300, 301, true}, // past the inline stack
		{0, DefaultMaxDepth, false}, {0, DefaultMaxDepth + 1, true},
	}
	for _, tt := range tests {
		_, err := Scan(nest(tt.depth), Options{MaxDepth: tt.max})
		if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrTooDeep)) {
			t.Errorf("MaxDepth %d, depth %d: err = %v; want error %v", tt.max, tt.depth, err, tt.wantErr)
		}
	}
	// Mixed objects and arrays across the 64-bit word boundary of the stack.
	var b strings.Builder
	b.WriteString(`{"k":`)
	for i := range 150 {
		if i%3 == 0 {
			b.WriteString(`{"x":`)
		} else {
			b.WriteString(`[`)
		}
	}
	b.WriteString(`1`)
	for i := 149; i >= 0; i-- {
		if i%3 == 0 {
			b.WriteString(`}`)
		} else {
			b.WriteString(`]`)
		}
	}
	b.WriteString(`}`)
	if _, err := Scan([]byte(b.String()), Options{MaxDepth: 151}); err != nil {
		t.Errorf("mixed nesting: %v", err)
	}
	bad := strings.Replace(b.String(), "1]", "1}", 1)
	if _, err := Scan([]byte(bad), Options{MaxDepth: 151}); !errors.Is(err, ErrSyntax) {
		t.Errorf("mismatched deep bracket: err = %v; want ErrSyntax", err)
	}
}

// TestScanHostileNesting is the crash that motivated the package: gjson's
// recursive validator overflows the stack on a 22 MB nest. Scan must reject
// it at the depth limit, having allocated almost nothing.
func TestScanHostileNesting(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"100k arrays", []byte(`{"a":` + strings.Repeat("[", 100_000))},
		{"100k arrays closed", []byte(`{"a":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`)},
		{"20MB objects", append([]byte(`{"a":`), bytes.Repeat([]byte(`{"a":`), 4<<20)...)},
		{"20MB arrays", bytes.Repeat([]byte(`[`), 20<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Scan(tt.body, Options{MaxDepth: 128})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooDeep) {
				t.Fatalf("err = %v; want ErrTooDeep", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Errorf("allocated %d bytes; want < 64 KiB", n)
			}
		})
	}
	// With the limit raised past the nesting, the whole 100k nest scans
	// without recursion: the stack is 100k bits.
	body := []byte(`{"a":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`)
	if _, err := Scan(body, Options{MaxDepth: 200_000}); err != nil {
		t.Fatalf("MaxDepth 200000: %v", err)
	}
}

func TestScanMaxMembers(t *testing.T) {
	many := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"a":1`)
		}
		b.WriteString("}")
		return b.Bytes()
	}
	tests := []struct {
		max, n  int
		wantErr bool
	}{
		{0, DefaultMaxMembers, false}, {0, DefaultMaxMembers + 1, true},
		{2, 2, false}, {2, 3, true}, {-1, 5, false},
	}
	for _, tt := range tests {
		o, err := Scan(many(tt.n), Options{MaxMembers: tt.max})
		if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrTooManyMembers)) {
			t.Errorf("MaxMembers %d, %d members: err = %v; want error %v", tt.max, tt.n, err, tt.wantErr)
		}
		if err == nil && o.Len() != tt.n {
			t.Errorf("Len = %d; want %d", o.Len(), tt.n)
		}
	}
	// A 20 MB body of members is refused with bounded memory.
	body := many(20 << 20 / 6)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Scan(body, Options{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooManyMembers) {
		t.Fatalf("err = %v; want ErrTooManyMembers", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 256<<10 {
		t.Errorf("allocated %d bytes; want < 256 KiB", n)
	}
}

func TestScanMembers(t *testing.T) {
	type kv struct{ Key, Value string }
	tests := []struct {
		name string
		in   string
		want []kv
	}{
		{"plain", ` { "model" : "gpt-4o" , "n":2, "o":{"x":[1]} } `,
			[]kv{{"model", `"gpt-4o"`}, {"n", "2"}, {"o", `{"x":[1]}`}}},
		{"escaped key", `{"mod\u0065l":"x","\"q\"":1,"a\/b":2}`,
			[]kv{{"model", `"x"`}, {`"q"`, "1"}, {"a/b", "2"}}},
		{"surrogate pair key", `{"\ud83d\ude80":1}`, []kv{{"🚀", "1"}}},
		{"lone surrogate key", `{"\ud800x":1}`, []kv{{"\uFFFDx", "1"}}},
		{"invalid UTF-8 key", "{\"mod\xffel\":1}", []kv{{"mod\uFFFDel", "1"}}},
		{"duplicates kept in order", `{"a":1,"a":2}`, []kv{{"a", "1"}, {"a", "2"}}},
		{"nested keys are not members", `{"a":{"model":"x"},"b":[{"model":1}]}`,
			[]kv{{"a", `{"model":"x"}`}, {"b", `[{"model":1}]`}}},
		{"empty containers", `{"a":{},"b":[],"c":""}`, []kv{{"a", "{}"}, {"b", "[]"}, {"c", `""`}}},
		{"empty", `{}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Scan([]byte(tt.in), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []kv
			for i := range o.Len() {
				k, v := o.Member(i)
				got = append(got, kv{string(k), string(v)})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Scan(%q) members (-want +got):\n%s", tt.in, diff)
			}
			if o.Len() != len(tt.want) {
				t.Errorf("Len() = %d; want %d", o.Len(), len(tt.want))
			}
		})
	}
}

// TestScanManyMembers crosses the inline member array into the overflow.
func TestScanManyMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 40 {
		if i > 0 {
			b.WriteString(",")
		}
		if i%3 == 0 {
			fmt.Fprintf(&b, `"k\u0030%d":[%d]`, i, i) // escaped key "k0<i>"
		} else {
			fmt.Fprintf(&b, `"k%d":%d`, i, i)
		}
	}
	b.WriteString(`,"MODEL":"m"}`)
	o, err := Scan([]byte(b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Len() != 41 {
		t.Fatalf("Len = %d; want 41", o.Len())
	}
	for i := range 40 {
		k, v := o.Member(i)
		wantK, wantV := fmt.Sprintf("k%d", i), fmt.Sprint(i)
		if i%3 == 0 {
			wantK, wantV = fmt.Sprintf("k0%d", i), fmt.Sprintf("[%d]", i)
		}
		if string(k) != wantK || string(v) != wantV {
			t.Errorf("Member(%d) = %q, %q; want %q, %q", i, k, v, wantK, wantV)
		}
	}
	if raw, ok, err := o.Field("model"); err != nil || !ok || string(raw) != `"m"` {
		t.Errorf("Field(model) = %q, %v, %v", raw, ok, err)
	}
	if raw, ok, err := o.Field("K039"); err != nil || !ok || string(raw) != "[39]" {
		t.Errorf("Field(K039) = %q, %v, %v", raw, ok, err)
	}
}

func TestField(t *testing.T) {
	tests := []struct {
		name      string
		in, field string
		want      string // raw value; "" when not found
		dup       bool
	}{
		{"exact", `{"model":"a"}`, "model", `"a"`, false},
		{"absent", `{"models":"a"}`, "model", "", false},
		{"upper case matches", `{"MODEL":"a"}`, "model", `"a"`, false},
		{"mixed case matches", `{"MoDeL":"a"}`, "model", `"a"`, false},
		{"case variant conflict", `{"model":"gpt-4o","MODEL":"claude-sonnet-4-6"}`, "model", "", true},
		{"exact duplicate", `{"model":"a","model":"b"}`, "model", "", true},
		{"escaped duplicate", `{"model":"a","mod\u0065l":"b"}`, "model", "", true},
		{"escaped upper duplicate", `{"model":"a","\u004dODEL":"b"}`, "model", "", true},
		{"kelvin sign folds to k", `{"max_tokens":1,"max_to\u212Aens":9}`, "max_tokens", "", true},
		{"raw kelvin sign", `{"max_toKens":9}`, "max_tokens", "9", false},
		{"long s folds to s", `{"ſtream":true}`, "stream", "true", false},
		{"long s conflict", `{"stream":false,"\u017Ftream":true}`, "stream", "", true},
		{"dotless i does not fold to i", `{"user":"a","usıer":"b"}`, "user", `"a"`, false},
		{"nested is not top level", `{"a":{"model":"x"}}`, "model", "", false},
		{"other fields' duplicates are fine", `{"x":1,"x":2,"model":"m"}`, "model", `"m"`, false},
		{"prefix is not a match", `{"model_":"a","mode":"b"}`, "model", "", false},
		{"empty name", `{"":1}`, "", "1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Scan([]byte(tt.in), Options{})
			if err != nil {
				t.Fatal(err)
			}
			raw, found, err := o.Field(tt.field)
			if tt.dup {
				if !errors.Is(err, ErrDuplicate) || found || raw != nil {
					t.Fatalf("Field(%q) = %q, %v, %v; want ErrDuplicate", tt.field, raw, found, err)
				}
				return
			}
			if err != nil || found != (tt.want != "") || string(raw) != tt.want {
				t.Errorf("Field(%q) = %q, %v, %v; want %q", tt.field, raw, found, err, tt.want)
			}
		})
	}
}

// TestFieldMatchesEncodingJSON checks Field against what an upstream written
// with encoding/json would decode: for a single member, Field finds it exactly
// when a struct field named by the tag receives the value.
func TestFieldMatchesEncodingJSON(t *testing.T) {
	keys := []string{"model", "MODEL", "Model", "mOdEl", "modeL ", "m\u00f6del", "stream", "STREAM",
		"ſtream", "\u017FTREAM", "streaM\u200b", "max_tokens", "MAX_TOKENS", "max_to\u212Aens", "max_to\u212aENS",
		"user", "USER", "uſer", "uſeR", "n", "N", "ǅ"}
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		body := `{` + string(kb) + `:"v"}`
		var dst struct {
			Model     string `json:"model"`
			Stream    string `json:"stream"`
			MaxTokens string `json:"max_tokens"`
			User      string `json:"user"`
			N         string `json:"n"`
		}
		if err := json.Unmarshal([]byte(body), &dst); err != nil {
			t.Fatal(err)
		}
		o, err := Scan([]byte(body), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]string{"model": dst.Model, "stream": dst.Stream,
			"max_tokens": dst.MaxTokens, "user": dst.User, "n": dst.N} {
			_, found, _ := o.Field(name)
			if found != (got == "v") {
				t.Errorf("key %q, Field(%q) found = %v; encoding/json set it: %v", k, name, found, got == "v")
			}
		}
	}
}

func TestExact(t *testing.T) {
	o, err := Scan([]byte(`{"Temperature":1,"temperature":0.5,"temperature":2}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if raw, ok := o.Exact("temperature"); !ok || string(raw) != "0.5" {
		t.Errorf("Exact = %q, %v; want 0.5", raw, ok)
	}
	if _, ok := o.Exact("TEMPERATURE"); ok {
		t.Errorf("Exact(TEMPERATURE) found a member")
	}
}

func TestDuplicateErrorIsBounded(t *testing.T) {
	long := strings.Repeat("é", 10_000)
	body := `{"model":1,"MODEL` + long + `":2,"MODEL":3}`
	o, err := Scan([]byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = o.Field("model")
	if !errors.Is(err, ErrDuplicate) || len(err.Error()) > 200 {
		t.Errorf("Field error = %.300v (len %d); want a short ErrDuplicate", err, len(err.Error()))
	}
}

func TestScanAllocs(t *testing.T) {
	body := chatBody(t, 200<<10)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := Scan(body, Options{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Scan of a 200 KB chat body: %v allocations; want 0", allocs)
	}
}
