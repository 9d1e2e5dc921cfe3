//go:build !linux

package streamconn

import (
	"errors"
	"net"
)

// poller is Linux's (epoll); elsewhere no connection is taken and streams
// stay with net/http.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("streamconn: not supported on this system") }

func (p *poller) watch(net.Conn, bool, func(bool)) (int32, error) {
	return 0, errors.New("streamconn: not supported")
}
func (p *poller) unwatch(net.Conn, int32) {}
