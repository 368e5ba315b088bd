package sip

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The TCP front door. sipgo's TCP transport accepts in a loop and returns
// from Serve on the first Accept error, so ~20,000 idle connections
// (`accept4: too many open files`) once ended the process; nor does it
// close a connection that never speaks. tcpListener wraps the listener
// sipgo serves:
//
//   - Accept errors are retried with backoff (as net/http's Server does),
//     never returned, except once the listener is closed;
//   - connections beyond a total cap, or beyond a cap per source address,
//     are closed at once (sip.limits.tcp_connections,
//     tcp_connections_per_source), as are connections from a banned source;
//   - the per-source message rate (sip.limits.requests_per_source, shared
//     with UDP) is enforced by reading more slowly: a stream cannot drop a
//     message, so beyond the rate the connection's reads wait for tokens and
//     TCP's flow control slows the sender (messages are counted as header
//     terminators, CRLF CRLF, in what is read);
//   - a connection without traffic in either direction for
//     sip.limits.tcp_idle_timeout is closed: each Read waits at most that
//     long, and a wait that times out ends the connection unless something
//     was written meanwhile.
//
// Connections Plateau dials itself (to a TCP trunk) are not wrapped.

// TCPLimits bound the SIP TCP listener.
type TCPLimits struct {
	MaxConnections          int           // all accepted connections; 0: no cap
	MaxConnectionsPerSource int           // from one IP address; 0: no cap
	IdleTimeout             time.Duration // no traffic either way: closed; 0: never
}

type tcpListener struct {
	net.Listener
	s      *Server
	limits TCPLimits
	sleep  func(time.Duration) <-chan time.Time
	// conns is the gauge of open connections (TCP's; the TLS listener,
	// transport_tls.go, has its own); encrypted: its connections carry
	// TLS records, throttled after decryption instead.
	conns     prometheus.Gauge
	encrypted bool

	mu       sync.Mutex
	total    int
	perSrc   map[netip.Addr]int
	closed   chan struct{}
	closeErr error
	once     sync.Once
}

func (s *Server) newTCPListener(l net.Listener) *tcpListener {
	return &tcpListener{Listener: l, s: s, limits: s.opts.TCP, sleep: time.After, conns: s.metrics.tcpConns,
		perSrc: map[netip.Addr]int{}, closed: make(chan struct{})}
}

// Accept returns the next connection within the limits. It returns an
// error only when the listener is closed.
func (l *tcpListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			delay = nextBackoff(delay)
			l.s.metrics.acceptErrors.Inc()
			l.s.log.Error("sip tcp accept failed, retrying", "err", err, "retry_in", delay)
			select {
			case <-l.sleep(delay):
			case <-l.closed:
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		ip := remoteIP(c)
		if why := l.admit(ip); why != "" {
			// Counted before the close the peer sees (tests read the metric then).
			l.s.metrics.tcpRefused.WithLabelValues(why).Inc()
			l.s.refusedSource(ip, "tcp_"+why)
			c.Close()
			continue
		}
		return &tcpConn{Conn: c, l: l, ip: ip, idle: l.limits.IdleTimeout}, nil
	}
}

// admit counts a new connection from ip, or says which limit refuses it.
func (l *tcpListener) admit(ip netip.Addr) string {
	if l.s.bans.sourceBanned(ip) {
		return "banned"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.MaxConnections > 0 && l.total >= l.limits.MaxConnections {
		return "total"
	}
	if l.limits.MaxConnectionsPerSource > 0 && l.perSrc[ip] >= l.limits.MaxConnectionsPerSource {
		return "per_source"
	}
	l.total++
	l.perSrc[ip]++
	l.conns.Set(float64(l.total))
	return ""
}

func (l *tcpListener) release(ip netip.Addr) {
	l.mu.Lock()
	l.total--
	if l.perSrc[ip]--; l.perSrc[ip] <= 0 {
		delete(l.perSrc, ip)
	}
	l.conns.Set(float64(l.total))
	l.mu.Unlock()
}

// Close stops Accept; connections already accepted stay open (sipgo
// closes them when the user agent closes).
func (l *tcpListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.closeErr = l.Listener.Close()
	})
	return l.closeErr
}

// open returns the number of accepted connections still open.
func (l *tcpListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// tcpConn is an accepted connection: it releases its slot once closed and
// closes itself after the idle timeout.
type tcpConn struct {
	net.Conn
	l         *tcpListener
	ip        netip.Addr
	idle      time.Duration
	lastWrite atomic.Int64 // unix nanoseconds
	closeOnce sync.Once
	closeErr  error
}

func (c *tcpConn) Read(b []byte) (int, error) {
	n, err := c.read(b)
	if n > 0 && !c.l.encrypted {
		c.throttle(b[:n])
	}
	return n, err
}

// throttle waits until the source has a token for each message end in p.
func (c *tcpConn) throttle(p []byte) {
	lim := c.l.s.limiter
	if lim == nil || lim.rate <= 0 || c.l.s.trusted.Contains(c.ip) {
		return // a trusted proxy's messages count per phone (Server.overProxiedRate)
	}
	msgs := bytes.Count(p, []byte("\r\n\r\n"))
	waited := false
	for range msgs {
		for !lim.allow(c.ip) {
			if !waited {
				waited = true
				c.l.s.metrics.tcpThrottled.Inc()
			}
			select {
			case <-c.l.closed:
				return
			case <-c.l.sleep(time.Duration(float64(time.Second) / lim.rate)):
			}
		}
	}
}

func (c *tcpConn) read(b []byte) (int, error) {
	if c.idle <= 0 {
		return c.Conn.Read(b)
	}
	for {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b)
		if err == nil || n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if since := time.Since(time.Unix(0, c.lastWrite.Load())); since < c.idle {
			continue // we spoke on it: not idle
		}
		c.l.s.metrics.tcpIdleClosed.Inc()
		c.l.s.log.Debug("sip tcp connection idle, closed", "remote", c.RemoteAddr().String(), "idle", c.idle)
		c.Close()
		// io.EOF: sipgo treats it as an ordinary close (and logs no error).
		return 0, io.EOF
	}
}

func (c *tcpConn) Write(b []byte) (int, error) {
	c.lastWrite.Store(time.Now().UnixNano())
	return c.Conn.Write(b)
}

func (c *tcpConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.l.release(c.ip)
	})
	return c.closeErr
}
