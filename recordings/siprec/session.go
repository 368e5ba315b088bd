package siprec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"plateau/media"
	"plateau/srtp"
)

// maxPayload is 200 ms of G.711: larger packets are not a phone's and are
// not forwarded (the recorder drops them too).
const maxPayload = 1600

const sampleDur = time.Second / 8000

// Session is one call's recording session. It fits sip.Recording: TapRTP
// forwards a copy of each packet of a leg to the recorder's port for that
// leg's stream; Close sends BYE.
type Session struct {
	c       *Client
	id      string
	log     *slog.Logger
	dlg     *sipgo.DialogClientSession
	streams [2]outStream // indexed by media.Leg

	failed  atomic.Pointer[failure]
	closing atomic.Bool
	once    sync.Once
	err     error
}

type failure struct{ err error }

// outStream is the forwarding state of one leg: one socket connected to
// the recorder's port, so that an ICMP port unreachable fails the next
// write, and one SSRC, sequence and timestamp space whatever the sources
// (the far end, Plateau's prompts, an SSRC change after a transfer).
type outStream struct {
	mu   sync.Mutex
	conn *net.UDPConn
	dest netip.AddrPort
	ssrc uint32

	started bool
	src     uint32 // SSRC of the source being forwarded
	seqOff  uint16 // added to the source's sequence numbers
	tsOff   uint32 // added to the source's timestamps
	lastSeq uint16 // newest sequence number sent
	lastTS  uint32 // its timestamp
	lastAt  time.Time
	buf     [12 + maxPayload]byte

	// srtp, over TLS, protects each packet into sbuf (room for the
	// authentication tag) before it is sent.
	srtp *srtp.Session
	sbuf [12 + maxPayload + 16]byte
}

// stamp maps a packet of the current source into the stream's numbering.
// A new source continues the stream where the wall clock says it is, so
// the recorder sees one stream with gaps and jumps, never two.
func (o *outStream) stamp(pkt *rtp.Packet, at time.Time) (seq uint16, ts uint32, marker bool) {
	if !o.started || pkt.SSRC != o.src {
		nextSeq, nextTS := uint16(rand.Uint32()), rand.Uint32()
		if o.started {
			nextSeq = o.lastSeq + 1
			nextTS = o.lastTS + uint32(max(at.Sub(o.lastAt), 0)/sampleDur)
		}
		o.seqOff = nextSeq - pkt.SequenceNumber
		o.tsOff = nextTS - pkt.Timestamp
		o.src = pkt.SSRC
		marker = true
		seq, ts = nextSeq, nextTS
		o.started = true
		o.lastSeq, o.lastTS, o.lastAt = seq, ts, at
		return seq, ts, marker
	}
	seq, ts = pkt.SequenceNumber+o.seqOff, pkt.Timestamp+o.tsOff
	if int16(seq-o.lastSeq) > 0 {
		o.lastSeq, o.lastTS, o.lastAt = seq, ts, at
	}
	return seq, ts, pkt.Marker
}

// TapRTP forwards a copy of a G.711 packet of leg l to the recorder (other
// payload types, e.g. telephone-event, are not part of the recording).
// It allocates nothing and blocks only on the UDP write. An error (send
// failure, BYE from the recorder) means the recording is broken: the
// caller ends the call.
func (s *Session) TapRTP(l media.Leg, pkt *rtp.Packet, at time.Time) error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	if int(l) >= len(s.streams) || pkt.PayloadType != ptPCMU && pkt.PayloadType != ptPCMA {
		return nil
	}
	n := len(pkt.Payload)
	if n == 0 || n > maxPayload {
		return nil
	}
	o := &s.streams[l]
	o.mu.Lock()
	seq, ts, marker := o.stamp(pkt, at)
	b := o.buf[:12+n]
	b[0] = 0x80
	b[1] = pkt.PayloadType & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], o.ssrc)
	copy(b[12:], pkt.Payload)
	var err error
	if o.srtp != nil {
		b, err = o.srtp.ProtectRTP(o.sbuf[:], b)
	}
	if err == nil {
		_, err = o.conn.Write(b)
	}
	o.mu.Unlock()
	if err != nil {
		return s.fail(fmt.Errorf("%w: send to recorder %s: %w", ErrSessionEnded, o.dest, err))
	}
	return nil
}

