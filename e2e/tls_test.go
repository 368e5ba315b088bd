package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"plateau/certs"
	"plateau/config"
	"plateau/sim"
)

// SIP over TLS (issue 13): TLS trunks toward pstn-sim as a TLS carrier,
// the carrier's certificate verified; phones over TLS (baresip).

// pemPair is a self-signed certificate (it is its own CA) and its key.
type pemPair struct{ cert, key string }

func writePair(t *testing.T, dir, name string, hosts ...string) pemPair {
	t.Helper()
	c, k, err := certs.SelfSigned(hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := pemPair{filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")}
	if err := os.WriteFile(p.cert, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.key, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sipTLS makes Plateau's own certificate for hosts and picks its SIP TLS
// port: the sip.tls lines of serverOpts.sipYAML, the port and the pair.
func sipTLS(t *testing.T, hosts ...string) (yaml string, port int, own pemPair) {
	t.Helper()
	own = writePair(t, t.TempDir(), "plateau", hosts...)
	port = freePort(t)
	return fmt.Sprintf("  tls: {listen: \"127.0.0.1:%d\", cert_file: %q, key_file: %q}\n", port, own.cert, own.key), port, own
}

// tlsCarrier is pstn-sim on 127.0.0.2 (the trunk source of the call
// tests) with a TLS listener presenting cert; clientCA, when set, is
// demanded of clients (mutual TLS).
func tlsCarrier(t *testing.T, cert pemPair, clientCA string, mod ...func(*sim.Config)) *sim.PSTN {
	t.Helper()
	withTLS := func(c *sim.Config) {
		c.TLS = sim.TLSConfig{Listen: "127.0.0.2:0", CertFile: cert.cert, KeyFile: cert.key, ClientCAFile: clientCA}
	}
	return startSim(t, append([]func(*sim.Config){withTLS}, mod...)...)
}

// tlsPlateau starts plateau with SIP over TLS (its own certificate) and
// one TLS trunk toward carrier with the given trunks[].tls lines.
func tlsPlateau(t *testing.T, carrier *sim.PSTN, trunkTLS string) (p *plateau, tlsPort int, ownCert string) {
	t.Helper()
	return tlsPlateauKeepalive(t, carrier, trunkTLS, "0s")
}

// tlsPlateauKeepalive is tlsPlateau with the trunk's options_interval;
// extra are more keys of the trunk (", key: value").
func tlsPlateauKeepalive(t *testing.T, carrier *sim.PSTN, trunkTLS, interval string, extra ...string) (p *plateau, tlsPort int, ownCert string) {
	t.Helper()
	need(t, "sipp")
	sipYAML, tlsPort, own := sipTLS(t, "127.0.0.1")
	p = startPlateau(t, serverOpts{
		users:      []user{{opExt, opPass}},
		transports: "[udp, tcp, tls]",
		sipYAML:    sipYAML,
		policyYAML: "  windows: [{days: mon-sun, from: \"00:00\", to: \"24:00\"}]\n",
		extraYAML: fmt.Sprintf("trunks:\n  - {name: tlscarrier, address: %q, transport: tls, caller_id: %q, allowed_sources: [%q], options_interval: %s, tls: {%s}%s}\n",
			carrier.TLSAddr().String(), callerID, trunkSources, interval, trunkTLS, strings.Join(extra, "")),
	})
	approve(t, p, approved)
	return p, tlsPort, own.cert
}

const (
	mTLSOut        = "plateau_sip_tls_outbound_connections"
	mTLSCertRefuse = `plateau_sip_tls_handshake_failures_total{direction="out",reason="certificate"}`
)

// An operator's call leaves over TLS to a carrier whose certificate
// verifies (name and chain): answered, hung up over TLS, recorded.
func TestTLSTrunkCall(t *testing.T) {
	dir := t.TempDir()
	carrierCert := writePair(t, dir, "carrier", "127.0.0.2")
	carrier := tlsCarrier(t, carrierCert, "")
	p, _, _ := tlsPlateau(t, carrier, fmt.Sprintf("ca_file: %q", carrierCert.cert))

	op := startOperator(t, p, "uac_call.xml", approved)
	op.mustSucceed(45 * time.Second)
	waitMetric(t, p, mActive, 0)
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("%s = %v, want 1", mAnswer, v)
	}
	calls := carrier.Calls()
	if len(calls) != 1 {
		t.Fatalf("the carrier saw %d calls, want 1: %+v", len(calls), calls)
	}
	c := calls[0]
	if !strings.EqualFold(c.Transport, "TLS") || !c.Answered || c.Number != approved {
		t.Errorf("carrier's call: %+v, want an answered call to %s over TLS", c, approved)
	}
	eventually(t, "the carrier's call ended by Plateau's BYE", func() (bool, string) {
		cs := carrier.Calls()
		return len(cs) == 1 && !cs[0].End.IsZero() && cs[0].HangupBy == "remote", fmt.Sprintf("%+v", cs)
	})
	if v := p.metricOf(mTLSOut); v < 1 {
		t.Errorf("%s = %v, want a verified connection open", mTLSOut, v)
	}
	eventually(t, "the call recorded", func() (bool, string) {
		f := recordingFiles(t, p)
		return len(f[".wav"]) == 1 && len(f[".json"]) == 1, fmt.Sprint(f)
	})
	if out, err := p.plateauCmd("recordings", "verify"); err != nil {
		t.Errorf("plateau recordings verify: %v\n%s", err, out)
	}
}

// A carrier whose certificate does not verify (self-signed by someone
// Plateau does not trust, or for another name): the call is refused 503
// with a Reason naming TLS, audited and counted, and nothing reached the
// carrier — not the INVITE over TLS, nor any fallback in clear.
func TestTLSTrunkUntrustedCertificate(t *testing.T) {
	for _, tc := range []struct {
		trunkTLS func(dir string, carrier pemPair) string
		label    string
	}{
		{label: "unknown CA", trunkTLS: func(dir string, _ pemPair) string {
			other := writePair(t, dir, "other", "127.0.0.2")
			return fmt.Sprintf("ca_file: %q", other.cert)
		}},
		{label: "wrong name", trunkTLS: func(_ string, carrier pemPair) string {
			return fmt.Sprintf("ca_file: %q, server_name: sbc.other-carrier.example", carrier.cert)
		}},
	} {
		t.Run(tc.label, func(t *testing.T) {
			dir := t.TempDir()
			carrierCert := writePair(t, dir, "carrier", "127.0.0.2")
			carrier := tlsCarrier(t, carrierCert, "")
			// Anything Plateau might send in clear to the carrier's port
			// (the UDP twin of its TLS port; rarely taken).
			udp, err := net.ListenPacket("udp", carrier.TLSAddr().String())
			if err != nil {
				t.Logf("no UDP twin of the carrier's port, that check is skipped: %v", err)
			} else {
				defer udp.Close()
			}
			p, _, _ := tlsPlateau(t, carrier, tc.trunkTLS(dir, carrierCert))

			ua := newRawUA(t, p, "127.0.0.1")
			callID, tag := randHex(8)+"@e2e", randHex(4)
			r := ua.invite(ua.newInvite(opExt, approved, 1, callID, tag))
			if r == nil || r.status != 407 {
				t.Fatalf("INVITE: %v, want 407", r)
			}
			tx := ua.newInvite(opExt, approved, 2, callID, tag)
			r = ua.invite(tx, authorization(r, opExt, opPass, tx.uri))
			if r == nil || r.status != 503 {
				t.Fatalf("INVITE to an untrusted TLS carrier: %v, want 503", r)
			}
			if reason := r.get("Reason"); !strings.Contains(reason, "TLS_FAILED") {
				t.Errorf("503 Reason %q does not name TLS", reason)
			}
			if calls := carrier.Calls(); len(calls) != 0 {
				t.Errorf("the carrier got %d calls through an unverified connection: %+v", len(calls), calls)
			}
			if udp != nil {
				udp.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				buf := make([]byte, 2048)
				if n, from, err := udp.ReadFrom(buf); err == nil {
					t.Errorf("Plateau fell back to UDP: %d bytes from %s:\n%s", n, from, buf[:n])
				}
			}
			auditHas(t, p, "trunk.tls_refused", "tlscarrier", "TLS_FAILED")
			if v := p.metricOf(mTLSCertRefuse); v < 1 {
				t.Errorf("%s = %v, want ≥ 1", mTLSCertRefuse, v)
			}
			if v := p.metricOf(mAnswer); v != 0 {
				t.Errorf("%s = %v, want 0", mAnswer, v)
			}
		})
	}
}

// A carrier that demands a client certificate: Plateau presents
// trunks[].tls.cert_file and the call goes through; without it the
// carrier refuses the handshake and the call fails closed.
func TestTLSTrunkClientCertificate(t *testing.T) {
	dir := t.TempDir()
	carrierCert := writePair(t, dir, "carrier", "127.0.0.2")
	client := writePair(t, dir, "plateau-client", "plateau.example")
	carrier := tlsCarrier(t, carrierCert, client.cert)

	t.Run("presented", func(t *testing.T) {
		p, _, _ := tlsPlateau(t, carrier, fmt.Sprintf("ca_file: %q, cert_file: %q, key_file: %q", carrierCert.cert, client.cert, client.key))
		op := startOperator(t, p, "uac_call.xml", approved)
		op.mustSucceed(45 * time.Second)
		waitMetric(t, p, mActive, 0)
		if v := p.metricOf(mAnswer); v != 1 {
			t.Errorf("%s = %v, want 1", mAnswer, v)
		}
	})
	before := len(carrier.Calls())
	if before != 1 {
		t.Fatalf("the carrier saw %d calls with the client certificate, want 1", before)
	}
	t.Run("missing", func(t *testing.T) {
		p, _, _ := tlsPlateau(t, carrier, fmt.Sprintf("ca_file: %q", carrierCert.cert))
		op := startOperator(t, p, "uac_503.xml", approved)
		op.mustSucceed(30 * time.Second)
		auditHas(t, p, "trunk.tls_refused", "tlscarrier")
		if n := len(carrier.Calls()); n != before {
			t.Errorf("the carrier got a call from a client without a certificate")
		}
	})
}

// A phone over TLS (Debian's baresip 1.0): it registers to Plateau's TLS
// listener and calls through Plateau to a TLS carrier, which hangs up: the
// call is answered and recorded, Plateau's Contact says transport=tls, and
// the BYE Plateau sends the phone goes over TLS on the phone's own
// connection (its Contact names a port where it does not listen for TLS).
// Then the carrier calls in: Plateau rings the phone over TLS too.
func TestBaresipOverTLS(t *testing.T) {
	need(t, "baresip")
	dir := t.TempDir()
	carrierCert := writePair(t, dir, "carrier", "127.0.0.2")
	carrier := tlsCarrier(t, carrierCert, "", func(c *sim.Config) {
		c.Rules = []sim.Rule{{Prefix: approved, Action: sim.ActionRing, HangupAfter: config.Duration(2 * time.Second)}}
	})
	p, tlsPort, own := tlsPlateau(t, carrier, fmt.Sprintf("ca_file: %q", carrierCert.cert))

	b := startBaresip(t, baresipOpts{
		account: fmt.Sprintf("<sip:%s@127.0.0.1:%d;transport=tls>;auth_pass=%s;regint=600;answermode=auto", opExt, tlsPort, opPass),
		config: []string{"sip_cafile " + own, "audio_source aufile," + filepath.Join(repoRoot, "configs", "prompts", "notice-en.wav"),
			"module aufile.so"},
		// -s: baresip traces every SIP message with its transport and addresses.
		args: []string{"-s", "-e", "/dial " + approved},
		quit: 40 * time.Second, timeout: 90 * time.Second,
	})
	out := b.out
	defer b.stop()
	b.waitRegistered(p, opExt, "transport=tls", 15*time.Second)
	waitMetric(t, p, mAnswer, 1)
	fromPlateau := fmt.Sprintf("TLS 127.0.0.1:%d -> ", tlsPort)
	eventually(t, "Plateau's BYE to the phone over TLS", func() (bool, string) {
		return received(out.String(), fromPlateau, "BYE sip:"), tail(out.String(), 2000)
	})
	if !strings.Contains(out.String(), fmt.Sprintf("Contact: <sip:plateau@127.0.0.1:%d;transport=tls>", tlsPort)) {
		t.Errorf("Plateau's Contact toward the phone does not say transport=tls")
	}
	eventually(t, "the call recorded", func() (bool, string) {
		f := recordingFiles(t, p)
		return len(f[".wav"]) == 1 && len(f[".json"]) == 1, fmt.Sprint(f)
	})
	if calls := carrier.Calls(); len(calls) != 1 || !strings.EqualFold(calls[0].Transport, "TLS") || !calls[0].Answered {
		t.Errorf("carrier calls: %+v, want one answered over TLS", calls)
	}
	waitMetric(t, p, mActive, 0)

	// Inbound: the carrier calls, Plateau rings the phone over TLS.
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	st, err := carrier.Call(cctx, p.sipAddr(), "0240000000", approved, 1500*time.Millisecond)
	if err != nil || !st.Answered {
		t.Fatalf("the carrier's inbound call: %+v, %v", st, err)
	}
	if !received(out.String(), fromPlateau, "INVITE sip:"+opExt) {
		t.Errorf("the phone was not rung over TLS from Plateau's TLS listener")
	}
	waitMetric(t, p, mAnswer, 2)
	waitMetric(t, p, mActive, 0)
	auditVerify(t, p)
}

// received reports whether baresip's trace shows a message whose first
// line starts with start, arriving from (the line before it) from.
func received(trace, from, start string) bool {
	lines := strings.Split(trace, "\n")
	for i := 1; i < len(lines); i++ {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), start) && strings.Contains(lines[i-1], from) {
			return true
		}
	}
	return false
}

const mTrunkUpTLS = `plateau_trunk_up{trunk="tlscarrier"}`

// Keepalive OPTIONS go over TLS too: a carrier whose certificate verifies
// is up; one whose certificate does not is down (audited trunk.state with
// the reason), and no OPTIONS reached it.
func TestTLSTrunkKeepalive(t *testing.T) {
	dir := t.TempDir()
	carrierCert := writePair(t, dir, "carrier", "127.0.0.2")
	other := writePair(t, dir, "other", "127.0.0.2")
	carrier := tlsCarrier(t, carrierCert, "")
	t.Run("trusted", func(t *testing.T) {
		p, _, _ := tlsPlateauKeepalive(t, carrier, fmt.Sprintf("ca_file: %q", carrierCert.cert), "2s")
		waitMetric(t, p, mTrunkUpTLS, 1)
		if v := p.metricOf(mTLSOut); v != 1 {
			t.Errorf("%s = %v, want 1 (the keepalive's verified connection)", mTLSOut, v)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		p, _, _ := tlsPlateauKeepalive(t, carrier, fmt.Sprintf("ca_file: %q", other.cert), "2s")
		eventually(t, "trunk down audited", func() (bool, string) {
			st := auditLines(t, p, "trunk.state")
			return strings.Contains(st, "down") && strings.Contains(st, "certificate"), st
		})
		if v := p.metricOf(mTrunkUpTLS); v != 0 {
			t.Errorf("%s = %v, want 0", mTrunkUpTLS, v)
		}
		if v := p.metricOf(mTLSCertRefuse); v < 1 {
			t.Errorf("%s = %v, want ≥ 1", mTLSCertRefuse, v)
		}
	})
}

// The TLS listener's certificate is replaced on SIGHUP without a restart:
// a new handshake gets the renewed certificate, the call path untouched.
func TestSIPTLSCertificateReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	carrierCert := writePair(t, dir, "carrier", "127.0.0.2")
	carrier := tlsCarrier(t, carrierCert, "")
	p, tlsPort, own := tlsPlateau(t, carrier, fmt.Sprintf("ca_file: %q", carrierCert.cert))
	served := func() string {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("TLS to Plateau: %v", err)
		}
		defer c.Close()
		return certs.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
	}
	before := served()
	renewed := writePair(t, t.TempDir(), "renewed", "127.0.0.1")
	for _, f := range [][2]string{{renewed.cert, own}, {renewed.key, strings.TrimSuffix(own, ".crt") + ".key"}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the renewed certificate served", func() (bool, string) {
		got := served()
		return got != before, got
	})
	// The new certificate is in service a moment before the line is written.
	eventually(t, "the reload logged", func() (bool, string) {
		return strings.Contains(p.logs.String(), "SIGHUP: certificate reloaded"), tail(p.logs.String(), 2000)
	})
	// Still serving calls.
	op := startOperator(t, p, "uac_call.xml", approved)
	op.mustSucceed(45 * time.Second)
	waitMetric(t, p, mAnswer, 1)
}

