package ledger

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// spillFile is the writer's overflow on disk: JSON lines, one Record each,
// appended and fsynced per batch. To replay, the writer renames it to
// path+".replaying" (so appends can go on meanwhile) and reads that file
// back; the file is removed only once every row in it reached the sink. A
// crash mid-replay leaves it for the next start, and replayed rows that had
// already been inserted are skipped by the sink (ids are unique).
type spillFile struct {
	path string
	mu   sync.Mutex // serializes appends and the rename
}

func (s *spillFile) replayPath() string { return s.path + ".replaying" }

// append writes recs and fsyncs.
func (s *spillFile) append(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: spill: %w", err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	enc := json.NewEncoder(bw)
	for i := range recs {
		if err = enc.Encode(&recs[i]); err != nil {
			break
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ledger: spill: %w", err)
	}
	return nil
}

// pending reports whether there is anything to replay.
func (s *spillFile) pending() bool {
	for _, p := range []string{s.replayPath(), s.path} {
		if st, err := os.Stat(p); err == nil && st.Size() > 0 {
			return true
		}
	}
	return false
}

// openReplay returns a reader over the next file to replay, or nil when
// there is none. An unfinished replay file comes first.
func (s *spillFile) openReplay() (*replayFile, error) {
	rp := s.replayPath()
	if _, err := os.Stat(rp); errors.Is(err, fs.ErrNotExist) {
		s.mu.Lock()
		st, err := os.Stat(s.path)
		switch {
		case errors.Is(err, fs.ErrNotExist) || (err == nil && st.Size() == 0):
			s.mu.Unlock()
			return nil, nil
		case err != nil:
			s.mu.Unlock()
			return nil, fmt.Errorf("ledger: spill: %w", err)
		}
		err = os.Rename(s.path, rp)
		s.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("ledger: spill: %w", err)
		}
	}
	f, err := os.Open(rp)
	if err != nil {
		return nil, fmt.Errorf("ledger: spill: %w", err)
	}
	return &replayFile{f: f, r: bufio.NewReaderSize(f, 256<<10), path: rp}, nil
}

// replayFile reads a spill file back in batches.
type replayFile struct {
	f    *os.File
	r    *bufio.Reader
	path string
	buf  []Record // batch read but not yet accepted by the sink
	eof  bool
}

// next returns the batch to insert: the retained one, or up to n new rows.
// bad counts lines that could not be decoded (a torn final line after a
// crash).
func (rf *replayFile) next(n int) (recs []Record, bad int, err error) {
	if len(rf.buf) > 0 || rf.eof {
		return rf.buf, 0, nil
	}
	for len(rf.buf) < n {
		line, err := rf.r.ReadBytes('\n')
		if len(line) > 0 {
			var rec Record
			if jerr := json.Unmarshal(line, &rec); jerr != nil || rec.ID == "" {
				bad++
			} else {
				rf.buf = append(rf.buf, rec)
			}
		}
		if errors.Is(err, io.EOF) {
			rf.eof = true
			break
		}
		if err != nil {
			return nil, bad, fmt.Errorf("ledger: spill replay: %w", err)
		}
	}
	return rf.buf, bad, nil
}

// done reports whether the file is exhausted and every row went through.
func (rf *replayFile) done() bool { return rf.eof && len(rf.buf) == 0 }

// close closes the file, removing it when fully replayed.
func (rf *replayFile) close() error {
	err := rf.f.Close()
	if rf.done() {
		if rerr := os.Remove(rf.path); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}
