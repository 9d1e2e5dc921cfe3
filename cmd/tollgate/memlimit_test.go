package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		want   int64
		wantOK bool
	}{
		{"v2 limit", map[string]string{"memory.max": "536870912\n"}, 512 << 20, true},
		{"v2 unlimited", map[string]string{"memory.max": "max\n"}, 0, false},
		{"v1 limit", map[string]string{"memory/memory.limit_in_bytes": "1073741824\n"}, 1 << 30, true},
		{"v1 unlimited", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"garbage", map[string]string{"memory.max": "lots\n"}, 0, false},
		{"no cgroup files", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				path := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := cgroupMemoryLimit(root)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("cgroupMemoryLimit = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestSetMemoryLimitRespectsGOMEMLIMIT: an explicit GOMEMLIMIT, or no cgroup
// root, leaves the runtime's limit alone.
func TestSetMemoryLimitRespectsGOMEMLIMIT(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("1048576\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := debug.SetMemoryLimit(-1)
	tests := []struct {
		name string
		root string
		env  map[string]string
	}{
		{"GOMEMLIMIT set", root, map[string]string{"GOMEMLIMIT": "1GiB"}},
		{"no cgroup root", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			setMemoryLimit(tt.root, lookup, slog.New(slog.DiscardHandler))
			if got := debug.SetMemoryLimit(-1); got != before {
				t.Errorf("memory limit changed to %d", got)
			}
		})
	}
}

// TestSetGCPercent: the default GOGC applies only when the user set neither
// GOGC nor GOMEMLIMIT.
func TestSetGCPercent(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want int
	}{
		{"neither set", nil, defaultGCPercent},
		{"empty values", map[string]string{"GOGC": "", "GOMEMLIMIT": ""}, defaultGCPercent},
		{"GOGC set", map[string]string{"GOGC": "100"}, 37},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, 37},
	}
	before := debug.SetGCPercent(37) // a marker: "unchanged" reads back as 37
	defer debug.SetGCPercent(before)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(37)
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			setGCPercent(lookup, slog.New(slog.DiscardHandler))
			if got := debug.SetGCPercent(37); got != tt.want {
				t.Errorf("GOGC = %d, want %d", got, tt.want)
			}
		})
	}
}
