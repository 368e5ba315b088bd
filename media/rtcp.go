package media

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"
)

// RTCP is terminated per leg: what a leg's peer sends is read (its sender
// report feeds our round-trip fields) and never relayed, because RTCP
// packets (APP, SDES items) carry arbitrary bytes the recording would not
// hold. Plateau sends each leg that sends RTCP its own compound report
// instead, to the address the leg's RTCP comes from: a sender report about
// the stream we send it (or a receiver report before we sent anything),
// one report block about the stream it sends us, and the SDES CNAME RFC
// 3550 6.1 requires.

const (
	rtcpSR   = 200
	rtcpRR   = 201
	rtcpSDES = 202
	cname    = "plateau"
)

// rtcpState is a leg's RTCP bookkeeping, guarded by Relay.mu.
type rtcpState struct {
	lastSR   uint32    // middle 32 bits of the NTP time of the peer's last SR
	lastSRAt time.Time // when it arrived
	// For the fraction lost of the next report (RFC 3550 A.3).
	expectedPrior uint64
	receivedPrior uint64
}

func (r *Relay) readRTCP(l *leg) {
	defer r.wg.Done()
	m := r.cfg.metrics
	for {
		n, from, err := l.ports.RTCP.ReadFromUDPAddrPort(l.rtcpBuf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		b := l.rtcpBuf[:n]
		if s := l.srtp.Load(); s != nil {
			// SRTCP: authenticated and decrypted before it is read.
			p, err := s.UnprotectRTCP(b[:0], b) // in place
			if err != nil {
				m.drop(srtpDrop(err))
				continue
			}
			b = p
		}
		r.mu.Lock()
		// RTCP comes from the RTP's host (usually port+1, but NATs
		// rewrite ports), so the host is what we check.
		want := l.srcHost
		if l.latched {
			want = l.peer.Addr()
		}
		if !l.hasRemote || from.Addr() != want {
			r.mu.Unlock()
			m.drop(rUnknownSource)
			continue
		}
		if !validRTCP(b) {
			r.mu.Unlock()
			m.drop(rMalformed)
			continue
		}
		l.rtcpPeer = from
		if b[1] == rtcpSR && len(b) >= 28 {
			l.rtcp.lastSR = binary.BigEndian.Uint32(b[10:])
			l.rtcp.lastSRAt = r.cfg.now()
		}
		r.mu.Unlock()
		m.rtcpIn.Inc()
	}
}

// validRTCP checks a compound packet's framing: every packet version 2,
// lengths that add up, and an SR or RR first (RFC 3550 6.1).
func validRTCP(b []byte) bool {
	if len(b) < 8 || b[1] != rtcpSR && b[1] != rtcpRR {
		return false
	}
	for len(b) > 0 {
		if len(b) < 4 || b[0]>>6 != 2 {
			return false
		}
		size := (int(binary.BigEndian.Uint16(b[2:])) + 1) * 4
		if size > len(b) {
			return false
		}
		b = b[size:]
	}
	return true
}

// sendReports sends each leg with a known address its report.
func (r *Relay) sendReports(now time.Time) {
	var buf [28 + 24 + 20]byte
	for _, l := range r.legs {
		r.mu.Lock()
		dest, ok := l.rtcpDest()
		var n int
		if ok {
			n = l.buildReport(buf[:], now)
		}
		sec := l.srtp.Load()
		r.mu.Unlock()
		if !ok {
			continue
		}
		if r.writeRTCP(l, buf[:n], sendTo{dest, sec}) {
			r.cfg.metrics.rtcpOut.Inc()
		}
	}
}

// ntpTime is t in the NTP format (seconds since 1900, 32.32 fixed point).
func ntpTime(t time.Time) uint64 {
	const epochDelta = 2208988800 // 1900 to 1970
	sec := uint64(t.Unix()) + epochDelta
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// buildReport writes l's compound report into b (under r.mu) and returns
// its length.
func (l *leg) buildReport(b []byte, now time.Time) int {
	o := &l.out
	blocks := 0
	if l.rx.started {
		blocks = 1
	}
	var n int
	if o.started {
		b[1] = rtcpSR
		binary.BigEndian.PutUint32(b[4:], o.ssrc)
		binary.BigEndian.PutUint64(b[8:], ntpTime(now))
		// The RTP time of now: the last timestamp sent plus the time since.
		binary.BigEndian.PutUint32(b[16:], o.ts+uint32(now.Sub(o.lastSent)*SampleRate/time.Second))
		binary.BigEndian.PutUint32(b[20:], o.packets)
		binary.BigEndian.PutUint32(b[24:], o.octets)
		n = 28
	} else {
		b[1] = rtcpRR
		binary.BigEndian.PutUint32(b[4:], o.ssrc)
		n = 8
	}
	b[0] = 0x80 | byte(blocks)
	if blocks == 1 {
		s := &l.rx
		expected := uint64(s.cycles) + uint64(s.maxSeq) - uint64(s.baseSeq) + 1
		expInt := expected - l.rtcp.expectedPrior
		recvInt := s.recvCur - l.rtcp.receivedPrior
		l.rtcp.expectedPrior, l.rtcp.receivedPrior = expected, s.recvCur
		var fraction uint8
		if expInt > recvInt && expInt > 0 {
			fraction = uint8((expInt - recvInt) << 8 / expInt)
		}
		lost := max(min(s.lost(), 0x7fffff), -0x800000)
		blk := b[n : n+24]
		binary.BigEndian.PutUint32(blk[0:], s.ssrc)
		binary.BigEndian.PutUint32(blk[4:], uint32(fraction)<<24|uint32(lost)&0xffffff)
		binary.BigEndian.PutUint32(blk[8:], s.cycles+uint32(s.maxSeq))
		binary.BigEndian.PutUint32(blk[12:], uint32(s.jitter))
		var lsr, dlsr uint32
		if !l.rtcp.lastSRAt.IsZero() {
			lsr = l.rtcp.lastSR
			dlsr = uint32(now.Sub(l.rtcp.lastSRAt) * 65536 / time.Second)
		}
		binary.BigEndian.PutUint32(blk[16:], lsr)
		binary.BigEndian.PutUint32(blk[20:], dlsr)
		n += 24
	}
	binary.BigEndian.PutUint16(b[2:], uint16(n/4-1))
	// SDES: one chunk, CNAME "plateau", end item, padded to 32 bits.
	s := b[n : n+20]
	clear(s)
	s[0], s[1] = 0x81, rtcpSDES
	binary.BigEndian.PutUint16(s[2:], 4)
	binary.BigEndian.PutUint32(s[4:], o.ssrc)
	s[8], s[9] = 1, byte(len(cname))
	copy(s[10:], cname)
	return n + 20
}
