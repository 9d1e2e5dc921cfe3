package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// ev is the comparable part of a dispatched event.
type ev struct {
	Event, ID, Data string
	Retry           int
}

// refParse is a deliberately naive reading of the WHATWG algorithm over the
// whole input, used as the oracle for Reader.
func refParse(in string) []ev {
	in = strings.TrimPrefix(in, "\uFEFF")
	var out []ev
	var data []string
	evType, lastID, retry := "", "", 0
	for {
		i := strings.IndexAny(in, "\r\n")
		if i < 0 {
			return out // an unterminated line or event is discarded
		}
		line := in[:i]
		if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			i++
		}
		in = in[i+1:]
		if line == "" {
			if data != nil {
				out = append(out, ev{evType, lastID, strings.Join(data, "\n"), retry})
			}
			data, evType, retry = nil, "", 0
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "data":
			data = append(data, value)
		case "event":
			evType = value
		case "id":
			if !strings.Contains(value, "\x00") {
				lastID = value
			}
		case "retry":
			if n, ok := parseDigits([]byte(value)); ok {
				retry = n
			}
		}
	}
}

// readAll drains r, returning the dispatched events, all Raw bytes
// concatenated, and the terminal error (nil for a clean io.EOF).
func readAll(t testing.TB, r *Reader) (evs []ev, raw []byte, err error) {
	return readAllWaiting(t, r, false)
}

// readAllWaiting is readAll, calling Wait before each Next when wait is set.
func readAllWaiting(t testing.TB, r *Reader, wait bool) (evs []ev, raw []byte, err error) {
	for range 1 << 20 {
		if wait {
			r.Wait()
		}
		e, err := r.Next()
		raw = append(raw, e.Raw...)
		if e.Dispatch && err == nil {
			evs = append(evs, ev{e.Event, e.ID, string(e.Data), e.Retry})
		}
		if err == io.EOF {
			return evs, raw, nil
		}
		if err != nil {
			if _, err2 := r.Next(); err == io.ErrUnexpectedEOF && err2 != io.EOF {
				t.Errorf("Next after ErrUnexpectedEOF = %v; want io.EOF", err2)
			}
			return evs, raw, err
		}
	}
	t.Fatal("Next never returned io.EOF")
	return nil, nil, nil
}

// chunkReader returns its input n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.b[:min(c.n, len(c.b))])
	c.b = c.b[n:]
	return n, nil
}

