// Package sse reads and writes Server-Sent Events as the WHATWG HTML standard
// specifies them ("9.2 Server-sent events", event stream interpretation), shaped
// for a proxy that forwards a stream byte for byte while looking at each event
// on the way past.
//
// The Reader has no line-length limit (unlike bufio.Scanner's 64 KiB default),
// accepts "\n", "\r\n" and "\r" line endings, and hands back every byte it
// read: each value returned by Next carries the exact input bytes of its block
// in Raw, so concatenating Raw over all calls reproduces the input.
//
// The reader works on bytes and does not decode UTF-8; invalid UTF-8 passes
// through unchanged, which is what a proxy wants.
package sse

import (
	"bytes"
	"errors"
	"io"
)

const (
	// DefaultBufferSize is the initial buffer size of NewReader. It grows on
	// demand. 1 KiB holds a few typical chat chunks (150-400 bytes each), and
	// a stream's events arrive one Read at a time anyway; the buffer lives as
	// long as the stream, so with 10,000 open streams 4 KiB cost 30 MB more.
	// A 32 KiB start made BenchmarkReader (one Reader per 50-chunk stream)
	// about 3x slower.
	DefaultBufferSize = 1 << 10
	// DefaultMaxEventSize bounds the bytes of one block (all its lines and
	// terminators) so a misbehaving upstream cannot grow the buffer forever.
	DefaultMaxEventSize = 32 << 20
)

// ErrEventTooLarge is returned by Next when one block exceeds the reader's
// maximum event size.
var ErrEventTooLarge = errors.New("sse: event exceeds maximum size")

// utf8BOM is stripped once at the start of a stream, as the spec requires.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Event is one block of the stream: the lines up to and including the blank
// line that ends it.
//
// Data and Raw alias the Reader's internal buffer and are valid only until the
// next call to Next; copy what you keep. Their capacity is clipped, so
// appending to them never overwrites the buffer.
type Event struct {
	// Event is the value of the block's last "event" field, "" when absent
	// (browsers then report "message").
	Event string
	// ID is the last event ID: per the spec it persists across events until
	// another "id" field changes it. "id" values containing NUL are ignored.
	ID string
	// Data is the block's "data" values joined with "\n". Nil when the block
	// had no data field.
	Data []byte
	// Raw is the exact input bytes of the block, including every line
	// terminator and the terminating blank line.
	Raw []byte
	// Retry is the reconnection time in milliseconds from the block's last
	// valid "retry" field, 0 when absent.
	Retry int
	// Dispatch reports whether the block is an event the spec dispatches
	// (it had at least one "data" field). Blocks that are only comments,
	// keep-alives, blank lines or id/event/retry fields are returned with
	// Dispatch false so a proxy can still forward their Raw bytes; consumers
	// of events should skip them.
	Dispatch bool
}

// Reader reads blocks from an event stream. It is not safe for concurrent use.
type Reader struct {
	src    io.Reader
	buf    []byte
	r, w   int   // buf[r:w] is unread input; buf[r] starts the current block
	err    error // sticky error from src, returned once buf[r:w] is used up
	max    int
	skipLF bool // the previous line ended with "\r" at the end of buf: skip one "\n"
	begun  bool // the BOM check at stream start is done

	lastID   string // persists across blocks (the spec's "last event ID buffer")
	lastType string // interns repeated event types so they cost no allocation

	// Per-block state. Offsets are relative to r so they survive compaction.
	evType    string
	retry     int
	dataLines int
	dataOff   int    // first data value is buf[r+dataOff : r+dataEnd],
	dataEnd   int    // used as is when it is the only one
	data      []byte // joined values, when dataLines > 1
}

// NewReader returns a Reader with a DefaultBufferSize buffer. The Reader keeps
// its own growable buffer and reads src directly, so a *bufio.Reader may be
// passed (its buffered bytes are read first) but is not needed.
func NewReader(src io.Reader) *Reader {
	return NewReaderSize(src, DefaultBufferSize)
}

// NewReaderSize is NewReader with an initial buffer of size bytes (minimum 512).
// The buffer grows as needed up to the maximum event size.
func NewReaderSize(src io.Reader, size int) *Reader {
	size = max(size, 512)
	return &Reader{src: src, buf: make([]byte, size), max: max(DefaultMaxEventSize, size)}
}

// SetMaxEventSize changes the largest block Next accepts before it returns
// ErrEventTooLarge. Values below the current buffer size are raised to it.
func (r *Reader) SetMaxEventSize(n int) {
	r.max = max(n, len(r.buf))
}

