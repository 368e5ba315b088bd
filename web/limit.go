package web

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// maxConnsPerSource bounds the connections one host holds open on a
// listener. A browser needs a few (HTTP/2: one; HTTP/1.1: six per host,
// the supervisor's live stream included); a PC on the workshop LAN opening
// thousands, each kept alive by a request every two minutes, would
// otherwise take memory and file descriptors from the consoles and from
// SIP's own TCP listener.
const maxConnsPerSource = 64

// perSourceListener accepts at most max connections at once from one
// source (an IPv4 address, or an IPv6 address's /64: a host has all of
// its /64); beyond, a connection is closed at once, counted and logged
// (at most once a minute).
type perSourceListener struct {
	net.Listener
	max     int
	refused prometheus.Counter
	log     *slog.Logger
	warned  atomic.Int64 // unix seconds of the last warning

	mu    sync.Mutex
	conns map[netip.Prefix]int
}

func limitPerSource(l net.Listener, max int, refused prometheus.Counter, log *slog.Logger) *perSourceListener {
	return &perSourceListener{Listener: l, max: max, refused: refused, log: log, conns: map[netip.Prefix]int{}}
}

func (l *perSourceListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		k, ok := sourcePrefix(c.RemoteAddr())
		if !ok { // not TCP/IP (a test's pipe): nothing to count by
			return c, nil
		}
		l.mu.Lock()
		if l.conns[k] >= l.max {
			l.mu.Unlock()
			c.Close()
			l.refused.Inc()
			if everyMinute(&l.warned) {
				l.log.Warn("a host holds too many connections open: further ones closed",
					"source", k.String(), "max", l.max, "listener", l.Addr().String())
			}
			continue
		}
		l.conns[k]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(k) }}, nil
	}
}

func (l *perSourceListener) release(k netip.Prefix) {
	l.mu.Lock()
	if l.conns[k]--; l.conns[k] <= 0 {
		delete(l.conns, k)
	}
	l.mu.Unlock()
}

// open is the number of connections src holds (tests).
func (l *perSourceListener) open(src netip.Addr) int {
	k, _ := sourcePrefix(net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 1)))
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[k]
}

// sourcePrefix is what connections are counted by.
func sourcePrefix(a net.Addr) (netip.Prefix, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}, false
	}
	ip := ta.AddrPort().Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// countedConn gives its slot back once, on the first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
