//go:build linux

package e2e

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// udpCapture records the UDP datagrams that cross the loopback interface,
// as tcpdump -i lo would: what is really on the wire, not what a program
// says it sent. It needs CAP_NET_RAW (CI runs as root); without it
// startUDPCapture logs why and returns nil, and callers skip their check
// (under CI it fails the test instead).
type udpCapture struct {
	fd   int
	mu   sync.Mutex
	pkts []capturedUDP
	done chan struct{}
}

type capturedUDP struct {
	srcPort, dstPort int
	payload          []byte
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func startUDPCapture(t *testing.T) *udpCapture {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Logf("no packet capture: no loopback interface: %v", err)
		return nil
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		if os.Getenv("CI") != "" {
			t.Fatalf("no packet capture (it needs CAP_NET_RAW; CI runs as root): %v", err)
		}
		t.Logf("no packet capture (it needs CAP_NET_RAW): %v", err)
		return nil
	}
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: lo.Index}); err != nil {
		syscall.Close(fd)
		t.Fatalf("bind packet socket to lo: %v", err)
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<20)
	// A read timeout lets stop end the reader without closing the fd
	// under it.
	tv := syscall.NsecToTimeval(int64(100 * time.Millisecond))
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	c := &udpCapture{fd: fd, done: make(chan struct{})}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 65536)
		for {
			select {
			case <-c.done:
				return
			default:
			}
			n, from, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			// Each loopback packet is seen leaving and arriving: keep
			// the arrival only.
			if ll, ok := from.(*syscall.SockaddrLinklayer); ok && ll.Pkttype == syscall.PACKET_OUTGOING {
				continue
			}
			c.parse(buf[:n])
		}
	}()
	t.Cleanup(func() {
		c.stop()
		<-stopped
		syscall.Close(fd)
	})
	return c
}

func (c *udpCapture) stop() {
	if c == nil {
		return
	}
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}

// parse keeps an IPv4 UDP datagram from an Ethernet frame (lo has a
// zeroed Ethernet header).
func (c *udpCapture) parse(f []byte) {
	if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != syscall.IPPROTO_UDP || len(ip) < ihl+8 {
		return
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if total > len(ip) || total < ihl+8 {
		return
	}
	udp := ip[ihl:total]
	p := capturedUDP{srcPort: int(binary.BigEndian.Uint16(udp[0:])), dstPort: int(binary.BigEndian.Uint16(udp[2:])),
		payload: append([]byte(nil), udp[8:]...)}
	c.mu.Lock()
	c.pkts = append(c.pkts, p)
	c.mu.Unlock()
}

// packets returns what was captured so far.
func (c *udpCapture) packets() []capturedUDP {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]capturedUDP(nil), c.pkts...)
}

// spoofUDP sends each payload as a UDP datagram from src to dst (IPv4
// loopback addresses) through a raw socket: what an attacker on a
// carrier's path does to pass for the carrier's own RTP address and port,
// which a source check alone would then accept. It needs CAP_NET_RAW
// like the capture; without it it logs why and returns false (under CI it
// fails the test).
func spoofUDP(t *testing.T, src, dst netip.AddrPort, payloads [][]byte) bool {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		if os.Getenv("CI") != "" {
			t.Fatalf("no raw socket (it needs CAP_NET_RAW; CI runs as root): %v", err)
		}
		t.Logf("no raw socket to spoof a source (it needs CAP_NET_RAW): %v", err)
		return false
	}
	if err != nil {
		t.Fatalf("raw socket: %v", err)
	}
	defer syscall.Close(fd)
	to := &syscall.SockaddrInet4{Addr: dst.Addr().As4()}
	for _, p := range payloads {
		// IPPROTO_RAW implies IP_HDRINCL: the kernel fills in the IP
		// checksum (and the ID when 0); a UDP checksum of 0 means none.
		pkt := make([]byte, 20+8+len(p))
		pkt[0], pkt[8], pkt[9] = 0x45, 64, syscall.IPPROTO_UDP
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		copy(pkt[12:16], s4[:])
		copy(pkt[16:20], d4[:])
		binary.BigEndian.PutUint16(pkt[20:], src.Port())
		binary.BigEndian.PutUint16(pkt[22:], dst.Port())
		binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(p)))
		copy(pkt[28:], p)
		if err := syscall.Sendto(fd, pkt, 0, to); err != nil {
			t.Fatalf("spoofed send to %s: %v", dst, err)
		}
	}
	return true
}
