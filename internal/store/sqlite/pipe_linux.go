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

// pollable returns stdin read through Go's poller when it is a pipe the
// process can make non-blocking, else stdin. The writer process waits
// for its next batch most of the time; blocked in read(2), its P was in a
// system call, so sysmon kept waking to retake it (10 ms later) and then
// polled again every 20 µs for a millisecond: dozens of thread wakes a
// batch on the core the gateway runs on (docs/perf.md). Parked on the
// poller, the process has no P busy and sysmon sleeps until work comes.
func pollable(stdin *os.File) *os.File {
	fd := int(stdin.Fd()) // Fd leaves it blocking; set it below
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return stdin // a terminal shares its flags with the shell: left alone
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return stdin
	}
	// NewFile sees O_NONBLOCK and registers the descriptor with the poller.
	return os.NewFile(uintptr(fd), stdin.Name())
}
