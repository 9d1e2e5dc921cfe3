package jsonscan

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		raw     string
		want    string
		wantErr bool
	}{
		{`"gpt-4o"`, "gpt-4o", false},
		{`""`, "", false},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t", false},
		{`"\u00e9\u6771"`, "é東", false},
		{`"\uD83D\uDE80"`, "🚀", false},
		{`"\ud800"`, "\uFFFD", false},
		{`"\ud800\u0041"`, "\uFFFDA", false},
		{`"\udc00\ud800"`, "\uFFFD\uFFFD", false},
		{"\"a\xffb\"", "a\uFFFDb", false},
		{`"naïve"`, "naïve", false},
		{`null`, "", true},
		{`1`, "", true},
		{`"abc`, "", true},
		{`"a"b"`, "", true},
		{`"\q"`, "", true},
		{"\"\x01\"", "", true},
		{`"`, "", true},
		{``, "", true},
	}
	for _, tt := range tests {
		got, err := String([]byte(tt.raw))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("String(%q) = %q, %v; want %q, error %v", tt.raw, got, err, tt.want, tt.wantErr)
		}
		if !tt.wantErr {
			var ref string
			if err := json.Unmarshal([]byte(tt.raw), &ref); err != nil || ref != got {
				t.Errorf("String(%q) = %q; encoding/json says %q (%v)", tt.raw, got, ref, err)
			}
		}
	}
}

func TestBool(t *testing.T) {
	for raw, want := range map[string]bool{"true": true, "false": false} {
		if got, err := Bool([]byte(raw)); err != nil || got != want {
			t.Errorf("Bool(%s) = %v, %v; want %v", raw, got, err, want)
		}
	}
	for _, raw := range []string{`"true"`, "null", "1", "0", "True", "", "true "} {
		if _, err := Bool([]byte(raw)); !errors.Is(err, ErrType) {
			t.Errorf("Bool(%q) err = %v; want ErrType", raw, err)
		}
	}
}

func TestInt64(t *testing.T) {
	tests := []struct {
		raw     string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"-0", 0, false},
		{"1024", 1024, false},
		{"-5", -5, false},
		{"9223372036854775807", math.MaxInt64, false},
		{"-9223372036854775808", math.MinInt64, false},
		{"9223372036854775808", 0, true},
		{"-9223372036854775809", 0, true},
		{"18446744073709551615", 0, true},
		{"18446744073709551616", 0, true},
		{"99999999999999999999999999999999", 0, true},
		{"1.0", 0, true},
		{"1.5", 0, true},
		{"1e3", 0, true},
		{"1E0", 0, true},
		{"01", 0, true},
		{"+1", 0, true},
		{"-", 0, true},
		{`"5"`, 0, true},
		{"null", 0, true},
		{"true", 0, true},
		{"", 0, true},
		{"0x10", 0, true},
	}
	for _, tt := range tests {
		got, err := Int64([]byte(tt.raw))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Int64(%q) = %d, %v; want %d, error %v", tt.raw, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrType) {
			t.Errorf("Int64(%q) err = %v; want ErrType", tt.raw, err)
		}
		// encoding/json decoding into int64 agrees.
		var ref int64
		refErr := json.Unmarshal([]byte(tt.raw), &ref)
		if tt.raw != "null" && ((refErr != nil) != (err != nil) || ref != got) {
			t.Errorf("Int64(%q) = %d, %v; encoding/json: %d, %v", tt.raw, got, err, ref, refErr)
		}
	}
}

func FuzzInt64(f *testing.F) {
	for _, s := range []string{"0", "-0", "9223372036854775807", "-9223372036854775808", "1e3", "1.0", "01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := Int64([]byte(raw))
		ref, refErr := strconv.ParseInt(raw, 10, 64)
		// ParseInt also accepts "+1" and "01", which JSON does not.
		if err == nil && (refErr != nil || ref != got) {
			t.Fatalf("Int64(%q) = %d; strconv says %d, %v", raw, got, ref, refErr)
		}
		if err != nil && refErr == nil && json.Valid([]byte(raw)) {
			t.Fatalf("Int64(%q) = %v; but it is a valid JSON integer %d", raw, err, ref)
		}
	})
}

func TestAppendUnquote(t *testing.T) {
	tests := []struct {
		name, in, want, rest string
		wantErr              bool
	}{
		{name: "plain", in: `"abc"}]}`, want: "abc", rest: "}]}"},
		{name: "escapes", in: `"a\"b\\n\u00e9\n",x`, want: "a\"b\\n\u00e9\n", rest: ",x"},
		{name: "surrogate pair", in: `"\ud83d\ude00"`, want: "\U0001F600"},
		{name: "lone surrogate", in: `"\ud83d!"`, want: "\uFFFD!"},
		{name: "empty", in: `""rest`, want: "", rest: "rest"},
		{name: "unterminated", in: `"abc`, wantErr: true},
		{name: "bad escape", in: `"a\qb"`, wantErr: true},
		{name: "not a string", in: `null`, wantErr: true},
		{name: "nothing", in: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, rest, err := AppendUnquote([]byte("pre:"), []byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				if string(out) != "pre:" {
					t.Fatalf("out = %q after an error, want dst unchanged", out)
				}
				return
			}
			if string(out) != "pre:"+tt.want || string(rest) != tt.rest {
				t.Fatalf("got %q, rest %q; want %q, rest %q", out, rest, "pre:"+tt.want, tt.rest)
			}
		})
	}
}
