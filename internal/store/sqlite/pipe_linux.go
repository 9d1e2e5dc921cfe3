package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is the writer process's input pipe buffer. With Linux's default
// 64 KiB a batch of 500 rows (~80 KB on the wire) does not fit, so the
// gateway's write waited in the system call, holding its P, until the
// nice-19 child got the CPU to read (up to 3 ms in traces at 2000 req/s).
// 1 MiB is the unprivileged maximum (fs.pipe-max-size) and holds a
// 1000-row batch several times over.
const pipeSize = 1 << 20

// growPipe enlarges the pipe behind f where the kernel allows it; the
// default size still works, only with the wait above.
func growPipe(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var size int
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		size, ferr = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize)
	}); err != nil {
		return 0, err
	}
	return size, ferr
}
