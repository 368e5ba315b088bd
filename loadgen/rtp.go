package loadgen

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ptime is the packet interval: one G.711 packet per call every 20 ms.
const ptime = 20 * time.Millisecond

// stream is one call's RTP (or a supervisor's phone's): a preallocated
// packet rewritten in place at every tick and sent from its socket to the
// far end's address.
type stream struct {
	idx    uint32
	silent bool // a supervisor's phone: µ-law silence, no probe
	sock   *net.UDPConn
	dest   netip.AddrPort
	active atomic.Bool // set once dest is known; cleared at hangup
	seq    uint32
	pkt    [packetSize]byte
}

func newStream(idx int, sock *net.UDPConn) *stream {
	s := &stream{idx: uint32(idx), sock: sock}
	s.pkt[0] = 0x80 // V=2
	s.pkt[1] = 0    // PCMU
	binary.BigEndian.PutUint16(s.pkt[2:], uint16(rand.Uint32()))
	binary.BigEndian.PutUint32(s.pkt[4:], rand.Uint32())
	binary.BigEndian.PutUint32(s.pkt[8:], rand.Uint32()) // SSRC
	for i := rtpHeader; i < packetSize; i++ {
		s.pkt[i] = ulawSilence
	}
	return s
}

// next advances the RTP header and the probe for a packet sent at t.
func (s *stream) next(t time.Duration) []byte {
	binary.BigEndian.PutUint16(s.pkt[2:], binary.BigEndian.Uint16(s.pkt[2:])+1)
	binary.BigEndian.PutUint32(s.pkt[4:], binary.BigEndian.Uint32(s.pkt[4:])+payloadSize)
	if !s.silent {
		putProbe(s.pkt[rtpHeader:], s.idx, s.seq, t)
	}
	s.seq++
	return s.pkt[:]
}

// recvHist is one receiver's latency histograms.
type recvHist struct {
	mu sync.Mutex
	h  *RTTs
}

// swap replaces the histograms with empty ones and returns the old ones.
func (r *recvHist) swap() *RTTs {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.h
	r.h = new(RTTs)
	return old
}

// engine owns the RTP sockets, the single sender goroutine and one
// receiver per socket. Streams [0, calls) are the calls, spread over the
// shared sockets; the supervisors' phones follow, one socket each, so the
// mixed audio of each monitor session is told apart by where it lands.
type engine struct {
	start   time.Time
	socks   []*net.UDPConn
	streams []*stream
	calls   int
	watched int // calls whose round trips are also kept apart
	window  atomic.Pointer[Window]

	monSocks  []*net.UDPConn // one per supervisor, stream calls+j
	monWindow atomic.Pointer[MonitorWindow]

	sendErrs atomic.Uint64
	ticks    atomic.Uint64
	late     atomic.Uint64 // ticks that began more than a ptime late

	hists []*recvHist // one per receiver, swapped per window

	done chan struct{}
	wg   sync.WaitGroup
}

// newEngine binds nsock UDP sockets on ip for calls streams, and one more
// socket per supervisor's phone (monitors). Call streams are spread over
// the shared sockets round-robin; the far end latches on each socket's
// address like it would on a phone's.
func newEngine(ip netip.Addr, nsock, calls, monitors int, bufBytes int) (*engine, error) {
	e := &engine{start: time.Now(), calls: calls, done: make(chan struct{})}
	bind := func(size int) (*net.UDPConn, error) {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			e.closeSockets()
			return nil, err
		}
		c.SetReadBuffer(size)
		c.SetWriteBuffer(size)
		return c, nil
	}
	for range nsock {
		c, err := bind(bufBytes)
		if err != nil {
			return nil, err
		}
		e.socks = append(e.socks, c)
		e.hists = append(e.hists, &recvHist{h: new(RTTs)})
	}
	for i := range calls {
		e.streams = append(e.streams, newStream(i, e.socks[i%nsock]))
	}
	for j := range monitors {
		c, err := bind(256 << 10) // one 50 packets/s stream
		if err != nil {
			return nil, err
		}
		e.monSocks = append(e.monSocks, c)
		s := newStream(calls+j, c)
		s.silent = true
		e.streams = append(e.streams, s)
	}
	e.window.Store(NewWindow(calls, -1, -1)) // nothing counts yet
	e.monWindow.Store(NewMonitorWindow(monitors, -1, -1))
	return e, nil
}

func (e *engine) now() time.Duration { return time.Since(e.start) }

