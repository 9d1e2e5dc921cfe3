package sqlite

import (
	"testing"

	"github.com/tollgate/tollgate/internal/ledger"
)

// A chunk's mask keeps a column out only when every row leaves it unset.
func TestChunkMask(t *testing.T) {
	bit := func(name string) uint32 {
		for b, i := range unsetCols {
			if reqCols[i].name == name {
				return 1 << b
			}
		}
		t.Fatalf("%s has no unset test", name)
		return 0
	}
	all := uint32(1)<<len(unsetCols) - 1
	tests := []struct {
		name  string
		chunk []ledger.Record
		want  uint32
	}{
		{"nothing set", []ledger.Record{{}, {}}, all},
		{"a user in one row", []ledger.Record{{}, {User: "u"}}, all &^ bit("end_user")},
		{"an empty, not absent, body", []ledger.Record{{RequestBody: []byte{}}}, all &^ bit("request_body")},
		{"everything set", []ledger.Record{{User: "u", Error: "e", CachedTokens: 1, ReasoningTokens: 1,
			RequestBody: []byte("b"), ResponseBody: []byte("b"), CacheWriteTokens: 1}}, 0},
	}
	for _, tc := range tests {
		if got := chunkMask(tc.chunk); got != tc.want {
			t.Errorf("%s: mask %b, want %b", tc.name, got, tc.want)
		}
	}
	if len(unsetCols) != 7 {
		t.Errorf("%d columns with an unset test, want 7", len(unsetCols))
	}
}
