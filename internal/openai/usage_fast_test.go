package openai

import (
	"testing"

	"github.com/tidwall/gjson"
)

// usageSeeds are usage objects as providers send them, and shapes the fast
// path must leave to gjson.
var usageSeeds = []string{
	`{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}`,
	`{"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29, "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}`,
	`{"prompt_tokens":1200,"completion_tokens":80,"total_tokens":1280,"prompt_tokens_details":{"cached_tokens":1024,"cache_write_tokens":64},"completion_tokens_details":{"reasoning_tokens":32}}`,
	`{"input_tokens":5,"output_tokens":6,"input_tokens_details":{"cached_tokens":2},"output_tokens_details":{"reasoning_tokens":1},"total_tokens":11}`,
	`{"prompt_tokens":9,"completion_tokens":1,"prompt_cache_hit_tokens":4,"prompt_cache_miss_tokens":5}`,
	`{"prompt_tokens":9,"completion_tokens":1,"cache_creation_input_tokens":3}`,
	`{"prompt_tokens":9,"completion_tokens_details":null,"prompt_tokens_details":null}`,
	`{"prompt_tokens":1,"prompt_tokens":2,"completion_tokens_details":{"reasoning_tokens":4},"completion_tokens_details":{}}`,
	`{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2}}`,
	`{"cost":0.00012,"is_byok":false,"prompt_tokens":3,"extra":{"a":[1,{"b":"}"}],"c":null},"completion_tokens":4}`,
	`{"prompt_tokens":"7","completion_tokens":7.0,"total_tokens":1e1}`,
	`{"prompt_tokens":-3,"completion_tokens":007}`,
	`{"prompt\u005ftokens":8}`,
	`{"prompt_tokens":99999999999999999999}`,
	`{"prompt_tokens":true,"completion_tokens":null}`,
	`{}`,
	` {"total_tokens":3} trailing`,
	`{"prompt_tokens":1,}`,
	`{"prompt_tokens":1 "completion_tokens":2}`,
	`{"a":[[[[[[[[[[1]]]]]]]]]],"prompt_tokens":2}`,
	`[1,2]`,
	`{"prompt_tokens":1`,
	`{"prompt_tokens":1},"completion_tokens":5}`,
}

// usageOf is ParseUsage of the first JSON value in s. (gjson.Parse of an
// object takes all of s, and its ForEach reads on past the object's end.)
func usageOf(s string) Usage {
	return ParseUsage(gjson.Get(`{"u":`+s+`}`, "u"))
}

// TestParseUsageFastAgrees: on every seed, where the fast path answers, it
// answers as ParseUsage does, and it answers the shapes providers send.
func TestParseUsageFastAgrees(t *testing.T) {
	for i, s := range usageSeeds {
		got, ok := parseUsageFast([]byte(s))
		if i < 10 && !ok {
			t.Errorf("seed %d %s: the fast path gave up on a provider's shape", i, s)
		}
		if want := usageOf(s); ok && got != want {
			t.Errorf("seed %d %s: fast %+v, gjson %+v", i, s, got, want)
		}
	}
}

// TestUsageInAgrees: a chunk's usage read by usageIn is ParseUsage's, for
// every seed, wherever the object sits in the chunk.
func TestUsageInAgrees(t *testing.T) {
	for i, s := range usageSeeds {
		for _, chunk := range []string{
			`{"usage":` + s + `}`,
			`{"id":"c","choices":[],"usage":` + s + `}`,
			`{"id":"c","usage": ` + s + ` ,"x":{"usage":{"prompt_tokens":99}}}`,
		} {
			data := []byte(chunk)
			uj := gjson.GetBytes(data, "usage")
			if got, want := usageIn(data, uj), ParseUsage(uj); got != want {
				t.Errorf("seed %d in %s: usageIn %+v, ParseUsage %+v", i, chunk, got, want)
			}
		}
	}
}

// FuzzParseUsageFast: whatever the bytes, the fast path either gives up or
// gives ParseUsage's answer.
func FuzzParseUsageFast(f *testing.F) {
	for _, s := range usageSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUsageFast([]byte(s))
		if !ok {
			return
		}
		if want := usageOf(s); got != want {
			t.Fatalf("%q: fast %+v, gjson %+v", s, got, want)
		}
	})
}

func BenchmarkUsageFromTail(b *testing.B) {
	tail := []byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":` + usageSeeds[1] + `}`)
	b.ReportAllocs()
	for b.Loop() {
		if u := UsageFromTail(tail); u.TotalTokens != 29 {
			b.Fatal(u)
		}
	}
}
