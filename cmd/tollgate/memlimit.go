package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
)

// memLimitShare is the part of a container's memory limit given to Go as its
// soft limit: the rest is for what the runtime does not count (the binary's
// mapped pages, SQLite's page cache outside the Go heap, thread stacks).
const memLimitShare = 0.9

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of the
// container's (cgroup v2 memory.max or v1 memory.limit_in_bytes under
// cgroupRoot), unless GOMEMLIMIT is set. Near the limit the GC then runs more
// often instead of the kernel killing the gateway with thousands of streams
// open; far below it nothing changes (GOGC stays as setGCPercent left it).
// Without a container limit, or with cgroupRoot "", it does nothing.
func setMemoryLimit(cgroupRoot string, lookup func(string) (string, bool), logger *slog.Logger) {
	if cgroupRoot == "" {
		return
	}
	if v, ok := lookup("GOMEMLIMIT"); ok && v != "" {
		return // the runtime already read it; an explicit setting wins
	}
	limit, ok := cgroupMemoryLimit(cgroupRoot)
	if !ok {
		return
	}
	soft := int64(float64(limit) * memLimitShare)
	debug.SetMemoryLimit(soft)
	logger.Info("Go memory limit set from the container's memory limit (override with GOMEMLIMIT)",
		"container_limit_mb", limit>>20, "gomemlimit_mb", soft>>20)
}

// defaultGCPercent is the GOGC that tollgate serve runs with when the user
// set neither GOGC nor GOMEMLIMIT. A request allocates ~10 KB that is garbage
// at its end, and at 100 the collector ran often enough to be 10-15% of the
// CPU at saturation and, on one core, to hold it for milliseconds (the p99
// tail). 200 halves the number of cycles for a few MB of RSS (docs/perf.md).
const defaultGCPercent = 200

// setGCPercent applies defaultGCPercent unless GOGC or GOMEMLIMIT is set:
// either means the user tuned the collector, and their setting stands alone.
// It runs before setMemoryLimit, which still caps a container's heap. It
// reports whether it applied the default: then gcpace may pace it.
func setGCPercent(lookup func(string) (string, bool), logger *slog.Logger) bool {
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if v, ok := lookup(k); ok && v != "" {
			return false
		}
	}
	debug.SetGCPercent(defaultGCPercent)
	logger.Debug("GOGC default applied (override with GOGC or GOMEMLIMIT)", "gogc", defaultGCPercent)
	return true
}

// cgroupMemoryLimit reads the memory limit of this process's cgroup, v2 or
// v1. "max", an absent file and v1's "unlimited" (a huge number) mean none.
func cgroupMemoryLimit(root string) (int64, bool) {
	for _, name := range []string{"memory.max", "memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			continue
		}
		s := string(bytes.TrimSpace(b))
		if s == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false // v1 reports "no limit" as a page-rounded MaxInt64
		}
		return n, true
	}
	return 0, false
}