// readers returns the same input split in different ways, to catch bugs at
// read boundaries (a "\r\n" split in two, a BOM split, a growing buffer).
func readers(in []byte) map[string]io.Reader {
	return map[string]io.Reader{
		"whole":    bytes.NewReader(in),
		"onebyte":  iotest.OneByteReader(bytes.NewReader(in)),
		"chunks7":  &chunkReader{in, 7},
		"dataerr":  iotest.DataErrReader(bytes.NewReader(in)),
		"halfread": iotest.HalfReader(bytes.NewReader(in)),
	}
}

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // far past bufio.Scanner's 64 KiB and our 32 KiB buffer
	tests := []struct {
		name    string
		in      string
		want    []ev
		wantErr error
	}{
		{"lf", "data: a\n\ndata: b\n\n", []ev{{Data: "a"}, {Data: "b"}}, nil},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []ev{{Data: "a"}, {Data: "b"}}, nil},
		{"cr", "data: a\r\rdata: b\r\r", []ev{{Data: "a"}, {Data: "b"}}, nil},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []ev{{Data: "a\nb\nc"}}, nil},
		{"one space stripped", "data:  a \ndata:b\n\n", []ev{{Data: " a \nb"}}, nil},
		{"no colon is empty value", "data\ndata\n\n", []ev{{Data: "\n"}}, nil},
		{"empty data dispatches", "data:\n\n", []ev{{Data: ""}}, nil},
		{"comments and keepalive", ": ping\n\n:\n\ndata: x\n: inside\n\n", []ev{{Data: "x"}}, nil},
		{"event type resets", "event: a\ndata: 1\n\ndata: 2\n\n", []ev{{Event: "a", Data: "1"}, {Data: "2"}}, nil},
		{"event without data", "event: a\n\ndata: 2\n\n", []ev{{Data: "2"}}, nil},
		{"id persists", "id: 7\ndata: 1\n\ndata: 2\n\nid\ndata: 3\n\n", []ev{{ID: "7", Data: "1"}, {ID: "7", Data: "2"}, {Data: "3"}}, nil},
		{"id with NUL ignored", "id: 1\n\nid: a\x00b\ndata: x\n\n", []ev{{ID: "1", Data: "x"}}, nil},
		{"retry", "retry: 1500\ndata: x\n\nretry: 1x\ndata: y\n\n", []ev{{Data: "x", Retry: 1500}, {Data: "y"}}, nil},
		{"unknown field ignored", "foo: bar\ndata: x\n\n", []ev{{Data: "x"}}, nil},
		{"field name is case sensitive", "Data: x\ndata: y\n\n", []ev{{Data: "y"}}, nil},
		{"bom stripped once", "\uFEFFdata: a\n\n\uFEFFdata: b\n\n", []ev{{Data: "a"}}, nil},
		{"leading blank lines", "\n\n\r\ndata: a\n\n", []ev{{Data: "a"}}, nil},
		{"long line", "data: " + long + "\n\n", []ev{{Data: long}}, nil},
		{"long multiline", "data: " + long + "\ndata: " + long + "\n\n", []ev{{Data: long + "\n" + long}}, nil},
		{"utf8", "data: 你好 👋\n\n", []ev{{Data: "你好 👋"}}, nil},
		{"empty input", "", nil, nil},
		{"unterminated event", "data: a\n\ndata: b\n", []ev{{Data: "a"}}, io.ErrUnexpectedEOF},
		{"unterminated line", "data: a\n\ndata: b", []ev{{Data: "a"}}, io.ErrUnexpectedEOF},
		{"trailing cr then eof", "data: a\r\r", []ev{{Data: "a"}}, nil},
		{"trailing crlf pair", "data: a\r\n\r\n", []ev{{Data: "a"}}, nil},
	}
	for _, tt := range tests {
		for rname, src := range readers([]byte(tt.in)) {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, raw, err := readAll(t, NewReaderSize(src, 512))
				if rname == "dataerr" || rname == "whole" {
					// Same chunking as refParse sees: cross-check the oracle too.
					if diff := cmp.Diff(tt.want, refParse(tt.in)); diff != "" {
						t.Errorf("refParse disagrees with the table (-want +got):\n%s", diff)
					}
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v; want %v", err, tt.wantErr)
				}
				if string(raw) != tt.in {
					t.Errorf("concatenated Raw = %q; want the input %q", trunc(raw), trunc([]byte(tt.in)))
				}
			})
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return append(b[:80:80], "..."...)
	}
	return b
}

func TestReaderRawAndAliasing(t *testing.T) {
	in := ": hi\n\nid: 1\r\ndata: a\r\ndata: b\r\n\r\ndata: c\n\n"
	r := NewReader(strings.NewReader(in))
	want := []struct {
		raw, data string
		dispatch  bool
	}{
		{": hi\n\n", "", false},
		{"id: 1\r\ndata: a\r\ndata: b\r\n\r\n", "a\nb", true},
		{"data: c\n\n", "c", true},
	}
	for i, w := range want {
		e, err := r.Next()
		if err != nil {
			t.Fatalf("Next #%d: %v", i, err)
		}
		if string(e.Raw) != w.raw || string(e.Data) != w.data || e.Dispatch != w.dispatch {
			t.Errorf("Next #%d = raw %q data %q dispatch %v; want %q %q %v", i, e.Raw, e.Data, e.Dispatch, w.raw, w.data, w.dispatch)
		}
		if cap(e.Raw) != len(e.Raw) || cap(e.Data) != len(e.Data) {
			t.Errorf("Next #%d: Raw/Data capacity not clipped (%d/%d, %d/%d)", i, len(e.Raw), cap(e.Raw), len(e.Data), cap(e.Data))
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("final Next = %v; want io.EOF", err)
	}
}

func TestReaderTail(t *testing.T) {
	r := NewReader(strings.NewReader("data: 1\n\ndata: [DONE]\n"))
	if e, err := r.Next(); err != nil || string(e.Data) != "1" {
		t.Fatalf("Next = %q, %v", e.Data, err)
	}
	e, err := r.Next()
	if err != io.ErrUnexpectedEOF || e.Dispatch || string(e.Data) != "[DONE]" || string(e.Raw) != "data: [DONE]\n" {
		t.Errorf("tail = {Data %q Raw %q Dispatch %v}, %v; want [DONE], its raw bytes, false, ErrUnexpectedEOF", e.Data, e.Raw, e.Dispatch, err)
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)))
	if e, err := r.Next(); err != nil || string(e.Data) != "a" {
		t.Fatalf("Next = %q, %v", e.Data, err)
	}
	for i := range 2 {
		e, err := r.Next()
		if !errors.Is(err, boom) {
			t.Errorf("Next #%d err = %v; want boom", i, err)
		}
		if wantRaw := []string{"data: b", ""}[i]; string(e.Raw) != wantRaw {
			t.Errorf("Next #%d Raw = %q; want %q", i, e.Raw, wantRaw)
		}
	}

	r = NewReaderSize(strings.NewReader("data: "+strings.Repeat("x", 5000)+"\n\n"), 1024)
	r.SetMaxEventSize(2048)
	if _, err := r.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("oversized event: err = %v; want ErrEventTooLarge", err)
	}

	r = NewReader(iotest.ErrReader(nil)) // (0, nil) forever
	if _, err := r.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("stuck source: err = %v; want io.ErrNoProgress", err)
	}
}

