package jsonscan_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tollgate/tollgate/internal/jsonscan"
)

// head is what a dialect reads from a chat request.
type head struct {
	Model        string
	Stream       bool
	IncludeUsage bool
	MaxTokens    int64
}

// parseHead shows the intended use in place of gjson.ValidBytes + ForEach:
// one validating scan, then conflict-aware lookups of the few fields that
// decide routing, permissions and metering.
func parseHead(body []byte) (head, error) {
	var h head
	obj, err := jsonscan.Scan(body, jsonscan.Options{MaxDepth: 128})
	if err != nil {
		return h, err // errors.Is: ErrSyntax, ErrTooDeep, ErrNotObject, ErrTooManyMembers
	}
	raw, ok, err := obj.Field("model")
	if err != nil {
		return h, err // ErrDuplicate: "model" and "MODEL" both present
	}
	if ok {
		if h.Model, err = jsonscan.String(raw); err != nil {
			return h, fmt.Errorf("model: %w", err)
		}
	}
	if raw, ok, err = obj.Field("stream"); err != nil {
		return h, err
	} else if ok && !jsonscan.IsNull(raw) {
		if h.Stream, err = jsonscan.Bool(raw); err != nil {
			return h, fmt.Errorf("stream: %w", err)
		}
	}
	if raw, ok, err = obj.Field("stream_options"); err != nil {
		return h, err
	} else if ok && !jsonscan.IsNull(raw) {
		// A nested object is scanned again: it is a sub-slice of body.
		opts, err := jsonscan.Scan(raw, jsonscan.Options{MaxDepth: 127})
		if err != nil {
			return h, fmt.Errorf("stream_options: %w", err)
		}
		if raw, ok, err := opts.Field("include_usage"); err != nil {
			return h, err
		} else if ok {
			if h.IncludeUsage, err = jsonscan.Bool(raw); err != nil {
				return h, fmt.Errorf("stream_options.include_usage: %w", err)
			}
		}
	}
	if raw, ok, err = obj.Field("max_tokens"); err != nil {
		return h, err
	} else if ok && !jsonscan.IsNull(raw) {
		if h.MaxTokens, err = jsonscan.Int64(raw); err != nil {
			return h, fmt.Errorf("max_tokens: %w", err)
		}
	}
	return h, nil
}

func Example() {
	for _, body := range []string{
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"max_tokens":256}`,
		`{"model":"gpt-4o","MODEL":"claude-sonnet-4-6"}`,
		`{"mod\u0065l":"gpt-4o","max_tokens":1e3}`,
		`{"model":"gpt-4o","messages":` + strings.Repeat("[", 200),
		`{"model":"gpt-4o",}`,
	} {
		h, err := parseHead([]byte(body))
		switch {
		case errors.Is(err, jsonscan.ErrTooDeep):
			fmt.Println("400 too deep:", err)
		case errors.Is(err, jsonscan.ErrDuplicate):
			fmt.Println("400 ambiguous:", err)
		case err != nil:
			fmt.Println("400:", err)
		default:
			fmt.Printf("%+v\n", h)
		}
	}
	// Output:
	// {Model:gpt-4o Stream:true IncludeUsage:true MaxTokens:256}
	// 400 ambiguous: duplicate JSON member: "model" and "MODEL" both name "model"
	// 400: max_tokens: wrong JSON value type: got "1e3", want an integer
	// 400 too deep: JSON nesting too deep at offset 156: more than 128 levels
	// 400: invalid JSON at offset 18: invalid character '}' looking for beginning of object key string
}
