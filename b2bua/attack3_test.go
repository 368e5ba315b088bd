package b2bua

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A hostile (or broken) forking carrier answers one INVITE with many 2xx,
// each its own To tag and Contact. Invariants: Plateau hangs up a bounded
// number of forks (maxForks), and a fork's ACK and BYE go only where the
// trunk's dialog may go (TargetOK): a fork whose Contact or Record-Route
// names another host is hung up at the INVITE's destination, never at
// that host.
func TestAttackForkedAnswers(t *testing.T) {
	// The attacker's host: anything arriving here is a request Plateau
	// sent outside the trunk.
	// The attacker listens on UDP and on TCP, on one port: a request
	// steered there over either transport is seen.
	var attacker net.PacketConn
	var attackerTCP net.Listener
	for try := 0; attackerTCP == nil; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.9:0")
		if err != nil {
			t.Skipf("no 127.0.0.9 on this host: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if try == 20 {
				t.Fatalf("no UDP and TCP port pair on 127.0.0.9: %v", err)
			}
			continue
		}
		attacker, attackerTCP = pc, ln
	}
	t.Cleanup(func() { attacker.Close(); attackerTCP.Close() })
	var amu sync.Mutex
	var atAttacker []string
	seen := func(msg string) {
		amu.Lock()
		atAttacker = append(atAttacker, msg)
		amu.Unlock()
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := attacker.ReadFrom(buf)
			if err != nil {
				return
			}
			seen(string(buf[:n]))
		}
	}()
	go func() {
		for {
			c, err := attackerTCP.Accept()
			if err != nil {
				return
			}
			seen("a TCP connection from " + c.RemoteAddr().String())
			c.Close()
		}
	}()
	attackerAddr := attacker.LocalAddr().(*net.UDPAddr).AddrPort()

	tests := []struct {
		name  string
		forks int
		// fork builds the headers of fork i's 2xx besides the To tag.
		fork      func(i int, req *sip.Request) []sip.Header
		wantByes  int // at the carrier, the call's own BYE included
		wantRefus bool
	}{
		{
			name:  "2xx storm: 40 To tags, at most maxForks hung up",
			forks: 40,
			fork: func(i int, req *sip.Request) []sip.Header {
				return []sip.Header{&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: fmt.Sprintf("f%d", i), Host: req.Recipient.Host, Port: req.Recipient.Port}}}
			},
			wantByes: 1 + maxForks,
		},
		{
			name:  "a fork's Contact at another host",
			forks: 2,
			fork: func(i int, req *sip.Request) []sip.Header {
				host, port := req.Recipient.Host, req.Recipient.Port
				if i == 1 {
					host, port = attackerAddr.Addr().String(), int(attackerAddr.Port())
				}
				return []sip.Header{&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: fmt.Sprintf("f%d", i), Host: host, Port: port}}}
			},
			wantByes: 2, wantRefus: true,
		},
		{
			name:  "a fork's Record-Route at another host, over tcp",
			forks: 2,
			fork: func(i int, req *sip.Request) []sip.Header {
				h := []sip.Header{&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: fmt.Sprintf("f%d", i), Host: req.Recipient.Host, Port: req.Recipient.Port}}}
				if i == 1 {
					h = append(h, sip.NewHeader("Record-Route", fmt.Sprintf("<sip:%s;transport=tcp;lr>", attackerAddr)))
				}
				return h
			},
			wantByes: 2, wantRefus: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			carrier := startFakeCarrier(t, func(f *fakeCarrier, n int, req *sip.Request, tx sip.ServerTransaction) {
				for i := range tt.forks {
					if i == 1 {
						// Fork 0 is the answer taken: the others come once
						// it is acknowledged, so that they are the forks.
						// (On the server's goroutine: no Fatal here.)
						for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
							if _, _, acks, _, _ := f.counts(); acks > 0 {
								break
							}
							if time.Now().After(deadline) {
								t.Error("the first answer was never acknowledged")
								return
							}
						}
					}
					res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", []byte("v=0\r\n"))
					res.To().Params.Remove("tag")
					res.To().Params.Add("tag", fmt.Sprintf("fork%d", i))
					for _, h := range tt.fork(i, req) {
						res.AppendHeader(h)
					}
					res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
					tx.Respond(res)
				}
			})
			carrierHost := netip.MustParseAddrPort(carrier.addr).Addr()
			client, contact := plateauSide(t)
			rec := &legRecorder{}
			o := rec.options()
			stop := make(chan struct{})
			o.Stop = stop
			var refusals sync.Map
			o.TargetOK = func(a netip.Addr) bool { return a == carrierHost }
			o.OnTargetRefused = func(why string) { refusals.Store(why, true) }
			d, err := dialTrunkLeg(context.Background(), client, contact, trunkInvite(carrier.addr), o)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			waitFor(t, "the forks hung up", func() bool {
				carrier.mu.Lock()
				defer carrier.mu.Unlock()
				return len(carrier.byes) >= tt.wantByes-1
			})
			if err := d.Bye(context.Background()); err != nil {
				t.Fatalf("bye: %v", err)
			}
			waitFor(t, "the call's own BYE", func() bool {
				carrier.mu.Lock()
				defer carrier.mu.Unlock()
				return len(carrier.byes) >= tt.wantByes
			})
			close(stop)
			rec.wg.Wait()
			carrier.mu.Lock()
			if n := len(carrier.byes); n > tt.wantByes {
				t.Errorf("%d BYEs at the carrier, want at most %d (the forks Plateau hangs up are bounded)", n, tt.wantByes)
			}
			carrier.mu.Unlock()
			amu.Lock()
			if len(atAttacker) > 0 {
				t.Errorf("%d messages sent to a fork's foreign target, first:\n%s", len(atAttacker), atAttacker[0])
			}
			amu.Unlock()
			refused := false
			refusals.Range(func(any, any) bool { refused = true; return false })
			if refused != tt.wantRefus {
				t.Errorf("target refused %v, want %v", refused, tt.wantRefus)
			}
		})
	}
}
