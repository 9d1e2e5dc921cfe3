package sqlite

import (
	"os"
	"time"
)

// WriterPID is the running writer process's id, 0 when none.
func WriterPID(s *Store) int { return s.proc.pid() }

// SetWriterRetry sets how long the store inserts in-process after the
// writer process failed.
func SetWriterRetry(s *Store, d time.Duration) { s.proc.retry = d }

// SetWriterStarved sets the round trip (per row, and at least) above which
// the writer process counts as starved.
// A busy share of 0 drops the check of the gateway's own CPU use.
func SetWriterStarved(s *Store, perRow, least time.Duration, busy float64) {
	s.proc.starvedPerRow, s.proc.starvedMin, s.proc.starvedBusy = perRow, least, busy
}

// InlinedBatches counts batches inserted in-process because the writer
// process was starved.
func InlinedBatches(s *Store) int {
	s.proc.mu.Lock()
	defer s.proc.mu.Unlock()
	return s.proc.inlined
}

// GrowPipe and PipeSize are the writer process's pipe sizing.
var GrowPipe = growPipe

const PipeSize = pipeSize

// WriterStdin is the running writer process's input pipe, nil when none.
func WriterStdin(s *Store) *os.File {
	s.proc.mu.Lock()
	defer s.proc.mu.Unlock()
	return s.proc.stdin
}

// SetWriterCalm sets how often, while batches go in-process after a
// starved answer, the gateway's CPU use is checked to end that early.
func SetWriterCalm(s *Store, every time.Duration) { s.proc.calmEvery = every }

// Pollable is the writer process's stdin, made readable through the poller.
var Pollable = pollable