// Next returns the next block of the stream.
//
// It returns io.EOF when the input ended cleanly on a block boundary. When
// the input ends inside a block (no terminating blank line), the spec says the
// incomplete event is discarded: Next returns it with Dispatch false, Raw set
// to the trailing bytes (so a proxy can still forward them), the fields parsed
// so far (including an unterminated last line), and io.ErrUnexpectedEOF; later
// calls return io.EOF. Any other read error is returned the same way: with the
// trailing bytes in Raw, and again on later calls.
func (r *Reader) Next() (Event, error) {
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
	r.evType, r.retry, r.dataLines = "", 0, 0
	pos := 0        // start of the current line, relative to r.r
	scan := 0       // bytes of the current line already searched for a terminator
	leadLF := false // the block began with the "\n" of a split "\r\n"
	for {
		if !r.begun {
			avail := r.buf[r.r:r.w]
			if len(avail) < len(utf8BOM) && r.err == nil && bytes.HasPrefix(utf8BOM, avail) {
				r.fill()
				continue
			}
			r.begun = true
			if bytes.HasPrefix(avail, utf8BOM) {
				pos = len(utf8BOM)
			}
		}
		start := r.r + pos
		if r.skipLF && start < r.w {
			r.skipLF = false
			if r.buf[start] == '\n' {
				pos++
				start++
				leadLF = pos == 1
			}
		}
		if !r.skipLF {
			if eol, term, ok := r.findEOL(start + scan); ok {
				line := r.buf[start:eol]
				pos = eol + term - r.r
				scan = 0
				if len(line) == 0 {
					ev := r.event()
					ev.Raw = r.buf[r.r : r.r+pos : r.r+pos]
					r.r += pos
					return ev, nil
				}
				r.field(line, start-r.r)
				continue
			}
			scan = r.w - start
		}
		if r.err != nil {
			return r.tail(start, leadLF)
		}
		r.fill()
	}
}

// findEOL finds the first line terminator at or after from. It returns the
// index of the terminator and its length. A "\r" that is the last buffered
// byte ends the line at once (an event must not wait for the next read), and
// any "\n" that follows is skipped later through skipLF.
func (r *Reader) findEOL(from int) (eol, term int, ok bool) {
	seg := r.buf[from:r.w]
	lf := bytes.IndexByte(seg, '\n')
	lim := seg
	if lf >= 0 {
		lim = seg[:lf]
	}
	if cr := bytes.IndexByte(lim, '\r'); cr >= 0 {
		eol = from + cr
		switch {
		case eol+1 < r.w:
			if r.buf[eol+1] == '\n' {
				return eol, 2, true
			}
		case r.err == nil:
			r.skipLF = true
		}
		return eol, 1, true
	}
	if lf >= 0 {
		return from + lf, 1, true
	}
	return 0, 0, false
}

// tail returns what is left when the source has failed or ended.
func (r *Reader) tail(start int, leadLF bool) (Event, error) {
	err := r.err
	n := r.w - r.r
	if n == 0 {
		return Event{}, err
	}
	if start < r.w {
		r.field(r.buf[start:r.w], start-r.r)
	}
	ev := r.event()
	ev.Dispatch = false
	ev.Raw = r.buf[r.r:r.w:r.w]
	r.r = r.w
	if err == io.EOF {
		if leadLF && n == 1 {
			// Only the "\n" of a "\r\n" split across reads: a clean end.
			return ev, nil
		}
		err = io.ErrUnexpectedEOF
	}
	return ev, err
}

// field interprets one non-empty line; off is its offset from r.r.
func (r *Reader) field(line []byte, off int) {
	if line[0] == ':' {
		return // comment
	}
	name, value, voff := line, line[:0], len(line)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, voff = line[:i], i+1
		if voff < len(line) && line[voff] == ' ' {
			voff++
		}
		value = line[voff:]
	}
	switch string(name) {
	case "data":
		r.dataLines++
		switch r.dataLines {
		case 1:
			r.dataOff, r.dataEnd = off+voff, off+len(line)
			return
		case 2:
			r.data = append(r.data[:0], r.buf[r.r+r.dataOff:r.r+r.dataEnd]...)
		}
		r.data = append(r.data, '\n')
		r.data = append(r.data, value...)
	case "event":
		if string(value) != r.lastType {
			r.lastType = string(value)
		}
		r.evType = r.lastType
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != r.lastID {
			r.lastID = string(value)
		}
	case "retry":
		if n, ok := parseDigits(value); ok {
			r.retry = n
		}
	}
}

