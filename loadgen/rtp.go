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

// stream is one call's RTP: a preallocated packet rewritten in place at
// every tick and sent from its socket to the far end's address.
type stream struct {
	idx    uint32
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
	putProbe(s.pkt[rtpHeader:], s.idx, s.seq, t)
	s.seq++
	return s.pkt[:]
}

// recvHist is one receiver's latency histogram.
type recvHist struct {
	mu sync.Mutex
	h  *Histogram
}

// swap replaces the histogram with an empty one and returns the old one.
func (r *recvHist) swap() *Histogram {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.h
	r.h = new(Histogram)
	return old
}

// engine owns the RTP sockets, the single sender goroutine and one
// receiver per socket.
type engine struct {
	start   time.Time
	socks   []*net.UDPConn
	streams []*stream
	window  atomic.Pointer[Window]

	sendErrs atomic.Uint64
	ticks    atomic.Uint64
	late     atomic.Uint64 // ticks that began more than a ptime late

	hists []*recvHist // one per receiver, swapped per window

	done chan struct{}
	wg   sync.WaitGroup
}

// newEngine binds nsock UDP sockets on ip for calls streams. Streams are
// spread over the sockets round-robin; the far end latches on each
// socket's address like it would on a phone's.
func newEngine(ip netip.Addr, nsock, calls int, bufBytes int) (*engine, error) {
	e := &engine{start: time.Now(), done: make(chan struct{})}
	for range nsock {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			e.closeSockets()
			return nil, err
		}
		c.SetReadBuffer(bufBytes)
		c.SetWriteBuffer(bufBytes)
		e.socks = append(e.socks, c)
		e.hists = append(e.hists, &recvHist{h: new(Histogram)})
	}
	for i := range calls {
		e.streams = append(e.streams, newStream(i, e.socks[i%nsock]))
	}
	e.window.Store(NewWindow(calls, -1, -1)) // nothing counts yet
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
	e.wg.Add(1 + len(e.socks))
	go e.send()
	for i, c := range e.socks {
		go e.receive(i, c)
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
			w.Sent(int(s.idx), at)
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
		if n < rtpHeader || buf[0]>>6 != 2 {
			continue
		}
		// Skip CSRCs and a header extension, as RFC 3550 lays them out.
		off := rtpHeader + 4*int(buf[0]&0x0f)
		if buf[0]&0x10 != 0 && n >= off+4 {
			off += 4 + 4*int(binary.BigEndian.Uint16(buf[off+2:]))
		}
		if off > n {
			continue
		}
		rh := e.hists[i]
		rh.mu.Lock()
		e.window.Load().Received(buf[off:n], now, rh.h)
		rh.mu.Unlock()
	}
}

// measure opens a window of length d from now and returns it once it has
// ended and its last echoes have had drain to come back, with the round
// trips of the packets received.
func (e *engine) measure(d, drain time.Duration, stop <-chan struct{}) (*Window, *Histogram) {
	from := e.now()
	w := NewWindow(len(e.streams), from, from+d)
	for _, rh := range e.hists {
		rh.swap()
	}
	e.window.Store(w)
	select {
	case <-time.After(d + drain):
	case <-stop:
	}
	total := new(Histogram)
	for _, rh := range e.hists {
		total.Merge(rh.swap())
	}
	e.window.Store(NewWindow(len(e.streams), -1, -1))
	return w, total
}

func (e *engine) closeSockets() {
	for _, c := range e.socks {
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