// goldenEvent is how a block is written to testdata/*.golden.
type goldenEvent struct {
	Dispatch bool   `json:"dispatch"`
	Event    string `json:"event,omitempty"`
	ID       string `json:"id,omitempty"`
	Data     string `json:"data,omitempty"`
	Retry    int    `json:"retry,omitempty"`
	Raw      string `json:"raw"`
	Err      string `json:"err,omitempty"`
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.sse")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.sse transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			enc := json.NewEncoder(&got)
			enc.SetEscapeHTML(false)
			r := NewReader(bytes.NewReader(in))
			for range 10000 {
				e, err := r.Next()
				if err == io.EOF {
					break
				}
				g := goldenEvent{e.Dispatch, e.Event, e.ID, string(e.Data), e.Retry, string(e.Raw), ""}
				if err != nil {
					g.Err = err.Error()
				}
				if err := enc.Encode(g); err != nil {
					t.Fatal(err)
				}
			}
			golden := strings.TrimSuffix(file, ".sse") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n", "data: a\r\n\r\n", "data: a\r\r", "\uFEFFdata: a\n\n", ": c\n\nid: 1\nevent: e\nretry: 5\ndata: x\ndata: y\n\n",
		"data: a\r", "data:\r\n\r", "\r\n\r\n\n\r", "data: a\n\ndata: b",
	} {
		f.Add([]byte(s), uint8(3))
	}
	files, _ := filepath.Glob("testdata/*.sse")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b, uint8(5))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		want := refParse(string(in))
		for name, src := range map[string]io.Reader{
			"whole":        bytes.NewReader(in),
			"chunked":      &chunkReader{in, int(chunk%16) + 1},
			"chunked+wait": &chunkReader{in, int(chunk%16) + 1},
			"onebyte+wait": iotest.OneByteReader(bytes.NewReader(in)),
		} {
			got, raw, err := readAllWaiting(t, NewReaderSize(src, 512), strings.HasSuffix(name, "+wait"))
			if err != nil && err != io.ErrUnexpectedEOF {
				t.Fatalf("%s: err = %v", name, err)
			}
			if !bytes.Equal(raw, in) {
				t.Fatalf("%s: concatenated Raw = %q; want input %q", name, raw, in)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s: events differ from the reference parser (-want +got):\n%s", name, diff)
			}
		}
	})
}

func TestHasBufferedEvent(t *testing.T) {
	tests := []struct {
		in   string
		want bool // after the first Next
	}{
		{"data: a\n\ndata: b\n\n", true},
		{"data: a\n\ndata: b\n", false},
		{"data: a\n\n", false},
		{"data: a\r\n\r\ndata: b\r\n\r\n", true},
		{"data: a\r\rdata: b\r\r", true},
	}
	for _, tt := range tests {
		r := NewReader(strings.NewReader(tt.in))
		if _, err := r.Next(); err != nil {
			t.Fatalf("Next(%q): %v", tt.in, err)
		}
		if got := r.HasBufferedEvent(); got != tt.want {
			t.Errorf("HasBufferedEvent after first event of %q = %v; want %v", tt.in, got, tt.want)
		}
	}
}

