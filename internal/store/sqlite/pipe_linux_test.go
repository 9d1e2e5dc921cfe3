package sqlite_test

import (
	"os"
	"path/filepath"
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
