package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"plateau/config"
	"plateau/sim"
)

// A Contact's ;transport= is honoured for in-dialog requests (issue 13
// item 7): a phone whose INVITE came over UDP but whose Contact says
// transport=tcp gets Plateau's BYE over TCP, on the Contact's address.
func TestContactTransportHonoured(t *testing.T) {
	need(t, "sipp")
	carrier := udpCarrier(t, func(c *sim.Config) {
		c.Rules = []sim.Rule{{Prefix: approved, Action: sim.ActionRing, HangupAfter: config.Duration(time.Second)}}
	})
	p := startPlateau(t, serverOpts{
		users:      []user{{opExt, opPass}},
		policyYAML: "  windows: [{days: mon-sun, from: \"00:00\", to: \"24:00\"}]\n",
		extraYAML: fmt.Sprintf("trunks:\n  - {name: carrier, address: %q, transport: udp, caller_id: %q, allowed_sources: [%q], options_interval: 0s}\n",
			carrier.Addr().String(), callerID, trunkSources),
	})
	approve(t, p, approved)

	udp, tcp := udpAndTCP(t)
	port := udp.LocalAddr().(*net.UDPAddr).Port
	contact := fmt.Sprintf("<sip:%s@127.0.0.1:%d;transport=tcp>", opExt, port)
	ua := &rawUA{t: t, conn: udp}
	ua.server, _ = net.ResolveUDPAddr("udp", p.sipAddr())
	callID, tag := randHex(8)+"@e2e", randHex(4)
	tx := ua.newInvite(opExt, approved, 1, callID, tag)
	r := ua.do(inviteMessage(udp, tx, contact), 10*time.Second)
	if r == nil || r.status != 407 {
		t.Fatalf("INVITE: %v, want 407", r)
	}
	ua.conn.WriteToUDP([]byte(contactAck(udp, tx, r)), ua.server)
	tx = ua.newInvite(opExt, approved, 2, callID, tag)
	r = ua.do(inviteMessage(udp, tx, contact, authorization(r, opExt, opPass, tx.uri)), 20*time.Second)
	if r == nil || r.status != 200 {
		t.Fatalf("authorized INVITE: %v, want 200", r)
	}
	ua.conn.WriteToUDP([]byte(contactAck(udp, tx, r)), ua.server)

	// The carrier hangs up after a second: Plateau's BYE must come over
	// TCP, to the Contact's port.
	byeOverUDP := make(chan string, 1)
	go func() {
		buf := make([]byte, 65535)
		udp.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			n, _, err := udp.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if strings.HasPrefix(string(buf[:n]), "BYE ") {
				byeOverUDP <- string(buf[:n])
				return
			}
		}
	}()
	tcp.SetDeadline(time.Now().Add(20 * time.Second))
	conn, err := tcp.Accept()
	if err != nil {
		select {
		case m := <-byeOverUDP:
			t.Fatalf("the BYE came over UDP despite transport=tcp:\n%s", m)
		default:
		}
		t.Fatalf("no TCP connection from Plateau: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tr := textproto.NewReader(bufio.NewReader(conn))
	start, err := tr.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := tr.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(start, "BYE sip:"+opExt+"@127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("over TCP: %q, want Plateau's BYE to the Contact", start)
	}
	if via := hdr.Get("Via"); !strings.Contains(via, "SIP/2.0/TCP") {
		t.Errorf("the BYE's Via %q does not say TCP", via)
	}
	fmt.Fprintf(conn, "SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n",
		hdr.Get("Via"), hdr.Get("From"), hdr.Get("To"), hdr.Get("Call-Id"), hdr.Get("Cseq"))
	waitMetric(t, p, mActive, 0)
	select {
	case m := <-byeOverUDP:
		t.Errorf("a BYE also came over UDP:\n%s", m)
	default:
	}
}

// udpCarrier is pstn-sim on 127.0.0.2 over UDP and TCP.
func udpCarrier(t *testing.T, mod ...func(*sim.Config)) *sim.PSTN {
	t.Helper()
	return startSim(t, mod...)
}

// startSim is the harness's one way to start pstn-sim: on 127.0.0.2 (the
// call tests' trunk source) with a 100 ms ring, shaped by mod, served
// until the test ends. freePort checks 127.0.0.1, so a port another
// process holds on 127.0.0.2 (linphonec binds random ports on every
// address) is retried on another port, not fatal.
func startSim(t *testing.T, mod ...func(*sim.Config)) *sim.PSTN {
	t.Helper()
	var err error
	for range 5 {
		cfg := sim.DefaultConfig()
		cfg.Listen = fmt.Sprintf("127.0.0.2:%d", freePort(t))
		cfg.Media.IP = "127.0.0.2"
		cfg.RingTime = config.Duration(100 * time.Millisecond)
		for _, m := range mod {
			m(&cfg)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		var p *sim.PSTN
		if p, err = sim.New(cfg); err == nil {
			return runSim(t, p)
		}
		t.Logf("pstn-sim on %s: %v (retrying on another port)", cfg.Listen, err)
	}
	t.Fatalf("pstn-sim did not start: %v", err)
	return nil
}

// runSim serves p until the test ends.
func runSim(t *testing.T, p *sim.PSTN) *sim.PSTN {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("pstn-sim did not stop")
		}
	})
	return p
}

// udpAndTCP binds UDP and TCP on the same free port of 127.0.0.1.
func udpAndTCP(t *testing.T) (*net.UDPConn, *net.TCPListener) {
	t.Helper()
	for range 20 {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: u.LocalAddr().(*net.UDPAddr).Port})
		if err != nil {
			u.Close()
			continue
		}
		t.Cleanup(func() { u.Close(); l.Close() })
		return u, l
	}
	t.Fatal("no port free for both UDP and TCP")
	return nil, nil
}

// contactAck acknowledges a final response: a failure in its transaction, a
// 2xx to the response's Contact (Plateau's).
func contactAck(c *net.UDPConn, tx inviteTx, r *response) string {
	local := c.LocalAddr().(*net.UDPAddr)
	uri, branch := tx.uri, tx.branch
	if r.status < 300 {
		uri = strings.Trim(strings.SplitN(r.get("Contact"), ";", 2)[0], "<> ")
		if i := strings.Index(r.get("Contact"), ">"); i > 0 {
			uri = strings.Trim(r.get("Contact")[:i], "<")
		}
		branch = "z9hG4bK" + randHex(6)
	}
	var a strings.Builder
	fmt.Fprintf(&a, "ACK %s SIP/2.0\r\n", uri)
	fmt.Fprintf(&a, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", local, branch)
	fmt.Fprintf(&a, "From: <sip:%s@%s>;tag=%s\r\n", tx.from, local.IP, tx.fromTag)
	fmt.Fprintf(&a, "To: %s\r\n", r.get("To"))
	fmt.Fprintf(&a, "Call-ID: %s\r\nCSeq: %d ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", tx.callID, tx.cseq)
	return a.String()
}