// fail marks the session broken; the first cause is kept.
func (s *Session) fail(err error) error {
	if s.failed.CompareAndSwap(nil, &failure{err}) {
		if !s.closing.Load() {
			s.log.Error("recording session failed", "err", err)
		}
		return err
	}
	return s.failed.Load().err
}

// Close ends the recording session with BYE at the call's end. Close is
// idempotent; it reports a failure of the session or of the BYE.
func (s *Session) Close(end time.Time) error {
	s.once.Do(func() {
		s.closing.Store(true)
		s.c.forget(s)
		var errs []error
		if f := s.failed.Load(); f != nil {
			errs = append(errs, f.err)
		}
		if s.dlg.LoadState() != sip.DialogStateEnded {
			if err := s.c.bye(s.dlg); err != nil {
				errs = append(errs, err)
			}
		} else {
			s.dlg.Close()
		}
		s.failed.CompareAndSwap(nil, &failure{fmt.Errorf("%w: closed", ErrSessionEnded)})
		s.closeConns()
		if err := errors.Join(errs...); err != nil {
			s.err = fmt.Errorf("close recording %s: %w", s.id, err)
		}
		s.log.Debug("recording session closed", "end", end, "err", s.err)
	})
	return s.err
}

// connect points each stream at the recorder's port in the answer. The
// offer's sockets are replaced by connected ones on the same ports. With
// local (the offer's SDES keys, over TLS) every answered stream must be
// SRTP with a matching a=crypto, which keys the stream's session; without,
// it must be plain RTP.
func (s *Session) connect(answer []byte, ports []int, local []srtp.Crypto) error {
	ms, err := parseStreams(answer)
	if err != nil {
		return err
	}
	if len(ms) < len(s.streams) {
		return fmt.Errorf("%d streams answered, want %d", len(ms), len(s.streams))
	}
	for i := range s.streams {
		m := ms[i]
		if m.Addr.Port() == 0 || !m.Addr.Addr().IsValid() || m.Addr.Addr().IsUnspecified() {
			return fmt.Errorf("stream %d (label %s) refused by the recorder", i+1, m.Label)
		}
		o := &s.streams[i]
		if local == nil {
			if m.secure() {
				return fmt.Errorf("stream %d: the recorder answered SRTP on a link that is not TLS", i+1)
			}
		} else {
			if !m.secure() {
				// Never downgrade: over TLS the audio leaves encrypted or not at all.
				return fmt.Errorf("stream %d: the recorder answered %s, want RTP/SAVP (SRTP)", i+1, m.Proto)
			}
			remote, err := srtp.Select(m.Crypto)
			if err != nil {
				return fmt.Errorf("stream %d: %w", i+1, err)
			}
			if remote.Tag != local[i].Tag || remote.Suite != local[i].Suite {
				return fmt.Errorf("stream %d: the recorder answered a=crypto tag %d %s, want tag %d %s", i+1,
					remote.Tag, remote.Suite, local[i].Tag, local[i].Suite)
			}
			if o.srtp, err = srtp.NewSession(local[i], remote); err != nil {
				return fmt.Errorf("stream %d: %w", i+1, err)
			}
		}
		o.dest = m.Addr
		o.conn.Close()
		laddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.c.localIP, uint16(ports[i])))
		conn, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(m.Addr))
		if err != nil {
			// The port was taken in between: any port will do, the
			// recorder does not latch on the offer's.
			conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(m.Addr))
		}
		if err != nil {
			o.conn = nil
			return fmt.Errorf("rtp to %s: %w", m.Addr, err)
		}
		o.conn = conn
	}
	return nil
}

// abort ends a session that could not start: BYE, sockets closed.
func (s *Session) abort() {
	s.closing.Store(true)
	s.failed.CompareAndSwap(nil, &failure{fmt.Errorf("%w: not started", ErrSessionEnded)})
	if err := s.c.bye(s.dlg); err != nil {
		s.log.Debug("bye after failed start", "err", err)
	}
	s.closeConns()
}

func (s *Session) closeConns() {
	for i := range s.streams {
		o := &s.streams[i]
		o.mu.Lock()
		if o.conn != nil {
			o.conn.Close()
		}
		o.mu.Unlock()
	}
}
