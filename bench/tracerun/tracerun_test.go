package tracerun

import (
	"bytes"
	"runtime"
	"runtime/trace"
	"strings"
	"syscall"
	"testing"
	"time"
)

// spin keeps its goroutine on the P for d of CPU without blocking.
//
//go:noinline
func spin(d time.Duration) int {
	n := 0
	for start := time.Now(); time.Since(start) < d; {
		n++
	}
	return n
}

// pinger runs, waits for one value, and runs again.
//
//go:noinline
func pinger(c chan struct{}) {
	<-c
}

// A goroutine that computes for 20 ms and then blocks must show up as one
// long run ending in its blocking call, with spin's caller in the stack.
func TestAnalyzeFindsLongRun(t *testing.T) {
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Skipf("tracing unavailable: %v", err)
	}
	done := make(chan int)
	slept := make(chan struct{})
	pinged := make(chan struct{})
	for range 3 {
		go pinger(pinged)
	}
	go func() {
		// A blocking system call of 8 ms, like an fsync on a slow disk.
		ts := syscall.NsecToTimespec(int64(8 * time.Millisecond))
		syscall.Nanosleep(&ts, nil)
		close(slept)
	}()
	go func() {
		runtime.Gosched() // start the run below on a fresh slice
		n := spin(20 * time.Millisecond)
		done <- n // blocks until the receive: the run ends here
	}()
	time.Sleep(40 * time.Millisecond)
	<-done
	<-slept
	for range 3 {
		pinged <- struct{}{} // each pinger runs again once
	}
	time.Sleep(5 * time.Millisecond)
	trace.Stop()

	rep, err := Analyze(&buf, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Runs == 0 || rep.Running <= 0 || rep.Span <= 0 {
		t.Fatalf("empty report: %+v", rep)
	}
	// The spin may be preempted (10 ms slices) when other goroutines
	// want the P, so require the long runs to add up, not one run.
	var total time.Duration
	for _, g := range rep.Long {
		if strings.Contains(g.End, "TestAnalyzeFindsLongRun") {
			total += g.Total
		}
	}
	if total < 15*time.Millisecond {
		var out bytes.Buffer
		rep.Print(&out, 5*time.Millisecond, 10)
		t.Fatalf("no long run ending in the test goroutine:\n%s", out.String())
	}
	if rep.Quantiles[4] < 5*time.Millisecond {
		t.Errorf("max run %v; want >= 5ms", rep.Quantiles[4])
	}
	var sys time.Duration
	for _, g := range rep.Syscalls {
		if strings.Contains(g.End, "Nanosleep") {
			sys += g.Total
		}
	}
	if sys < 5*time.Millisecond {
		t.Errorf("the 8 ms system call is missing: %+v", rep.Syscalls)
	}
	var pingers *Kind
	for i, k := range rep.Kinds {
		if strings.HasSuffix(k.Func, "tracerun.pinger") {
			pingers = &rep.Kinds[i]
		}
	}
	if pingers == nil || pingers.Goroutines != 3 || pingers.Runs < 6 || pingers.Running <= 0 {
		t.Errorf("pinger goroutines: %+v; want 3 goroutines with at least 6 runs in all", pingers)
	}
	if rep.Waits[4] <= 0 {
		t.Errorf("no scheduling waits measured: %v", rep.Waits)
	}
	var out bytes.Buffer
	rep.Print(&out, 5*time.Millisecond, 10)
	if !strings.Contains(out.String(), "runs >= 5ms") || !strings.Contains(out.String(), "system calls >= 5ms") {
		t.Errorf("printout lacks its header:\n%s", out.String())
	}
}

func TestAnalyzeRejectsGarbage(t *testing.T) {
	if _, err := Analyze(strings.NewReader("not a trace"), time.Millisecond); err == nil {
		t.Fatal("Analyze accepted garbage")
	}
}
