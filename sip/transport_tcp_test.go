package sip

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tcpEnv runs a tcpListener's accept loop on 127.0.0.1, handing accepted
// connections to a reader that records how each one ended.
type tcpEnv struct {
	t     *testing.T
	env   *regEnv
	l     *tcpListener
	addr  string
	ended chan error // one per accepted connection, when its Read fails
}

func newTCPEnv(t *testing.T, limits TCPLimits) *tcpEnv {
	t.Helper()
	env := newRegEnv(t)
	env.s.opts.TCP = limits
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &tcpEnv{t: t, env: env, l: env.s.newTCPListener(raw), addr: raw.Addr().String(), ended: make(chan error, 100)}
	serveTestListener(t, e.l, e.ended, nil)
	return e
}

// serveTestListener reads every connection l accepts until its Read
// fails (then closes it and sends the error on ended), handing what it
// read to read (nil: dropped), until the test ends.
func serveTestListener(t *testing.T, l net.Listener, ended chan<- error, read func([]byte)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if n > 0 && read != nil {
						read(buf[:n])
					}
					if err != nil {
						c.Close()
						ended <- err
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
}

// dial connects from ip and reports whether the server keeps the
// connection (false: closed at once).
func (e *tcpEnv) dial(ip string) (net.Conn, bool) {
	e.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 3 * time.Second}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	c.SetReadDeadline(time.Time{})
	var ne net.Error
	return c, errors.As(err, &ne) && ne.Timeout()
}

func (e *tcpEnv) open(want int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.l.open() != want {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d connections open, want %d", e.l.open(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTCPConnectionCaps(t *testing.T) {
	e := newTCPEnv(t, TCPLimits{MaxConnections: 4, MaxConnectionsPerSource: 2})
	var kept []net.Conn
	for i, tt := range []struct {
		ip   string
		keep bool
	}{
		{"127.0.0.1", true}, {"127.0.0.1", true}, {"127.0.0.1", false}, // per source
		{"127.0.0.2", true}, {"127.0.0.3", true}, {"127.0.0.4", false}, // total
	} {
		c, ok := e.dial(tt.ip)
		if ok != tt.keep {
			t.Fatalf("connection %d from %s kept=%v, want %v", i, tt.ip, ok, tt.keep)
		}
		if ok {
			kept = append(kept, c)
		}
	}
	e.open(4)
	if v := metricValue(e.env.s.metrics.tcpRefused.WithLabelValues("per_source")); v != 1 {
		t.Errorf("refused{per_source} = %v, want 1", v)
	}
	if v := metricValue(e.env.s.metrics.tcpRefused.WithLabelValues("total")); v != 1 {
		t.Errorf("refused{total} = %v, want 1", v)
	}
	if v := metricValue(e.env.s.metrics.tcpConns); v != 4 {
		t.Errorf("plateau_sip_tcp_connections = %v, want 4", v)
	}
	// A closed connection frees its slot, for its source and in total.
	kept[0].Close()
	<-e.ended
	e.open(3)
	if _, ok := e.dial("127.0.0.1"); !ok {
		t.Error("after one of its connections closed, 127.0.0.1 was refused")
	}
	if kinds := e.env.audit.list(); countOf(kinds, "sip.tcp_refused:TCP_PER_SOURCE") != 1 {
		t.Errorf("audit %v: want one sip.tcp_refused per_source entry", kinds)
	}
}

func TestTCPBannedSourceRefused(t *testing.T) {
	e := newTCPEnv(t, TCPLimits{})
	for range 3 {
		e.env.s.bans.fail("", netip.MustParseAddr("127.0.0.5"))
	}
	if _, ok := e.dial("127.0.0.5"); ok {
		t.Error("a banned source's connection was kept")
	}
	if _, ok := e.dial("127.0.0.6"); !ok {
		t.Error("another source was refused")
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	const idle = 600 * time.Millisecond // well above dial's 100 ms probe
	e := newTCPEnv(t, TCPLimits{IdleTimeout: idle})
	quiet, _ := e.dial("127.0.0.1")
	talker, _ := e.dial("127.0.0.1")
	e.open(2)
	// The talker sends a keep-alive every idle/3; the quiet one nothing.
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(idle / 3)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				talker.Write([]byte("\r\n\r\n"))
			}
		}
	}()
	defer close(stop)
	select {
	case err := <-e.ended:
		if !errors.Is(err, io.EOF) {
			t.Errorf("idle connection ended with %v, want io.EOF (an ordinary close for sipgo)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
	quiet.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := quiet.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("client side of the idle connection: %v, want EOF", err)
	}
	e.open(1)
	// The talker outlives several idle periods.
	time.Sleep(4 * idle)
	select {
	case err := <-e.ended:
		t.Fatalf("a connection with traffic was closed: %v", err)
	default:
	}
	if v := metricValue(e.env.s.metrics.tcpIdleClosed); v != 1 {
		t.Errorf("idle closed = %v, want 1", v)
	}
}

// A connection Plateau writes on (answers, requests to the phone) is not
// idle even when the peer says nothing.
func TestTCPIdleCountsWrites(t *testing.T) {
	const idle = 300 * time.Millisecond
	env := newRegEnv(t)
	env.s.opts.TCP = TCPLimits{IdleTimeout: idle}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := env.s.newTCPListener(raw)
	defer l.Close()
	client, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	go io.Copy(io.Discard, client)
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tk := time.NewTicker(idle / 3)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				c.Write([]byte("SIP/2.0 200 OK\r\n"))
			}
		}
	}()
	readErr := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 10)); readErr <- err }()
	select {
	case err := <-readErr:
		t.Fatalf("closed while writing: %v", err)
	case <-time.After(4 * idle):
	}
}

