package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps holds the dependency rules of DESIGN.md: the binary carries no
// test code and no cgo driver, and the data plane knows no database, Redis
// or Prometheus.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	tests := []struct {
		pkg string
		bad map[string]string
	}{
		{"github.com/tollgate/tollgate/cmd/tollgate", map[string]string{
			"testing":                        "no test code in the binary",
			"github.com/mattn/go-sqlite3":    "cgo SQLite driver; the binary must build with CGO_ENABLED=0",
			"github.com/openai/openai-go/v3": "the SDK is for tests only",
		}},
		{"github.com/tollgate/tollgate/internal/proxy", map[string]string{
			"github.com/tollgate/tollgate/internal/store":    "the proxy knows no database",
			"github.com/redis/go-redis/v9":                   "the proxy knows no Redis",
			"github.com/prometheus/client_golang/prometheus": "the proxy knows no Prometheus",
			"github.com/tollgate/tollgate/internal/limit":    "limits reach the proxy through its Gate",
			"go.opentelemetry.io/otel":                       "tracing reaches the proxy through its Tracer",
		}},
		{"github.com/tollgate/tollgate/internal/store", map[string]string{
			"net/http": "the store knows no HTTP",
		}},
	}
	for _, tt := range tests {
		out, err := exec.Command("go", "list", "-deps", tt.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tt.pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if why, ok := tt.bad[dep]; ok && why != "" {
				t.Errorf("%s depends on %s: %s", tt.pkg, dep, why)
			}
		}
	}
}
