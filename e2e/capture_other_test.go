//go:build !linux

package e2e

import (
	"net/netip"
	"testing"
)

// udpCapture needs Linux's packet sockets; elsewhere there is none and
// the tests skip their capture checks.
type udpCapture struct{}

type capturedUDP struct {
	srcPort, dstPort int
	payload          []byte
}

func startUDPCapture(t *testing.T) *udpCapture {
	t.Log("no packet capture: implemented on Linux only")
	return nil
}

func (c *udpCapture) stop()                  {}
func (c *udpCapture) packets() []capturedUDP { return nil }

func spoofUDP(t *testing.T, src, dst netip.AddrPort, payloads [][]byte) bool {
	t.Log("no spoofed source: implemented on Linux only")
	return false
}
