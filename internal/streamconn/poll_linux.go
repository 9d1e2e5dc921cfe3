package streamconn

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller tells when a watched connection's client hangs up or sends bytes,
// for every taken connection at once: one goroutine blocked in epoll_wait,
// where net/http keeps a reading goroutine per connection. The runtime's
// own poller still owns the descriptors; a descriptor may sit in several
// epoll sets.
type poller struct {
	epfd int
	mu   sync.Mutex
	cbs  map[int32]func(hangup bool)
	next int32 // last key given out; keys are > 0
}

// newPoller starts a poller that lives as long as the process: a gateway
// makes one.
func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("streamconn: epoll: %w", err)
	}
	p := &poller{epfd: epfd, cbs: make(map[int32]func(bool))}
	go p.loop()
	return p, nil
}

// watch calls cb once, with hangup true when the client closed (or the
// connection failed) and false when bytes arrived. readable asks for the
// latter too. It returns the key that unwatch takes.
func (p *poller) watch(nc net.Conn, readable bool, cb func(hangup bool)) (int32, error) {
	events := uint32(unix.EPOLLRDHUP | unix.EPOLLONESHOT)
	if readable {
		events |= unix.EPOLLIN
	}
	p.mu.Lock()
	p.next++
	if p.next <= 0 {
		p.next = 1
	}
	key := p.next
	p.cbs[key] = cb
	p.mu.Unlock()
	err := control(nc, func(fd int) error {
		ev := unix.EpollEvent{Events: events, Fd: key}
		return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	})
	if err != nil {
		p.mu.Lock()
		delete(p.cbs, key)
		p.mu.Unlock()
		return 0, fmt.Errorf("streamconn: watch: %w", err)
	}
	return key, nil
}

// unwatch stops watching nc; its callback will not run after unwatch
// returns, unless it already was running.
func (p *poller) unwatch(nc net.Conn, key int32) {
	p.mu.Lock()
	delete(p.cbs, key)
	p.mu.Unlock()
	_ = control(nc, func(fd int) error { return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil) })
}

func (p *poller) loop() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			cb := p.cbs[ev.Fd]
			delete(p.cbs, ev.Fd)
			p.mu.Unlock()
			if cb != nil {
				cb(ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
			}
		}
	}
}

func control(nc net.Conn, f func(fd int) error) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
