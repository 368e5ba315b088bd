package media

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PortPool hands out even RTP ports (RTCP on port+1) from a fixed range,
// each chosen at random among the free ones: a caller who sees its own
// ports learns nothing about the next call's (round robin let an attacker
// flood the next call's ports before its peers were known). A released
// port stays draining for a while before reuse so that late packets of a
// finished call never land in a new call (and its recording), the way
// livekit's draining_port.go does.
type PortPool struct {
	min, max int
	drain    time.Duration
	now      func() time.Time

	mu      sync.Mutex
	slots   []portSlot // index i is port min+2*i
	inUse   int
	metrics *Metrics
}

type portSlot struct {
	used       bool
	releasedAt time.Time
}

// NewPortPool covers [min, max]; min is rounded up to even and the last pair
// must fit (max >= port+1). now is injected so drain windows are testable.
func NewPortPool(min, max int, drain time.Duration, now func() time.Time) (*PortPool, error) {
	if min%2 == 1 {
		min++
	}
	if min < 1024 || max > 65535 || max < min+1 {
		return nil, fmt.Errorf("media: rtp port range %d-%d: need 1024 <= min < max <= 65535 with room for one even/odd pair", min, max)
	}
	if drain < 0 {
		return nil, fmt.Errorf("media: negative port drain %v", drain)
	}
	if now == nil {
		now = time.Now
	}
	return &PortPool{
		min: min, max: max, drain: drain, now: now,
		slots:   make([]portSlot, (max-min+1)/2),
		metrics: NewMetrics(nil),
	}, nil
}

// SetMetrics makes the pool report plateau_media_ports_in_use on m.
func (p *PortPool) SetMetrics(m *Metrics) {
	if m == nil {
		return
	}
	p.mu.Lock()
	p.metrics = m
	m.portsInUse.Set(float64(p.inUse))
	p.mu.Unlock()
}

// InUse returns how many pairs are allocated (draining ones excluded).
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

// PortPair is an allocated RTP/RTCP socket pair. Close releases it.
type PortPair struct {
	Port int // the RTP port; RTCP is Port+1
	RTP  *net.UDPConn
	RTCP *net.UDPConn

	pool *PortPool
	once sync.Once
}

// randomProbes is how many random slots Allocate tries before it lists
// the free ones: with the pool less than ~90 % busy a probe nearly always
// succeeds, and a full scan (a few µs for 5,000 slots) bounds the worst case.
const randomProbes = 16

// Allocate binds a free even port, chosen uniformly at random (math/rand/v2,
// seeded per process from the OS), and its odd neighbour on ip. A port that
// another process holds is skipped, not fatal.
func (p *PortPool) Allocate(ip netip.Addr) (*PortPair, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	free := func(i int) bool {
		s := &p.slots[i]
		return !s.used && (s.releasedAt.IsZero() || now.Sub(s.releasedAt) >= p.drain)
	}
	tried := map[int]bool{}
	var rest []int // after the probes: the other free slots, shuffled
	scanned := false
	next := func() int {
		if !scanned {
			for range randomProbes {
				if i := rand.IntN(len(p.slots)); free(i) && !tried[i] {
					return i
				}
			}
			scanned = true
			for i := range p.slots {
				if free(i) && !tried[i] {
					rest = append(rest, i)
				}
			}
			rand.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
		}
		for len(rest) > 0 {
			i := rest[len(rest)-1]
			rest = rest[:len(rest)-1]
			if !tried[i] {
				return i
			}
		}
		return -1
	}
	var lastErr error
	for {
		i := next()
		if i < 0 {
			break
		}
		tried[i] = true
		port := p.min + 2*i
		// Binding under the lock is deliberate: it keeps two callers from
		// racing for the same slot, and a bind is a few microseconds.
		rtpConn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			lastErr = err
			continue
		}
		rtcpConn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
		if err != nil {
			rtpConn.Close()
			lastErr = err
			continue
		}
		p.slots[i].used = true
		p.inUse++
		p.metrics.portsInUse.Set(float64(p.inUse))
		return &PortPair{Port: port, RTP: rtpConn, RTCP: rtcpConn, pool: p}, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w (%d-%d on %s; last bind error: %v)", ErrNoPorts, p.min, p.max, ip, lastErr)
	}
	return nil, fmt.Errorf("%w (%d-%d, %d pairs in use or draining)", ErrNoPorts, p.min, p.max, len(p.slots))
}

func (p *PortPool) release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := (port - p.min) / 2
	if i < 0 || i >= len(p.slots) || !p.slots[i].used {
		return
	}
	p.slots[i] = portSlot{releasedAt: p.now()}
	p.inUse--
	p.metrics.portsInUse.Set(float64(p.inUse))
}

// Close closes both sockets and returns the port to its pool, where it
// drains before reuse. Safe to call more than once.
func (pp *PortPair) Close() error {
	var err error
	pp.once.Do(func() {
		err = pp.RTP.Close()
		if e := pp.RTCP.Close(); err == nil {
			err = e
		}
		if pp.pool != nil {
			pp.pool.release(pp.Port)
		}
	})
	return err
}
