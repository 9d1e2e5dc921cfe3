package admin

import "context"

// scopeKey is the context key of a key holder's scope.
type scopeKey struct{}

// WithKeyScope marks a request as made by the holder of gateway key keyID:
// the API then answers only that key's logs, usage and listing entry, and
// refuses every other route with 403.
func WithKeyScope(ctx context.Context, keyID string) context.Context {
	return context.WithValue(ctx, scopeKey{}, keyID)
}

// KeyScope returns the key a request is scoped to, if any.
func KeyScope(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(scopeKey{}).(string)
	return id, ok
}
