package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tollgate/tollgate/internal/store/sqlite"
)

// ledgerWriterCmd is the SQLite writer process that serve starts (see
// internal/store/sqlite/writerproc.go); it is not for users, so the help
// does not list it. It ignores SIGINT and SIGTERM, which a terminal or
// systemd sends to the whole process group: it must outlive the gateway's
// drain of its ledger, and ends when the gateway closes its stdin.
func ledgerWriterCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ledger-writer", flag.ContinueOnError)
	db := fs.String("db", "", "SQLite database file")
	nice := fs.Int("nice", writerNice, "nice value of the process (Linux)")
	if err := fs.Parse(args); err != nil {
		return usageErr("ledger-writer: %v", err)
	}
	if *db == "" {
		return usageErr("ledger-writer: --db is required")
	}
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	if err := lowerPriority(*nice); err != nil {
		fmt.Fprintln(stderr, "tollgate ledger-writer: nice:", err) // runs at the gateway's priority
	}
	return sqlite.ServeWriter(context.WithoutCancel(ctx), *db, stdin, stdout)
}

// writerNice is the writer process's nice value, set with the SCHED_IDLE
// policy (lowerPriority) and alone where the policy is refused: the kernel
// runs request threads first whenever both want the CPU. At nice 10, with
// the 64 KiB pipe it then had, a write into the writer's pipe often handed
// the CPU to the writer in the middle of the system call (p99 at 2000 req/s
// 2–6× the bare proxy's, against ~1.0–1.1× at 19). On a saturated core it
// gets little CPU, so the store inserts batches in-process while the writer
// is starved (writerproc.go).
const writerNice = 19

// writerEnv is what the writer process inherits: the Go runtime's settings
// and the temp directory, not the gateway's secrets.
func writerEnv(environ []string) []string {
	out := []string{} // not nil: a nil Env means the whole environment
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GO") || name == "TMPDIR" || name == "TZ" {
			out = append(out, kv)
		}
	}
	return out
}

// sqliteWriter returns the command that starts this binary as the writer
// process for a database, or nil when the executable cannot be found (the
// store then inserts in-process).
func sqliteWriter(stderr io.Writer) sqlite.WriterCommand {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return func(path string) *exec.Cmd {
		cmd := exec.Command(exe, "ledger-writer", "--db", path)
		cmd.Env = writerEnv(os.Environ())
		cmd.Stderr = stderr
		return cmd
	}
}
