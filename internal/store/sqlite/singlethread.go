package sqlite

import (
	"fmt"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// singleThread turns off SQLite's mutexes for the whole process
// (SQLITE_CONFIG_SINGLETHREAD). It must run before the process opens its
// first database, and is only for a process that uses one connection
// from one goroutine at a time: the writer process (ServeWriter). The
// driver opens every connection SQLITE_OPEN_FULLMUTEX, and modernc's
// pthread emulation makes each of the ~10 sqlite3_bind calls a row takes
// lock a sharded map and a mutex (docs/perf.md).
func singleThread() error {
	tls := libc.NewTLS()
	defer tls.Close()
	if rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_SINGLETHREAD, 0); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("sqlite: config single-thread: result code %d", rc)
	}
	return nil
}
