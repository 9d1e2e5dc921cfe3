package upstream

import "strings"

// isGlob reports whether pattern contains a wildcard, i.e. names a family of
// models rather than one model id.
func isGlob(pattern string) bool {
	return strings.ContainsAny(pattern, "*?")
}

// matchGlob reports whether name matches pattern. '*' matches any run of
// characters, including '/' (model ids such as "openai/gpt-4o" contain
// slashes, which is why path.Match does not fit), and '?' matches exactly one
// byte. Everything else matches itself, case-sensitively.
func matchGlob(pattern, name string) bool {
	// Iterative wildcard match with single-star backtracking: linear in
	// practice, and immune to the exponential blow-up of naive recursion on
	// patterns like "a*a*a*a*b".
	p, n := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]) && pattern[p] != '*':
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			starP, starN = p, n
			p++
		case starP >= 0:
			starN++
			p, n = starP+1, starN
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
