package telemetry

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// bufferedWriter batches log lines into few write syscalls: a line costs a
// copy, and the buffer is written out when full, every interval, and on
// Close. At 1000 requests a second an unbuffered access log spends more CPU
// in write(2) than in encoding. A line may wait up to interval before it
// reaches the file or terminal.
type bufferedWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	dst  io.Writer
	stop chan struct{}
	done chan struct{}
}

func newBufferedWriter(dst io.Writer, size int, interval time.Duration) *bufferedWriter {
	b := &bufferedWriter{w: bufio.NewWriterSize(dst, size), dst: dst, stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop(interval)
	return b
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *bufferedWriter) loop(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.flush()
		case <-b.stop:
			b.flush()
			return
		}
	}
}

func (b *bufferedWriter) flush() {
	b.mu.Lock()
	_ = b.w.Flush()
	b.mu.Unlock()
}

// Close flushes what is buffered and stops the flusher; it does not close
// the destination.
func (b *bufferedWriter) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	return nil
}
