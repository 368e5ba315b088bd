// Command regflood sends a flood of REGISTER requests over UDP from one
// source, as an unauthenticated attacker would, and counts the answers:
// scripts/bench-register.sh FLOOD=1 runs it against Plateau and samples the
// server's RSS meanwhile. Each request has its own Call-ID and branch, so
// each would be a new server transaction. 127.0.0.1 only by intent: it is a
// load tool for this machine, not a scanner.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	server := flag.String("server", "127.0.0.1:5060", "Plateau's SIP address (UDP)")
	rate := flag.Int("rate", 10000, "requests per second")
	dur := flag.Duration("duration", 20*time.Second, "how long to send")
	creds := flag.Bool("bad-credentials", false, "carry a (wrong) Authorization header, so each request needs a transaction")
	flag.Parse()
	if err := run(*server, *rate, *dur, *creds); err != nil {
		fmt.Fprintln(os.Stderr, "regflood:", err)
		os.Exit(1)
	}
}

func run(server string, rate int, dur time.Duration, creds bool) error {
	dst, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return err
	}
	if !dst.IP.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", server)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: dst.IP})
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadBuffer(4 << 20)
	conn.SetWriteBuffer(4 << 20)
	local := conn.LocalAddr().String()
	var answers, challenges atomic.Int64
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			answers.Add(1)
			if n > 12 && (string(buf[8:11]) == "401" || string(buf[8:11]) == "407") {
				challenges.Add(1)
			}
		}
	}()
	auth := ""
	if creds {
		auth = `Authorization: Digest username="100001", realm="plateau", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", uri="sip:` + server + `", response="00000000000000000000000000000000", algorithm=MD5, qop=auth, nc=00000001, cnonce="x"` + "\r\n"
	}
	start := time.Now()
	sent := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < dur {
		<-tick.C
		// Catch up after a late tick, as the rate is what matters.
		want := int(float64(rate) * time.Since(start).Seconds())
		for sent < want {
			id := strconv.Itoa(sent)
			msg := "REGISTER sip:" + server + " SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bKflood" + id + ";rport\r\n" +
				"Max-Forwards: 70\r\n" +
				"From: <sip:100001@" + server + ">;tag=f" + id + "\r\n" +
				"To: <sip:100001@" + server + ">\r\n" +
				"Call-ID: flood-" + id + "@regflood\r\n" +
				"CSeq: 1 REGISTER\r\n" +
				"Contact: <sip:100001@" + local + ">\r\n" +
				auth +
				"Expires: 3600\r\nContent-Length: 0\r\n\r\n"
			if _, err := conn.WriteToUDP([]byte(msg), dst); err != nil {
				time.Sleep(time.Millisecond) // ENOBUFS: the kernel is full
				continue
			}
			sent++
		}
	}
	elapsed := time.Since(start)
	time.Sleep(500 * time.Millisecond) // late answers
	fmt.Printf("sent %d REGISTER in %.1f s (%.0f/s), answers %d (challenges %d)\n",
		sent, elapsed.Seconds(), float64(sent)/elapsed.Seconds(), answers.Load(), challenges.Load())
	return nil
}
