package sqlite_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tollgate/tollgate/internal/store/sqlite"
)

// TestGrowPipe: a batch bigger than Linux's default 64 KiB pipe is written
// whole while nobody reads, which is what keeps the gateway's write from
// waiting for the nice-19 writer process.
func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	size, err := sqlite.GrowPipe(w)
	if err != nil {
		t.Skipf("F_SETPIPE_SZ refused here: %v", err)
	}
	if size < sqlite.PipeSize {
		t.Fatalf("pipe size %d, want >= %d", size, sqlite.PipeSize)
	}
	// A deadline instead of a hang if the write would block.
	if err := w.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	batch := make([]byte, 300<<10)
	if n, err := w.Write(batch); err != nil || n != len(batch) {
		t.Fatalf("write of %d bytes with no reader: n=%d err=%v", len(batch), n, err)
	}
}

// TestWriterPipeIsGrown: the store's writer process gets the big pipe.
func TestWriterPipeIsGrown(t *testing.T) {
	s := openWithWriter(t, filepath.Join(t.TempDir(), "l.db"))
	f := sqlite.WriterStdin(s)
	if f == nil {
		t.Fatal("no writer process")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	rc.Control(func(fd uintptr) { size, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) })
	if err != nil {
		t.Fatal(err)
	}
	if size < sqlite.PipeSize {
		t.Fatalf("writer pipe size %d, want >= %d", size, sqlite.PipeSize)
	}
}

// TestPollable: a pipe comes back readable through Go's poller (only such
// a file takes a read deadline, and a read past it returns instead of
// blocking); a regular file comes back as it was.
func TestPollable(t *testing.T) {
	// A blocking pipe wrapped by NewFile, as a child's os.Stdin is.
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer w.Close()
	if err := r.SetReadDeadline(time.Now()); err == nil {
		t.Fatal("the blocking pipe took a deadline: the test shows nothing")
	}
	p := sqlite.Pollable(r)
	defer p.Close()
	if err := p.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("read deadline on the pollable pipe: %v", err)
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := sqlite.Pollable(f); got != f {
		t.Fatal("a regular file was replaced")
	}
}

// TestWriterReadsThroughPoller: the running writer process's stdin is
// non-blocking, i.e. it waits for batches parked on the poller rather than
// in read(2).
func TestWriterReadsThroughPoller(t *testing.T) {
	s := openWithWriter(t, filepath.Join(t.TempDir(), "l.db"))
	if err := s.InsertRecords(t.Context(), batch(0, 10, time.Now())); err != nil {
		t.Fatal(err)
	}
	pid := sqlite.WriterPID(s)
	if pid == 0 {
		t.Fatal("no writer process")
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/0", pid))
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	for line := range strings.Lines(string(info)) {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%o", &flags); err != nil {
				t.Fatalf("fdinfo flags %q: %v", v, err)
			}
		}
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatalf("writer process stdin flags %#o: not O_NONBLOCK", flags)
	}
}
