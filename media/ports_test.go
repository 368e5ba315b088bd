package media

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestNewPortPoolValidates(t *testing.T) {
	for _, r := range [][2]int{{80, 2000}, {20000, 20000}, {20000, 70000}, {30000, 20000}} {
		if _, err := NewPortPool(r[0], r[1], 0, nil); err == nil {
			t.Errorf("range %v accepted", r)
		}
	}
	if _, err := NewPortPool(20001, 20003, 0, nil); err != nil {
		t.Errorf("odd min should round up: %v", err)
	}
}

func TestPortPoolDrainAndExhaustion(t *testing.T) {
	now := time.Date(2026, 1, 5, 7, 29, 59, 0, time.UTC)
	pool := testPool(t, 10*time.Second, func() time.Time { return now })
	pool.slots = pool.slots[:3] // three pairs keep the test small

	var pairs []*PortPair
	for range 3 {
		pp, err := pool.Allocate(lo)
		if err != nil {
			t.Fatal(err)
		}
		if pp.Port%2 != 0 {
			t.Fatalf("odd RTP port %d", pp.Port)
		}
		if got := pp.RTCP.LocalAddr().(*net.UDPAddr).Port; got != pp.Port+1 {
			t.Fatalf("RTCP on %d, want %d", got, pp.Port+1)
		}
		pairs = append(pairs, pp)
	}
	if _, err := pool.Allocate(lo); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("exhausted pool: %v", err)
	}
	released := pairs[1].Port
	pairs[1].Close()
	pairs[1].Close() // idempotent
	if pool.InUse() != 2 {
		t.Fatalf("in use %d", pool.InUse())
	}
	now = now.Add(9999 * time.Millisecond) // still draining
	if _, err := pool.Allocate(lo); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("draining port reused early: %v", err)
	}
	now = now.Add(time.Millisecond)
	pp, err := pool.Allocate(lo)
	if err != nil || pp.Port != released {
		t.Fatalf("after drain: %v, %v (want port %d)", pp, err, released)
	}
	for _, p := range append(pairs, pp) {
		p.Close()
	}
	if pool.InUse() != 0 {
		t.Fatalf("in use %d after closing all", pool.InUse())
	}
}

func TestPortPoolSkipsBusyPort(t *testing.T) {
	pool := testPool(t, 0, nil)
	// Another process holds the first pair's RTCP port.
	busy, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, uint16(pool.min+1))))
	if err != nil {
		t.Skipf("cannot occupy port: %v", err)
	}
	defer busy.Close()
	pp, err := pool.Allocate(lo)
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Close()
	if pp.Port == pool.min {
		t.Fatal("allocated a pair whose RTCP port is busy")
	}
	// The RTP half of the skipped pair must have been closed again.
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, uint16(pool.min))))
	if err != nil {
		t.Fatalf("skipped pair's RTP socket leaked: %v", err)
	}
	c.Close()
}

func TestPortPoolConcurrent(t *testing.T) {
	pool := testPool(t, 0, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]bool{}
	for range 8 {
		wg.Go(func() {
			for range 20 {
				pp, err := pool.Allocate(lo)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[pp.Port] {
					t.Errorf("port %d handed out twice", pp.Port)
				}
				seen[pp.Port] = true
				mu.Unlock()
				mu.Lock()
				delete(seen, pp.Port)
				mu.Unlock()
				pp.Close()
			}
		})
	}
	wg.Wait()
	if pool.InUse() != 0 {
		t.Fatalf("in use %d", pool.InUse())
	}
}