// fakeListener fails Accept with errs, then hands out conns.
type fakeListener struct {
	mu    sync.Mutex
	errs  []error
	conns []net.Conn
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	if len(f.conns) > 0 {
		c := f.conns[0]
		f.conns = f.conns[1:]
		return c, nil
	}
	return nil, net.ErrClosed
}
func (f *fakeListener) Close() error   { return nil }
func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060} }

// Accept errors (too many open files, aborted connections) are retried
// with growing delays and never reach sipgo, whose Serve would return
// and stop Plateau.
func TestTCPAcceptErrorsRetried(t *testing.T) {
	env := newRegEnv(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	fl := &fakeListener{errs: []error{syscall.EMFILE, syscall.EMFILE, syscall.ECONNABORTED, syscall.ENFILE}, conns: []net.Conn{a}}
	l := env.s.newTCPListener(fl)
	var delays []time.Duration
	l.sleep = func(d time.Duration) <-chan time.Time {
		delays = append(delays, d)
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	c, err := l.Accept()
	if err != nil || c == nil {
		t.Fatalf("Accept = %v, %v; want the connection after the errors", c, err)
	}
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	if len(delays) != len(want) {
		t.Fatalf("backoff delays %v, want %v", delays, want)
	}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("backoff delays %v, want %v", delays, want)
		}
	}
	if v := metricValue(env.s.metrics.acceptErrors); v != 4 {
		t.Errorf("accept errors = %v, want 4", v)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener = %v, want net.ErrClosed", err)
	}
	if d := nextBackoff(time.Second); d != time.Second {
		t.Errorf("backoff beyond 1s: %v", d)
	}
}

// Close interrupts a backoff wait.
func TestTCPCloseDuringBackoff(t *testing.T) {
	env := newRegEnv(t)
	fl := &fakeListener{errs: []error{syscall.EMFILE}}
	l := env.s.newTCPListener(fl)
	l.sleep = func(time.Duration) <-chan time.Time { return nil } // never fires
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

// Beyond its source's message rate, a TCP connection is read more slowly
// (a stream cannot drop a message): 200 messages at 50/s with a burst of
// 100 take at least 2 s to read.
func TestTCPThrottledToSourceRate(t *testing.T) {
	env := newRegEnv(t)
	env.s.limiter = newSourceLimiter(50, time.Now)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := env.s.newTCPListener(raw)
	defer l.Close()
	client, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		client.Write([]byte(strings.Repeat("x\r\n\r\n", 200)))
		client.Close()
	}()
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	elapsed := time.Since(start)
	if err != nil || n != 1000 {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if elapsed < 1500*time.Millisecond {
		t.Errorf("200 messages read in %v, want about 2 s at 50/s after a burst of 100", elapsed)
	}
	if v := metricValue(env.s.metrics.tcpThrottled); v < 1 {
		t.Errorf("throttled = %v, want >= 1", v)
	}
}
