//go:build unix

// Package nodee2e runs the Node end-to-end scripts of this directory from
// `go test`: the official Anthropic and OpenAI SDKs, Claude Code and Codex
// CLI through a freshly built tollgate against the fake upstream, all on
// 127.0.0.1. The scripts install the pinned npm packages (`npm ci`) when
// node_modules is absent.
//
//	go test ./e2e/node/                    skips when node or npm is missing
//	TOLLGATE_E2E_NODE=require go test ...  fails instead of skipping (CI)
//	go test -short ./...                   skips
package nodee2e

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// scriptTimeout bounds one script; on this 2-core machine each takes 10-25 s
// once node_modules is installed (`npm ci` adds about 35 s the first time).
const scriptTimeout = 4 * time.Minute

func TestNodeE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the Node end-to-end scripts are skipped")
	}
	require := os.Getenv("TOLLGATE_E2E_NODE") == "require"
	for _, tool := range []string{"node", "npm", "bash", "curl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			if require {
				t.Fatalf("TOLLGATE_E2E_NODE=require but %s is not installed", tool)
			}
			t.Skipf("%s is not installed: the Node end-to-end tests (Anthropic SDK, Claude Code, OpenAI SDK, Codex) are skipped", tool)
		}
	}
	sourcesAsInputs(t, filepath.Join("..", ".."))
	bin := filepath.Join(t.TempDir(), "tollgate")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../../cmd/tollgate")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, script := range []string{"run-anthropic.sh", "run-responses.sh"} {
		t.Run(script, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), scriptTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", script)
			cmd.Env = append(os.Environ(), "TOLLGATE_BIN="+bin)
			// On timeout the script's whole process group gets SIGTERM:
			// killing bash alone would leave the gateway and the fake it
			// started running. bash then runs its EXIT trap.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
			cmd.WaitDelay = 10 * time.Second
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			if err != nil {
				t.Fatalf("%s: %v (after %v); its output:\n%s", script, err, time.Since(start).Round(time.Second), out.Bytes())
			}
			if bytes.Contains(out.Bytes(), []byte("SKIP:")) && require {
				t.Fatalf("%s skipped although TOLLGATE_E2E_NODE=require:\n%s", script, out.Bytes())
			}
			t.Logf("%s passed in %v", script, time.Since(start).Round(time.Second))
		})
	}
}

// sourcesAsInputs stats every file of the module (but .git and
// node_modules): go test caches a result keyed by the files its test
// touched, and the gateway is built, and the scripts read, by other
// processes, so without this a changed handler or script still gave the
// cached "ok" of the code before.
func sourcesAsInputs(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		_, err = os.Stat(path)
		return err
	})
	if err != nil {
		t.Fatalf("listing the sources: %v", err)
	}
}