// countingReader counts the Reads that reach it.
type countingReader struct {
	io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.Reader.Read(p)
}

// TestReaderWait checks that Wait reads until a complete block is buffered
// or the source fails, and not at all when one is, and that a stream read
// with Wait before every Next gives what it gives without.
func TestReaderWait(t *testing.T) {
	const in = "data: a\n\ndata: b\n\ndata: c"
	type step struct {
		reads int    // the source's Reads after Wait
		data  string // what Next then returns
		err   error
	}
	tests := []struct {
		chunk int
		steps []step
	}{
		{9, []step{ // each Read ends on an event's end: every Wait reads, the last to the end
			{1, "a", nil}, {2, "b", nil}, {4, "c", io.ErrUnexpectedEOF}, {4, "", io.EOF},
		}},
		{12, []step{ // each Read ends inside an event: Wait reads until one is whole
			{1, "a", nil}, {2, "b", nil}, {4, "c", io.ErrUnexpectedEOF}, {4, "", io.EOF},
		}},
		{18, []step{ // two events in one Read: the second Wait does not read
			{1, "a", nil}, {1, "b", nil}, {3, "c", io.ErrUnexpectedEOF}, {3, "", io.EOF},
		}},
	}
	for _, tt := range tests {
		src := &countingReader{Reader: &chunkReader{[]byte(in), tt.chunk}}
		r := NewReaderSize(src, 512)
		for i, s := range tt.steps {
			r.Wait()
			if src.reads != s.reads {
				t.Fatalf("chunk %d, step %d: %d reads after Wait; want %d", tt.chunk, i, src.reads, s.reads)
			}
			e, err := r.Next()
			if err != s.err || string(e.Data) != s.data {
				t.Fatalf("chunk %d, step %d: Next = %q, %v; want %q, %v", tt.chunk, i, e.Data, err, s.data, s.err)
			}
		}
	}
	body := []byte("\uFEFF: c\n\nid: 1\r\ndata: x\r\n\r\ndata: y\rdata: z\r\r\nevent: e\ndata: w\n\ndata: cut")
	want, wantRaw, wantErr := readAll(t, NewReaderSize(bytes.NewReader(body), 512))
	for name, src := range readers(body) {
		got, raw, err := readAllWaiting(t, NewReaderSize(src, 512), true)
		if err != wantErr || !bytes.Equal(raw, wantRaw) {
			t.Errorf("%s: with Wait, Raw %q and error %v; want %q and %v", name, raw, err, wantRaw, wantErr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: with Wait, events differ (-want +got):\n%s", name, diff)
		}
	}
}

// FuzzHasBufferedEvent: HasBufferedEvent is exact. Whenever Next returns a
// block without reading, it said yes (else Wait would block with an event
// in hand), and whenever Next has to read, it said no (else a proxy would
// leave the last event unflushed while Next waits).
func FuzzHasBufferedEvent(f *testing.F) {
	for _, s := range []string{
		"data: a\n\ndata: b\n\n", "data: a\r\rdata: b\r", "data: a\n\r\ndata: b\r\n\r\n", "\n\ndata: a\n\n",
		"data: a\r", "data: a\r\n\r", "\uFEFFdata: a\n\n\n", ": c\r\n\r\n\r\n\n\r\r",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		src := &countingReader{Reader: &chunkReader{in, int(chunk%16) + 1}}
		r := NewReaderSize(src, 512)
		for range len(in) + 2 {
			begun, has, reads := r.begun, r.HasBufferedEvent(), src.reads
			_, err := r.Next()
			read := src.reads != reads
			switch {
			case begun && has && read:
				t.Fatalf("%q (chunks of %d): HasBufferedEvent said yes, then Next read", in, chunk%16+1)
			case !has && !read && err == nil:
				t.Fatalf("%q (chunks of %d): HasBufferedEvent said no, then Next returned a block without reading", in, chunk%16+1)
			}
			if err != nil {
				return
			}
		}
	})
}
