package telemetry

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  int // writes received
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return l.b.Write(p)
}

func (l *lockedBuf) snapshot() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.n
}

func TestBufferedWriterFlushesOnTimeAndClose(t *testing.T) {
	dst := &lockedBuf{}
	bw := newBufferedWriter(dst, 64<<10, 20*time.Millisecond)
	fmt.Fprintln(bw, "first")
	deadline := time.Now().Add(2 * time.Second)
	for {
		if s, _ := dst.snapshot(); s == "first\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a buffered line did not reach the destination within 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(bw, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	s, writes := dst.snapshot()
	if got := strings.Count(s, "\n"); got != 1+8*500 {
		t.Errorf("%d lines reached the destination; want %d", got, 1+8*500)
	}
	if writes > 100 {
		t.Errorf("%d write calls for 4001 lines; want them batched", writes)
	}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line != "first" && !strings.HasPrefix(line, "g") {
			t.Fatalf("torn line %q", line)
		}
	}
}