// A registration trunk over TLS: the REGISTER goes over the verified
// connection with a TLS Contact, and the registered PBX's call is
// accepted.
func TestTLSRegistrationTrunk(t *testing.T) {
	dir := t.TempDir()
	carrierCert := writePair(t, dir, "carrier", "127.0.0.2")
	carrier := tlsCarrier(t, carrierCert, "", func(c *sim.Config) {
		c.Auth = sim.AuthConfig{Username: "atelier", Password: "reg-secret", Realm: "carrier"}
		c.Registrar = sim.RegistrarConfig{Enabled: true, MaxExpires: config.Duration(time.Hour)}
	})
	p, tlsPort, _ := tlsPlateauKeepalive(t, carrier, fmt.Sprintf("ca_file: %q", carrierCert.cert), "0s",
		", auth: {username: atelier, password: reg-secret}, register: {expires: 600s, contact_user: atelier-pbx}")
	waitMetric(t, p, `plateau_trunk_registered{trunk="tlscarrier"}`, 1)
	user, hostport, ok := carrier.Binding()
	if want := fmt.Sprintf("127.0.0.1:%d", tlsPort); !ok || user != "atelier-pbx" || hostport != want {
		t.Errorf("carrier binding %q at %q (%v), want atelier-pbx at Plateau's TLS listener %s", user, hostport, ok, want)
	}
	op := startOperator(t, p, "uac_call.xml", approved)
	op.mustSucceed(45 * time.Second)
	waitMetric(t, p, mAnswer, 1)
	if calls := carrier.Calls(); len(calls) != 1 || !strings.EqualFold(calls[0].Transport, "TLS") {
		t.Errorf("carrier calls %+v, want one over TLS", calls)
	}
}
