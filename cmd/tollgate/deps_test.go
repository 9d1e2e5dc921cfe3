package main

import (
	"os"
	"os/exec"
	"path/filepath"
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
			// OTLP export is our own OTLP/HTTP client (internal/telemetry
			// otlphttp.go); otlptracehttp links these for nothing, ~10 MB.
			"google.golang.org/grpc": "gRPC is ~10 MB of the binary; OTLP goes over HTTP",
			"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp": "imports gRPC through its config code",
			"github.com/grpc-ecosystem/grpc-gateway/v2/runtime":               "comes with OTLP's generated collector service",
			"golang.org/x/net/trace":                                          "gRPC's request tracing; its html/template disables dead method elimination",
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

// binaryBudget is the most a release build (CGO_ENABLED=0, -trimpath,
// -ldflags "-s -w", as deploy/release.sh and the Dockerfile build it) may
// weigh. Measured 22.1 MiB on linux/amd64 when this test was written; it was
// 32.7 MiB while OTLP export linked gRPC (and 47.2 MiB unstripped).
const binaryBudget = 30 << 20

// TestBinarySize builds the binary the way releases are built and holds it
// under the budget, so a heavy dependency shows up here and not in the image.
func TestBinarySize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out := filepath.Join(t.TempDir(), "tollgate")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release binary: %.1f MB (budget %d MB)", float64(fi.Size())/(1<<20), binaryBudget>>20)
	if fi.Size() > binaryBudget {
		t.Errorf("release binary is %d bytes, over the %d byte budget: find the new dependency with go version -m and go tool nm -size -sort size",
			fi.Size(), binaryBudget)
	}
}
