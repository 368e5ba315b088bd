package sip

import (
	"context"
	"net"
	"sync"
)

// servingGate tells when sipgo serves every UDP listener. Until sipgo
// reads a listener it has not put it in its connection pool, and a request
// sent from the listener's address (the trunk's OPTIONS, with
// WithClientConnectionAddr) makes sipgo bind a second socket there, which
// fails with "address already in use". Under load that happened to the
// first keepalive in about 3 starts out of 170, and the trunk stayed down
// for a whole options_interval.
type servingGate struct {
	mu    sync.Mutex
	conns []*servingConn
}

// servingConn closes reading on sipgo's first read: sipgo's UDP transport
// adds the listener to its pool just before it starts its read loop.
type servingConn struct {
	net.PacketConn
	once    sync.Once
	reading chan struct{}
}

func (c *servingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.reading) })
	return c.PacketConn.ReadFrom(b)
}

// watch wraps a UDP listener before it is handed to sipgo.
func (g *servingGate) watch(conn net.PacketConn) net.PacketConn {
	c := &servingConn{PacketConn: conn, reading: make(chan struct{})}
	g.mu.Lock()
	g.conns = append(g.conns, c)
	g.mu.Unlock()
	return c
}

func (g *servingGate) list() []*servingConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*servingConn(nil), g.conns...)
}

// wait returns once every watched listener is served, or ctx's error.
func (g *servingGate) wait(ctx context.Context) error {
	for _, c := range g.list() {
		select {
		case <-c.reading:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// ready reports, without waiting, whether every watched listener is served.
func (g *servingGate) ready() bool {
	for _, c := range g.list() {
		select {
		case <-c.reading:
		default:
			return false
		}
	}
	return true
}
