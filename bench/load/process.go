package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProcConfig describes a child process to start.
type ProcConfig struct {
	// Name labels the process in logs and errors.
	Name string
	// Path and Args are the program and its arguments.
	Path string
	Args []string
	// Env is added to the inherited environment (later entries win).
	Env []string
	// Scrub drops inherited variables with these prefixes, so a developer's
	// shell settings cannot change what is measured.
	Scrub []string
	// Dir is the working directory; it also holds the process's log file.
	Dir string
	// CPU, when >= 0 and Taskset is set, pins the process to that CPU.
	CPU int
	// Taskset is the path of taskset(1), or "" to not pin.
	Taskset string
}

// Proc is a child process started by StartProc. Stop it when done.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // valid after done is closed
}

// StartProc starts a child with stdout and stderr going to Dir/<Name>.log.
// The child is killed if this process dies (Pdeathsig), so a crashed run
// leaves nothing behind.
func StartProc(log *slog.Logger, pc ProcConfig) (*Proc, error) {
	logPath := filepath.Join(pc.Dir, pc.Name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", pc.Name, err)
	}
	defer lf.Close() // the child holds its own descriptor
	path, args := pc.Path, pc.Args
	if pc.CPU >= 0 && pc.Taskset != "" {
		// taskset execs the program, so the PID we get is the program's.
		path, args = pc.Taskset, append([]string{"-c", strconv.Itoa(pc.CPU), pc.Path}, pc.Args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = pc.Dir
	cmd.Env = append(scrubEnv(os.Environ(), pc.Scrub), pc.Env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", pc.Name, err)
	}
	p := &Proc{Name: pc.Name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	log.Debug("started", "proc", pc.Name, "pid", cmd.Process.Pid, "cpu", pc.CPU)
	return p, nil
}

func scrubEnv(env, prefixes []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		drop := false
		for _, p := range prefixes {
			drop = drop || strings.HasPrefix(kv, p)
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Stop sends SIGTERM, waits up to grace for the process to exit, then
// SIGKILLs it. It signals only this process, by PID. Stop is safe to call
// more than once.
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.Name, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.Name, err)
	}
	<-p.done
	return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.Name, grace)
}

// LogTail returns up to the last n bytes of the process's log.
func (p *Proc) LogTail(n int64) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, 0) //nolint:errcheck // best effort
	}
	b := make([]byte, n)
	k, _ := f.Read(b)
	return string(b[:k])
}

// WaitReady polls until check succeeds, p exits, ctx ends or timeout
// passes, every 50 ms.
func WaitReady(ctx context.Context, p *Proc, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); log %s:\n%s", p.Name, p.err, p.LogPath, p.LogTail(2048))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %w", p.Name, timeout, last)
		case <-tick.C:
		}
	}
}

// TCPCheck returns a readiness check that connects to addr.
func TCPCheck(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", addr, err)
		}
		return c.Close()
	}
}

// HTTPCheck returns a readiness check that wants 200 from GET url.
func HTTPCheck(url string) func(context.Context) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("health request: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("health: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: status %d", resp.StatusCode)
		}
		return nil
	}
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago. Another process could take it before the child binds; the child's
// readiness check then fails loudly rather than silently.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// PinSelf pins every thread of the current process to cpu with
// `taskset -a -p`. Threads created later inherit the mask.
func PinSelf(ctx context.Context, taskset string, cpu int) error {
	out, err := exec.CommandContext(ctx, taskset, "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %w: %s", err, out)
	}
	return nil
}
