package sqlite

import "time"

// WriterPID is the running writer process's id, 0 when none.
func WriterPID(s *Store) int { return s.proc.pid() }

// SetWriterRetry sets how long the store inserts in-process after the
// writer process failed.
func SetWriterRetry(s *Store, d time.Duration) { s.proc.retry = d }
