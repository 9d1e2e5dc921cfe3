package config

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decodeYAML parses b into cfg: ${VAR} references in scalar values are
// expanded from env (comments and keys are left alone, and a value can't
// inject YAML structure), unknown keys are reported with their line and the
// closest known key, and type errors name the YAML key, not a Go type.
func decodeYAML(cfg *Config, b []byte, env func(string) (string, bool)) error {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return errors.New(oneLine(err.Error()))
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil // empty file
	}
	if err := expandNode(&root, env); err != nil {
		return err
	}
	if err := checkKeys(root.Content[0], reflect.TypeFor[Config](), ""); err != nil {
		return err
	}
	if err := root.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return errors.New(friendlyTypeError(oneLine(err.Error())))
	}
	return nil
}

// oneLine folds yaml's multi-line errors into one line without its prefixes.
func oneLine(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	return strings.TrimPrefix(strings.TrimPrefix(msg, "yaml: "), "unmarshal errors: ")
}

// envRef matches ${NAME} and ${NAME:-default}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandNode replaces ${NAME} in every scalar value, so secrets stay out of
// the file. An unset NAME without a default is an error naming it.
func expandNode(n *yaml.Node, env func(string) (string, bool)) error {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		var missing string
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			sub := envRef.FindStringSubmatch(m)
			if v, ok := env(sub[1]); ok && v != "" {
				return v
			}
			if sub[2] != "" { // ${NAME:-default}: unset or empty uses the default
				return sub[3]
			}
			if missing == "" {
				missing = sub[1]
			}
			return ""
		})
		if missing != "" {
			return fmt.Errorf("line %d: ${%s} is not set or empty (set it in the environment or .env, or write ${%s:-default})",
				n.Line, missing, missing)
		}
		// A plain scalar resolves again from its expanded value (a number,
		// say); quoted or explicitly tagged ones keep their type.
		if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			n.Tag = ""
		}
		return nil
	}
	for _, c := range n.Content {
		if err := expandNode(c, env); err != nil {
			return err
		}
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkKeys walks n against t (the Go type it decodes into) and reports the
// first mapping key that t has no field for.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode || reflect.PointerTo(t).Implements(unmarshalerType) || t == reflect.TypeFor[time.Duration]() {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // a type error; Decode reports it
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				return unknownKey(k, path, fields)
			}
			if err := checkKeys(v, f, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			if err := checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the YAML keys of struct t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func unknownKey(k *yaml.Node, path string, fields map[string]reflect.Type) error {
	where := ""
	if path != "" {
		where = " in " + path
	}
	msg := fmt.Sprintf("line %d: unknown key %q%s", k.Line, clip(k.Value), where)
	if s := closest(k.Value, fields); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return errors.New(msg)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// closest returns the known key nearest to key by edit distance, if it is
// near enough to be a typo (at most a third of the key's length, at least 1,
// at most 3 edits).
func closest(key string, fields map[string]reflect.Type) string {
	if len(key) > 64 {
		return ""
	}
	best, bestD := "", min(3, max(1, len(key)/3))+1
	for name := range fields {
		if d := editDistance(strings.ToLower(key), name); d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	if bestD > min(3, max(1, len(key)/3)) {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance, so a swapped pair of letters ("max_retires") costs one edit.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// typeErr matches yaml.v3's "line N: cannot unmarshal !!tag `value` into T".
var typeErr = regexp.MustCompile("line (\\d+): cannot unmarshal !!(\\w+) `([^`]*)` into ([\\w.\\[\\]*]+)")

// friendlyTypeError rewrites Go type names into what the value should be.
func friendlyTypeError(msg string) string {
	return typeErr.ReplaceAllStringFunc(msg, func(m string) string {
		sub := typeErr.FindStringSubmatch(m)
		return fmt.Sprintf("line %s: %q is not %s", sub[1], clip(sub[3]), describe(sub[4]))
	})
}

func describe(goType string) string {
	switch {
	case goType == "time.Duration":
		return "a duration such as 30s"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint") || goType == "config.ByteSize":
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping of keys to values"
	}
	return "the expected kind of value (a mapping of settings)"
}
