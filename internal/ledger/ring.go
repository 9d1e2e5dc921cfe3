package ledger

import "sync"

// Ring keeps the most recent records in memory, for the dashboard's live view
// and for tests. It is safe for concurrent use.
type Ring struct {
	mu   sync.Mutex
	buf  []Record
	next int
	full bool
}

// NewRing returns a ring holding the last n records.
func NewRing(n int) *Ring {
	if n < 1 {
		n = 1
	}
	return &Ring{buf: make([]Record, n)}
}

// Record stores rec, evicting the oldest when full.
func (r *Ring) Record(rec Record) {
	rec.RequestBody, rec.ResponseBody = nil, nil // keep the ring small
	r.mu.Lock()
	r.buf[r.next] = rec
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// Recent returns up to n records, newest first.
func (r *Ring) Recent(n int) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := r.next
	if r.full {
		size = len(r.buf)
	}
	n = min(n, size)
	out := make([]Record, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// Tee sends every record to each recorder in order.
type Tee []Recorder

// Record implements Recorder.
func (t Tee) Record(rec Record) {
	for _, r := range t {
		r.Record(rec)
	}
}
