package sqlite

import (
	"reflect"
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

// shapeKey has a field for each shape column, and a record that differs in
// any one of them has another shape.
func TestShapeKeyCoversShapeColumns(t *testing.T) {
	if n := reflect.TypeFor[shapeKey]().NumField(); n != len(shapeCols) {
		t.Fatalf("shapeKey has %d fields for %d shape columns", n, len(shapeCols))
	}
	base := ledger.Record{KeyID: "k", KeyName: "n", Endpoint: "/e", Model: "m", ModelUsed: "mu", Upstream: "u",
		Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1}
	for _, i := range shapeCols {
		r := base
		switch reqCols[i].name {
		case "key_id":
			r.KeyID = "other"
		case "key_name":
			r.KeyName = "other"
		case "endpoint":
			r.Endpoint = "other"
		case "model":
			r.Model = "other"
		case "model_used":
			r.ModelUsed = "other"
		case "upstream":
			r.Upstream = "other"
		case "outcome":
			r.Outcome = ledger.OutcomeUpstreamError
		case "status":
			r.Status = 502
		case "attempts":
			r.Attempts = 2
		case "stream":
			r.Stream = true
		case "estimated":
			r.Estimated = true
		case "priced":
			r.Priced = true
		default:
			t.Fatalf("shape column %s has no case here", reqCols[i].name)
		}
		if reflect.DeepEqual(reqCols[i].val(&r), reqCols[i].val(&base)) {
			t.Errorf("%s: the case does not change the column", reqCols[i].name)
		}
		if shapeOf(&r) == shapeOf(&base) {
			t.Errorf("%s: a record differing in it has the same shape key", reqCols[i].name)
		}
	}
}