// event builds the Event for the current block (Raw is set by the caller).
func (r *Reader) event() Event {
	ev := Event{Event: r.evType, ID: r.lastID, Retry: r.retry}
	switch {
	case r.dataLines == 1:
		a, b := r.r+r.dataOff, r.r+r.dataEnd
		ev.Data, ev.Dispatch = r.buf[a:b:b], true
	case r.dataLines > 1:
		ev.Data, ev.Dispatch = r.data[:len(r.data):len(r.data)], true
	}
	return ev
}

// fill makes room in buf and reads from src once. It records a read error,
// io.ErrNoProgress or ErrEventTooLarge in r.err.
func (r *Reader) fill() {
	if r.w == len(r.buf) && r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	if r.w == len(r.buf) {
		if len(r.buf) >= r.max {
			r.err = ErrEventTooLarge
			return
		}
		nb := make([]byte, min(2*len(r.buf), r.max))
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	// Like bufio, give up on a source that keeps returning 0, nil.
	for range 100 {
		n, err := r.src.Read(r.buf[r.w:])
		r.w += n
		if err != nil {
			r.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	r.err = io.ErrNoProgress
}

// parseDigits parses a non-empty run of ASCII digits, saturating instead of
// overflowing.
func parseDigits(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	const limit = 1 << 31
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int(c-'0'), limit)
	}
	return n, true
}

// Wait reads from the source until the unread input holds a complete
// block, the source fails, or the unread input reaches waitLimit (a larger
// block is left to Next), and does nothing when a complete block is
// already buffered. It lets a caller block for the next event from a frame
// of its own choosing: a proxy holding thousands of open streams waits in
// Wait from a shallow stack, where waiting inside Next would keep Next's
// frame and every caller's under each stream (docs/perf.md). Like Next, it
// invalidates the Data and Raw of the event returned before.
func (r *Reader) Wait() {
	for r.err == nil && r.w-r.r < waitLimit && !r.HasBufferedEvent() {
		if r.r == r.w {
			r.r, r.w = 0, 0
			if a, ok := r.src.(awaiter); ok {
				a.Await()
			}
		}
		r.fill()
	}
}

// awaiter is a source that can wait for input without reading it, closer to
// the socket than its Read would (internal/h1's response body).
type awaiter interface{ Await() }

// waitLimit bounds the unread input Wait reads up to, and so what each of
// its checks for a complete block scans.
const waitLimit = 64 << 10

// HasBufferedEvent reports whether the unread input already holds a complete
// block, so the next call to Next will not block on the source. A proxy uses
// it to coalesce flushes: it flushes only when no further event is ready.
//
// A block ends at a blank line: a line terminator ("\n", "\r\n" or a lone
// "\r") right after another, or at the start of the block. Of two
// terminators in a row the first ends in "\n" or "\r" and the second
// begins with "\n" or "\r"; "\r" then "\n" is one terminator, so "\n\n",
// "\n\r" and "\r\r" are exactly the blank lines after a line. The answer is
// exact: a wrong yes would leave an event unflushed while Next waits, a
// wrong no would have Wait block with an event in hand.
func (r *Reader) HasBufferedEvent() bool {
	rest := r.buf[r.r:r.w]
	if !r.begun {
		// A byte-order mark may precede the first line: only Next knows.
		// Yes, so that Wait leaves the stream's start to Next.
		return len(rest) > 0
	}
	if r.skipLF && len(rest) > 0 && rest[0] == '\n' {
		rest = rest[1:] // the "\n" of a "\r\n" whose "\r" ended the last block
	}
	if len(rest) > 0 && (rest[0] == '\n' || rest[0] == '\r') {
		return true // a blank line first: an empty block
	}
	return hasBlankLine(rest)
}

// hasBlankLine reports whether b holds "\n\n", "\n\r" or "\r\r", in one
// pass over its "\n"s (a stream's usual line end) and, only where b holds
// a "\r", one over those: three bytes.Contains cost a stream ~5% more
// instructions (BenchmarkForwardStream).
func hasBlankLine(b []byte) bool {
	for rest := b; ; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 || i+1 == len(rest) {
			break
		}
		if c := rest[i+1]; c == '\n' || c == '\r' {
			return true
		}
		rest = rest[i+1:]
	}
	for rest := b; ; {
		i := bytes.IndexByte(rest, '\r')
		if i < 0 || i+1 == len(rest) {
			return false
		}
		if rest[i+1] == '\r' {
			return true
		}
		rest = rest[i+1:]
	}
}
