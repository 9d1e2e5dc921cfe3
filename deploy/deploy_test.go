package deploy

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// repoRoot is the module root, where the go command and scripts run.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// TestMain removes the shared binary's directory after all tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// tollgateBin builds the binary once for every test that runs it.
func tollgateBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tollgate-deploy-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tollgate")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/tollgate")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = &buildError{err: err, out: out}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + string(e.out) }

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a process the test started; Cleanup kills it by PID if it is
// still running.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

func startProc(t *testing.T, dir string, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits (bounded) for the exit; it returns the
// process's exit error (nil for status 0).
func (p *proc) stop(t *testing.T, sig os.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal: %v", err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for Cleanup
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("process did not exit within 60s of %v", sig)
		return nil
	}
}

// waitOK polls url until it answers 200, for at most limit.
func waitOK(t *testing.T, client *http.Client, url string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not ready within %v (last error: %v)", url, limit, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestEnvExampleListsEveryVariable holds .env.example to the variables the
// config loader reads, so a new setting cannot go undocumented.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "internal/config/load.go"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(repoRoot, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\{"((?:TOLLGATE|TAOTOKEN)_[A-Z0-9_]+|PORT)"`).FindAllSubmatch(src, -1)
	if len(names) < 10 {
		t.Fatalf("found only %d variables in load.go; has its table changed shape?", len(names))
	}
	for _, m := range names {
		if !regexp.MustCompile(`(?m)^#?\s*` + string(m[1]) + `=`).Match(example) {
			t.Errorf(".env.example does not list %s", m[1])
		}
	}
}

// TestSystemdUnit checks deploy/tollgate.service with systemd-analyze verify
// (the ExecStart binary must exist, so a copy points at a built one) and
// holds its hardening with systemd-analyze security.
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	unit, err := os.ReadFile("tollgate.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=tollgate", "ProtectSystem=strict",
		"NoNewPrivileges=yes", "EnvironmentFile=", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("unit lacks %s", want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.service")
	unit = bytes.ReplaceAll(unit, []byte("/usr/local/bin/tollgate"), []byte(tollgateBin(t)))
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=30", path).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security (exposure above 3.0?): %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for \S+: (\S+)`).FindSubmatch(out); m != nil {
		t.Logf("systemd exposure level: %s", m[1])
	}
}

// env returns a clean environment for a child process: PATH and HOME and
// the given variables, so the developer's TOLLGATE_* settings stay out.
func childEnv(vars ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	return append(env, vars...)
}
