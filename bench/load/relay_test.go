package load

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// echoServer answers every line with the same line until the client closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c) //nolint:errcheck // ends when either side closes
			})
		}
	})
	return ln.Addr().String()
}

func startRelay(t *testing.T, target string, hold bool) *Relay {
	t.Helper()
	r := &Relay{Listen: "127.0.0.1:0", Target: target, Hold: hold}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// roundTrip sends a line through c and wants it back.
func roundTrip(c net.Conn, br *bufio.Reader, msg string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a hung test fails instead of hanging
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return err
	}
	got, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return errors.New("echo mismatch: " + got)
	}
	return nil
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestRelayCutRefuseThenResume(t *testing.T) {
	r := startRelay(t, echoServer(t), false)
	c1, br1 := dial(t, r.Addr())
	if err := roundTrip(c1, br1, "before"); err != nil {
		t.Fatalf("relay before cut: %v", err)
	}
	if n := r.Cut(time.Hour); n != 1 {
		t.Errorf("Cut closed %d connections, want 1", n)
	}
	if err := roundTrip(c1, br1, "after-cut"); err == nil {
		t.Error("a connection open at the cut still works")
	}
	// The refusal may reset the dial itself or the first round trip.
	if c2, err := net.Dial("tcp", r.Addr()); err == nil {
		err = roundTrip(c2, bufio.NewReader(c2), "during")
		c2.Close()
		if err == nil {
			t.Error("a connection opened during the cut was relayed")
		}
	}
	r.Resume()
	c3, br3 := dial(t, r.Addr())
	if err := roundTrip(c3, br3, "resumed"); err != nil {
		t.Fatalf("relay after resume: %v", err)
	}
	st := r.Stats()
	if st.Accepted != 3 || st.Refused != 1 || st.Killed != 1 {
		t.Errorf("stats %+v, want 3 accepted, 1 refused, 1 killed", st)
	}
}

func TestRelayCutHoldRelaysAfterResume(t *testing.T) {
	r := startRelay(t, echoServer(t), true)
	r.Cut(time.Hour)
	c, br := dial(t, r.Addr())
	// The write is buffered by the kernel; the echo can only come back once
	// the relay dials the target, after the cut.
	errc := make(chan error, 1)
	go func() { errc <- roundTrip(c, br, "held") }()
	// Wait until the relay has taken the connection into its hold.
	for i := 0; r.Stats().Held == 0; i++ {
		if i > 1000 {
			t.Fatal("connection never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-errc:
		t.Fatalf("answered during the cut: %v", err)
	default:
	}
	r.Resume()
	if err := <-errc; err != nil {
		t.Fatalf("held connection after resume: %v", err)
	}
}

func TestRelayCutEndsByItself(t *testing.T) {
	r := startRelay(t, echoServer(t), false)
	r.Cut(20 * time.Millisecond)
	// Liveness, not speed: the cut must end within a generous bound.
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", r.Addr())
		if err == nil { // a refusal may already reset the dial
			err = roundTrip(c, bufio.NewReader(c), "x")
			c.Close()
		}
		if err == nil {
			return
		}
		if i > 500 {
			t.Fatalf("relay still cut after %d tries: %v", i, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayCloseEndsEverything(t *testing.T) {
	r := startRelay(t, echoServer(t), true)
	c1, br1 := dial(t, r.Addr())
	if err := roundTrip(c1, br1, "open"); err != nil {
		t.Fatal(err)
	}
	r.Cut(time.Hour)
	held, _ := dial(t, r.Addr())
	for i := 0; r.Stats().Held == 0; i++ {
		if i > 1000 {
			t.Fatal("connection never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	held.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // bound the read
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Error("held connection still open after Close")
	}
	if _, err := net.Dial("tcp", r.Addr()); err == nil {
		t.Error("relay still accepting after Close")
	}
}
