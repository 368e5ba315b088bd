package media

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"

	"plateau/srtp"
)

// maxCapture bounds the PCM an Endpoint keeps (10 minutes): it exists for
// tests and the simulated PSTN, which must not grow without limit.
const maxCapture = 10 * 60 * SampleRate

// Endpoint is a single-leg RTP peer for the built-in test user agent and the
// simulated PSTN: it plays PCM, optionally echoes what it gets, and counts
// and decodes what it receives.
type Endpoint struct {
	conn *net.UDPConn
	pp   *PortPair // nil when bound to an ephemeral port

	mu       sync.Mutex
	remote   netip.AddrPort
	codec    Codec
	echo     bool
	received int
	events   int
	pcm      []int16
	last     Received
	ssrc     uint32
	seq      uint16
	ts       uint32
	srtp     *srtp.Session // nil: plain RTP
	srtpDrop int           // SRTP packets that did not authenticate

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Received describes the last packet an Endpoint got.
type Received struct {
	From        netip.AddrPort
	PayloadType uint8
	SSRC        uint32
	Seq         uint16
	Timestamp   uint32
	Marker      bool
}

// NewEndpoint binds a port from pool on ip, or any free port when pool is
// nil, and starts receiving. codec is what it sends and how it decodes.
func NewEndpoint(pool *PortPool, ip netip.Addr, codec Codec) (*Endpoint, error) {
	e := &Endpoint{codec: codec, done: make(chan struct{}), ssrc: rand.Uint32(), seq: rand.N[uint16](1 << 15), ts: rand.Uint32()}
	if pool != nil {
		pp, err := pool.Allocate(ip)
		if err != nil {
			return nil, fmt.Errorf("endpoint: %w", err)
		}
		e.pp, e.conn = pp, pp.RTP
	} else {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			return nil, fmt.Errorf("endpoint: %w", err)
		}
		e.conn = c
	}
	e.wg.Add(1)
	go e.read()
	return e, nil
}

// LocalAddr is the address to advertise in SDP.
func (e *Endpoint) LocalAddr() netip.AddrPort {
	a := e.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// SetRemote sets where Play sends.
func (e *Endpoint) SetRemote(addr netip.AddrPort) {
	e.mu.Lock()
	e.remote = addr
	e.mu.Unlock()
}

// SetCodec changes the codec used to send and decode.
func (e *Endpoint) SetCodec(c Codec) {
	e.mu.Lock()
	e.codec = c
	e.mu.Unlock()
}

// SetEcho makes the endpoint send every packet back to its source, as
// SIPp's -rtp_echo does.
func (e *Endpoint) SetEcho(on bool) {
	e.mu.Lock()
	e.echo = on
	e.mu.Unlock()
}

// SetSRTP makes the endpoint speak SRTP with s (nil: plain RTP): what it
// sends, echoes included, is protected; what it receives must
// authenticate, else it is dropped and counted (SRTPDropped).
func (e *Endpoint) SetSRTP(s *srtp.Session) {
	e.mu.Lock()
	e.srtp = s
	e.mu.Unlock()
}

// SRTPDropped returns the number of received packets that failed SRTP.
func (e *Endpoint) SRTPDropped() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srtpDrop
}

// Received returns the number of RTP packets received.
func (e *Endpoint) Received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.received
}

// Events returns the number of non-audio (e.g. telephone-event) packets.
func (e *Endpoint) Events() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.events
}

// Last describes the last packet received.
func (e *Endpoint) Last() Received {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// PCM returns a copy of the audio received so far, decoded.
func (e *Endpoint) PCM() []int16 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int16(nil), e.pcm...)
}

// Reset forgets the counters and captured audio.
func (e *Endpoint) Reset() {
	e.mu.Lock()
	e.received, e.events, e.pcm, e.last = 0, 0, nil, Received{}
	e.mu.Unlock()
}

// Play sends pcm to the remote in 20 ms packets paced by a ticker.
func (e *Endpoint) Play(ctx context.Context, pcm []int16) error {
	var (
		buf    [12 + FrameSamples]byte
		sbuf   [12 + FrameSamples + 64]byte
		frame  [FrameSamples]int16
		ticker = time.NewTicker(ptime)
	)
	defer ticker.Stop()
	for off := 0; off < len(pcm); off += FrameSamples {
		n := copy(frame[:], pcm[off:])
		clear(frame[n:])
		e.mu.Lock()
		remote, codec, sec := e.remote, e.codec, e.srtp
		e.seq++
		e.ts += FrameSamples
		writeHeader(buf[:12], codec.PayloadType, off == 0, e.seq, e.ts, e.ssrc)
		e.mu.Unlock()
		if !remote.IsValid() {
			return fmt.Errorf("endpoint play: %w", ErrNoRemote)
		}
		encodeFrame(codec.Encoding, buf[12:], frame[:])
		out := buf[:]
		if sec != nil {
			p, err := sec.ProtectRTP(sbuf[:0], out)
			if err != nil {
				return fmt.Errorf("endpoint play: %w", err)
			}
			out = p
		}
		if _, err := e.conn.WriteToUDPAddrPort(out, remote); errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("endpoint play: %w", ErrClosed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.done:
			return fmt.Errorf("endpoint play: %w", ErrClosed)
		case <-ticker.C:
		}
	}
	return nil
}

func (e *Endpoint) read() {
	defer e.wg.Done()
	var (
		buf  [1500]byte
		dec  [1500]byte
		sbuf [1500 + 64]byte
		pkt  rtp.Packet
		pcm  [1500]int16
	)
	for {
		n, from, err := e.conn.ReadFromUDPAddrPort(buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := buf[:n]
		e.mu.Lock()
		sec := e.srtp
		e.mu.Unlock()
		if sec != nil {
			p, err := sec.UnprotectRTP(dec[:0], b)
			if err != nil {
				e.mu.Lock()
				e.srtpDrop++
				e.mu.Unlock()
				continue
			}
			b = p
		}
		if pkt.Unmarshal(b) != nil {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		e.mu.Lock()
		e.received++
		e.last = Received{From: from, PayloadType: pkt.PayloadType, SSRC: pkt.SSRC, Seq: pkt.SequenceNumber, Timestamp: pkt.Timestamp, Marker: pkt.Marker}
		enc := Encoding(0)
		switch {
		case pkt.PayloadType == e.codec.PayloadType:
			enc = e.codec.Encoding
		case pkt.PayloadType == 0:
			enc = PCMU
		case pkt.PayloadType == 8:
			enc = PCMA
		}
		if enc == 0 {
			e.events++
		} else if len(e.pcm)+len(pkt.Payload) <= maxCapture {
			p := pcm[:len(pkt.Payload)]
			decodeFrame(enc, p, pkt.Payload)
			e.pcm = append(e.pcm, p...)
		}
		echo := e.echo
		e.mu.Unlock()
		if echo {
			out := b
			if sec != nil {
				// Echoed under the endpoint's own key (SDES: each side
				// protects what it sends with its key).
				if out, err = sec.ProtectRTP(sbuf[:0], b); err != nil {
					continue
				}
			}
			e.conn.WriteToUDPAddrPort(out, from)
		}
	}
}

// Close stops the endpoint and releases its port. Safe to call twice.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		close(e.done)
		if e.pp != nil {
			e.pp.Close()
		} else {
			e.conn.Close()
		}
		e.wg.Wait()
	})
	return nil
}