// localAddr is where stream i receives (the address to put in SDP).
func (e *engine) localAddr(i int) netip.AddrPort {
	a := e.streams[i].sock.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// activate starts sending stream i to dest at the next tick.
func (e *engine) activate(i int, dest netip.AddrPort) {
	s := e.streams[i]
	s.dest = dest
	s.active.Store(true)
}

func (e *engine) deactivate(i int) { e.streams[i].active.Store(false) }

// run starts the sender and the receivers.
func (e *engine) run() {
	e.wg.Add(1 + len(e.socks) + len(e.monSocks))
	go e.send()
	for i, c := range e.socks {
		go e.receive(i, c)
	}
	for j, c := range e.monSocks {
		go e.receiveMonitor(j, c)
	}
}

// send is the one goroutine that paces every stream: each tick, one packet
// per active stream, in stream order.
func (e *engine) send() {
	defer e.wg.Done()
	t := time.NewTicker(ptime)
	defer t.Stop()
	next := e.now() + ptime
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
		}
		now := e.now()
		if now-next > ptime {
			e.late.Add(1)
		}
		next = now + ptime
		e.ticks.Add(1)
		for _, s := range e.streams {
			if !s.active.Load() {
				continue
			}
			// The window is read per packet: one may open mid-tick, and a
			// packet must be counted sent in the window its echo will be
			// counted in.
			w := e.window.Load()
			at := e.now()
			if _, err := s.sock.WriteToUDPAddrPort(s.next(at), s.dest); err != nil {
				e.sendErrs.Add(1)
				continue
			}
			if !s.silent {
				w.Sent(int(s.idx), at)
			}
		}
	}
}

// receive reads one socket until it is closed.
func (e *engine) receive(i int, c *net.UDPConn) {
	defer e.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := e.now()
		payload, ok := rtpPayload(buf[:n])
		if !ok {
			continue
		}
		rh := e.hists[i]
		rh.mu.Lock()
		e.window.Load().Received(payload, now, rh.h)
		rh.mu.Unlock()
	}
}

// receiveMonitor reads supervisor j's socket, the mixed audio Plateau
// sends the supervisor's phone, until it is closed: packets are counted,
// and lost ones found by RTP sequence number.
func (e *engine) receiveMonitor(j int, c *net.UDPConn) {
	defer e.wg.Done()
	var (
		buf [1500]byte
		seq seqTracker
	)
	for {
		n, err := c.Read(buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := e.now()
		if _, ok := rtpPayload(buf[:n]); !ok {
			continue
		}
		e.monWindow.Load().Received(j, seq.extend(binary.BigEndian.Uint16(buf[2:])), now)
	}
}

// rtpPayload returns an RTP packet's payload, skipping CSRCs and a header
// extension as RFC 3550 lays them out; ok is false for anything else.
func rtpPayload(b []byte) ([]byte, bool) {
	if len(b) < rtpHeader || b[0]>>6 != 2 {
		return nil, false
	}
	off := rtpHeader + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 && len(b) >= off+4 {
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	if off > len(b) {
		return nil, false
	}
	return b[off:], true
}

// measure opens a window of length d from now and returns it once it has
// ended and its last echoes have had drain to come back, with the round
// trips of the packets received, and the supervisors' window (packets
// that arrived in [from, from+d)).
func (e *engine) measure(d, drain time.Duration, stop <-chan struct{}) (*Window, *RTTs, *MonitorWindow) {
	from := e.now()
	w := NewWindow(e.calls, from, from+d)
	w.Watched = e.watched
	mw := NewMonitorWindow(len(e.monSocks), from, from+d)
	for _, rh := range e.hists {
		rh.swap()
	}
	e.window.Store(w)
	e.monWindow.Store(mw)
	select {
	case <-time.After(d + drain):
	case <-stop:
	}
	total := new(RTTs)
	for _, rh := range e.hists {
		total.Merge(rh.swap())
	}
	e.window.Store(NewWindow(e.calls, -1, -1))
	e.monWindow.Store(NewMonitorWindow(len(e.monSocks), -1, -1))
	return w, total, mw
}

func (e *engine) closeSockets() {
	for _, c := range e.socks {
		c.Close()
	}
	for _, c := range e.monSocks {
		c.Close()
	}
}

// Close stops the sender and receivers and closes the sockets.
func (e *engine) Close() {
	select {
	case <-e.done:
		return
	default:
	}
	close(e.done)
	e.closeSockets()
	e.wg.Wait()
}
