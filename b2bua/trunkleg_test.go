package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// fakeCarrier is a scripted UAS on 127.0.0.1 (sipgo server on a real UDP
// socket): each test says how it answers INVITEs and records what arrived.
type fakeCarrier struct {
	addr string

	mu      sync.Mutex
	invites []*sip.Request
	pracks  []*sip.Request
	acks    []*sip.Request
	byes    []*sip.Request
	cancels int
}

func (f *fakeCarrier) record(list *[]*sip.Request, req *sip.Request) {
	f.mu.Lock()
	*list = append(*list, req.Clone())
	f.mu.Unlock()
}

func (f *fakeCarrier) counts() (invites, pracks, acks, byes, cancels int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.invites), len(f.pracks), len(f.acks), len(f.byes), f.cancels
}

func (f *fakeCarrier) invite(i int) *sip.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.invites[i]
}

// startFakeCarrier serves onInvite (n is the INVITE's rank, from 0).
func startFakeCarrier(t *testing.T, onInvite func(f *fakeCarrier, n int, req *sip.Request, tx sip.ServerTransaction)) *fakeCarrier {
	t.Helper()
	f := &fakeCarrier{}
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		f.mu.Lock()
		n := len(f.invites)
		f.invites = append(f.invites, req.Clone())
		f.mu.Unlock()
		tx.OnCancel(func(*sip.Request) { f.mu.Lock(); f.cancels++; f.mu.Unlock() })
		onInvite(f, n, req, tx)
	})
	srv.OnPrack(func(req *sip.Request, tx sip.ServerTransaction) {
		f.record(&f.pracks, req)
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { f.record(&f.acks, req) })
	srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		t.Errorf("CANCEL matched no INVITE transaction:\n%s", req)
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "No Transaction", nil))
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		f.record(&f.byes, req)
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = conn.LocalAddr().String()
	go srv.ServeUDP(conn)
	t.Cleanup(func() { conn.Close(); ua.Close() })
	return f
}

// plateauSide is the client half: a UA listening on its own UDP port, the
// client bound to it as in production.
func plateauSide(t *testing.T) (*sipgo.Client, sip.ContactHeader) {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUDP(conn)
	// The client must find the listening socket, not open its own on the
	// same port.
	waitFor(t, "listener registered", func() bool {
		c, err := ua.TransportLayer().GetConnection("udp", conn.LocalAddr().String())
		return err == nil && c != nil
	})
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); ua.Close() })
	port := conn.LocalAddr().(*net.UDPAddr).Port
	return client, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "plateau", Host: "127.0.0.1", Port: port}}
}

func trunkInvite(carrier string) *sip.Request {
	var u sip.Uri
	sip.ParseUri("sip:+33240123456@"+carrier, &u)
	req := sip.NewRequest(sip.INVITE, u)
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "+33240000000", Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: u})
	req.SetBody([]byte("v=0\r\n"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	return req
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if code > 100 {
		if to := res.To(); to != nil {
			to.Params.Remove("tag")
			to.Params.Add("tag", "carrier")
		}
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: req.Recipient.Host, Port: req.Recipient.Port}})
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	tx.Respond(res)
}

// legRecorder collects what the leg reported.
type legRecorder struct {
	mu     sync.Mutex
	events []string
	provs  []int
	late   int
	forks  []error // OnForkAnswer's BYE outcomes
	wg     sync.WaitGroup
}

func (r *legRecorder) options() trunkLegOptions {
	return trunkLegOptions{
		Username: "plateau", Password: "trunk-secret",
		RingTimeout: 10 * time.Second, SilenceTimeout: 5 * time.Second,
		OnProvisional: func(res *sip.Response) { r.mu.Lock(); r.provs = append(r.provs, int(res.StatusCode)); r.mu.Unlock() },
		OnLateAnswer:  func(*sip.Response) { r.mu.Lock(); r.late++; r.mu.Unlock() },
		OnForkAnswer:  func(_ *sip.Response, err error) { r.mu.Lock(); r.forks = append(r.forks, err); r.mu.Unlock() },
		Go:            func(f func()) { r.wg.Add(1); go func() { defer r.wg.Done(); f() }() },
		Event:         func(e string) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() },
		Log:           slog.New(slog.DiscardHandler),
	}
}

func (r *legRecorder) count(event string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e == event {
			n++
		}
	}
	return n
}

func TestTrunkLegManyProvisionalsThenAnswer(t *testing.T) {
	const rings = 30 // three times what sipgo's WaitAnswer tolerates
	rec := &legRecorder{}
	carrier := startFakeCarrier(t, func(f *fakeCarrier, n int, req *sip.Request, tx sip.ServerTransaction) {
		for range rings {
			respond(tx, req, sip.StatusRinging, "Ringing")
		}
		// sipgo hands each response to its transaction on its own
		// goroutine: a 200 right behind the 180s may overtake some.
		waitFor(t, "all 180s relayed", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.provs) == rings })
		respond(tx, req, sip.StatusOK, "OK")
	})
	client, contact := plateauSide(t)
	d, err := dialTrunkLeg(context.Background(), client, contact, trunkInvite(carrier.addr), rec.options())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	rec.mu.Lock()
	got := len(rec.provs)
	rec.mu.Unlock()
	if got != rings {
		t.Errorf("%d provisionals relayed, want %d", got, rings)
	}
	waitFor(t, "ACK", func() bool { _, _, acks, _, _ := carrier.counts(); return acks == 1 })

	// The INVITE says what Plateau supports and nothing about what it is.
	inv := carrier.invite(0)
	for name, want := range map[string]string{"Supported": "100rel", "Allow": "PRACK"} {
		if h := inv.GetHeader(name); h == nil || !strings.Contains(h.Value(), want) {
			t.Errorf("INVITE %s = %v, want it to contain %s", name, h, want)
		}
	}
	for _, name := range []string{"User-Agent", "Server"} {
		if h := inv.GetHeader(name); h != nil {
			t.Errorf("INVITE carries %s: %s (fingerprinting)", name, h.Value())
		}
	}

	// BYE goes in the dialog: the carrier's To tag, a higher CSeq.
	if err := d.Bye(context.Background()); err != nil {
		t.Fatalf("bye: %v", err)
	}
	if d.Context().Err() == nil {
		t.Error("dialog context still open after BYE")
	}
	carrier.mu.Lock()
	bye := carrier.byes[0]
	carrier.mu.Unlock()
	if tag, _ := bye.To().Params.Get("tag"); tag != "carrier" {
		t.Errorf("BYE To tag %q, want carrier", tag)
	}
	if bye.CSeq().SeqNo <= inv.CSeq().SeqNo {
		t.Errorf("BYE CSeq %d not above the INVITE's %d", bye.CSeq().SeqNo, inv.CSeq().SeqNo)
	}
	rec.wg.Wait()
}

func TestTrunkLegDigestRetriesOnce(t *testing.T) {
	tests := []struct {
		name       string
		code       int
		header     string
		answer     string // what the carrier answers the authorised INVITE
		wantStatus int    // 0: connected
		wantAuth   string
	}{
		{"401 then answer", 401, "WWW-Authenticate", "ok", 0, "Authorization"},
		{"407 then answer", 407, "Proxy-Authenticate", "ok", 0, "Proxy-Authorization"},
		{"407 twice: wrong credentials", 407, "Proxy-Authenticate", "challenge", 407, "Proxy-Authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chal := sip.NewHeader(tt.header, `Digest realm="carrier", nonce="abc123", algorithm=MD5`)
			carrier := startFakeCarrier(t, func(f *fakeCarrier, n int, req *sip.Request, tx sip.ServerTransaction) {
				if n == 0 || tt.answer == "challenge" {
					respond(tx, req, tt.code, "Auth", chal)
					return
				}
				respond(tx, req, sip.StatusOK, "OK")
			})
			client, contact := plateauSide(t)
			rec := &legRecorder{}
			_, err := dialTrunkLeg(context.Background(), client, contact, trunkInvite(carrier.addr), rec.options())
			var le *TrunkLegError
			switch {
			case tt.wantStatus == 0 && err != nil:
				t.Fatalf("dial: %v", err)
			case tt.wantStatus != 0 && (!errors.As(err, &le) || le.Status != tt.wantStatus || le.Reason != "AUTH_FAILED"):
				t.Fatalf("dial error %v, want status %d AUTH_FAILED", err, tt.wantStatus)
			}
			invites, _, _, _, _ := carrier.counts()
			if invites != 2 {
				t.Fatalf("%d INVITEs, want 2 (one retry only)", invites)
			}
			first, second := carrier.invite(0), carrier.invite(1)
			h := second.GetHeader(tt.wantAuth)
			if h == nil || !strings.Contains(h.Value(), `username="plateau"`) || !strings.Contains(h.Value(), `nonce="abc123"`) {
				t.Errorf("retry %s = %v", tt.wantAuth, h)
			}
			if second.CSeq().SeqNo != first.CSeq().SeqNo+1 || second.CallID().Value() != first.CallID().Value() {
				t.Errorf("retry CSeq %d Call-ID %s, want %d and %s", second.CSeq().SeqNo, second.CallID().Value(), first.CSeq().SeqNo+1, first.CallID().Value())
			}
			b1, _ := first.Via().Params.Get("branch")
			b2, _ := second.Via().Params.Get("branch")
			if b1 == b2 {
				t.Error("retry reuses the first INVITE's branch")
			}
			rec.wg.Wait()
		})
	}
}

func TestTrunkLegExtensionRequired(t *testing.T) {
	tests := []struct {
		name       string
		require    string
		wantInvite int
		wantErr    bool
	}{
		{"100rel is supported: retry requiring it", "100rel", 2, false},
		{"unknown extension: clear failure", "precondition", 1, true},
		{"one known, one unknown: no retry", "100rel, foo", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			carrier := startFakeCarrier(t, func(f *fakeCarrier, n int, req *sip.Request, tx sip.ServerTransaction) {
				if req.GetHeader("Require") == nil {
					respond(tx, req, sip.StatusExtensionRequired, "Extension Required", sip.NewHeader("Require", tt.require))
					return
				}
				respond(tx, req, sip.StatusOK, "OK")
			})
			client, contact := plateauSide(t)
			rec := &legRecorder{}
			_, err := dialTrunkLeg(context.Background(), client, contact, trunkInvite(carrier.addr), rec.options())
			invites, _, _, _, _ := carrier.counts()
			if invites != tt.wantInvite {
				t.Errorf("%d INVITEs, want %d", invites, tt.wantInvite)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				if h := carrier.invite(1).GetHeader("Require"); h == nil || h.Value() != "100rel" {
					t.Errorf("retry Require = %v, want 100rel", h)
				}
				return
			}
			var le *TrunkLegError
			if !errors.As(err, &le) || le.Status != sip.StatusExtensionRequired || le.Reason != "EXTENSION_REQUIRED" {
				t.Fatalf("error %v, want 421 EXTENSION_REQUIRED", err)
			}
			hs := trunkFailureHeaders(err)
			if len(hs) != 1 || !strings.Contains(hs[0].Value(), "EXTENSION_REQUIRED") {
				t.Errorf("operator's Reason headers %v", hs)
			}
			rec.wg.Wait()
		})
	}
}

func TestTrunkLegPrack(t *testing.T) {
	reliable := func(rseq int) []sip.Header {
		return []sip.Header{sip.NewHeader("Require", "100rel"), sip.NewHeader("RSeq", fmt.Sprint(rseq))}
	}
	carrier := startFakeCarrier(t, func(f *fakeCarrier, n int, req *sip.Request, tx sip.ServerTransaction) {
		respond(tx, req, sip.StatusSessionInProgress, "Session Progress", reliable(7)...)
		waitFor(t, "first PRACK", func() bool { _, p, _, _, _ := f.counts(); return p >= 1 })
		respond(tx, req, sip.StatusSessionInProgress, "Session Progress", reliable(7)...) // retransmission
		respond(tx, req, sip.StatusRinging, "Ringing", reliable(8)...)
		waitFor(t, "second PRACK", func() bool { _, p, _, _, _ := f.counts(); return p >= 2 })
		respond(tx, req, sip.StatusOK, "OK")
	})
	client, contact := plateauSide(t)
	rec := &legRecorder{}
	if _, err := dialTrunkLeg(context.Background(), client, contact, trunkInvite(carrier.addr), rec.options()); err != nil {
		t.Fatalf("dial: %v", err)
	}
	rec.wg.Wait()
	carrier.mu.Lock()
	defer carrier.mu.Unlock()
	if len(carrier.pracks) != 2 {
		t.Fatalf("%d PRACKs, want 2 (RSeq 7 and 8; the retransmission skipped)", len(carrier.pracks))
	}
	invCSeq := carrier.invites[0].CSeq().SeqNo
	for i, want := range []string{fmt.Sprintf("7 %d INVITE", invCSeq), fmt.Sprintf("8 %d INVITE", invCSeq)} {
		p := carrier.pracks[i]
		if h := p.GetHeader("RAck"); h == nil || h.Value() != want {
			t.Errorf("PRACK %d RAck = %v, want %s", i, h, want)
		}
		if tag, _ := p.To().Params.Get("tag"); tag != "carrier" {
			t.Errorf("PRACK %d To tag %q, want the early dialog's", i, tag)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if fmt.Sprint(rec.provs) != "[183 180]" {
		t.Errorf("relayed provisionals %v, want [183 180]", rec.provs)
	}
}

func TestTrunkLegCancel(t *testing.T) {
	tests := []struct {
		name        string
		provisional bool
		ring        time.Duration
		cancelAfter time.Duration // the operator hangs up
		wantStatus  int
		wantCancel  int
	}{
		{"ring timeout after 180", true, 300 * time.Millisecond, 0, sip.StatusRequestTimeout, 1},
		{"operator cancels after 180", true, 10 * time.Second, 300 * time.Millisecond, sip.StatusRequestTerminated, 1},
		{"ring timeout before any provisional: no CANCEL", false, 300 * time.Millisecond, 0, sip.StatusRequestTimeout, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			carrier := startFakeCarrier(t, func(f *fakeCarrier, n int, req *sip.Request, tx sip.ServerTransaction) {
				if tt.provisional {
					respond(tx, req, sip.StatusRinging, "Ringing")
				} else {
					respond(tx, req, sip.StatusTrying, "Trying")
				}
				<-tx.Done() // sipgo ends the transaction when the handler returns
			})
			client, contact := plateauSide(t)
			rec := &legRecorder{}
			o := rec.options()
			o.RingTimeout = tt.ring
			stop := make(chan struct{})
			o.Stop = stop // the INVITE left unanswered is not waited for 32 s
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelAfter > 0 {
				time.AfterFunc(tt.cancelAfter, cancel)
			}
			_, err := dialTrunkLeg(ctx, client, contact, trunkInvite(carrier.addr), o)
			var le *TrunkLegError
			if !errors.As(err, &le) || le.Status != tt.wantStatus {
				t.Fatalf("error %v, want status %d", err, tt.wantStatus)
			}
			if tt.wantCancel > 0 {
				waitFor(t, "CANCEL at the carrier", func() bool { _, _, _, _, c := carrier.counts(); return c == tt.wantCancel })
			}
			close(stop)
			rec.wg.Wait()
			if _, _, _, _, c := carrier.counts(); c != tt.wantCancel {
				t.Errorf("%d CANCELs, want %d", c, tt.wantCancel)
			}
			if got := rec.count("cancel"); got != tt.wantCancel {
				t.Errorf("cancel events %d, want %d", got, tt.wantCancel)
			}
		})
	}
}

func TestRSeqInOrder(t *testing.T) {
	tests := []struct {
		last int64
		rseq uint64
		want bool
	}{
		{-1, 1, true}, {-1, 4294967295, true}, // the first may be anything
		{7, 8, true},
		{7, 7, false}, // retransmission
		{7, 9, false}, // a gap: the missing one comes first
		{7, 6, false}, // old
		{7, 0, false},
	}
	for _, tt := range tests {
		if got := rseqInOrder(tt.last, tt.rseq); got != tt.want {
			t.Errorf("last %d, RSeq %d: %v, want %v", tt.last, tt.rseq, got, tt.want)
		}
	}
}

// answerAs answers req 200 with SDP from the fork whose To tag is tag.
func answerAs(tx sip.ServerTransaction, req *sip.Request, tag string) {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", []byte("v=0\r\n"))
	res.To().Params.Remove("tag")
	res.To().Params.Add("tag", tag)
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: tag, Host: req.Recipient.Host, Port: req.Recipient.Port}})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	tx.Respond(res)
}

// tagsOf lists the To tags of requests, in order.
func tagsOf(reqs []*sip.Request) []string {
	var out []string
	for _, r := range reqs {
		tag, _ := r.To().Params.Get("tag")
		out = append(out, tag)
	}
	return out
}

// eventually polls cond for up to 10 s, for goroutines that may not Fatal.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// A forking carrier answers one INVITE twice (RFC 3261 §13.2.2.4): one
// 2xx is the call (sipgo hands UDP messages to goroutines, so either may
// be taken first); the other (another To tag) is acknowledged and hung up
// at once, in its own dialog, its retransmission acknowledged again
// without a second BYE, and the leg reports it (audit, metric). The same
// when both answers come after Plateau gave up.
func TestTrunkLegForkedAnswers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		giveUp bool // the ring timeout passes before the answers
	}{
		{"second 2xx after the call was answered", false},
		{"two 2xx after Plateau gave up", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dialled := make(chan struct{})
			carrier := startFakeCarrier(t, func(f *fakeCarrier, n int, req *sip.Request, tx sip.ServerTransaction) {
				if tt.giveUp {
					<-dialled // Plateau gave up (ring timeout, no provisional: no CANCEL)
				}
				answerAs(tx, req, "forkA")
				answerAs(tx, req, "forkB")
				// The test itself reports what did not come (no Fatal here:
				// this runs on sipgo's goroutine).
				var hungUp string
				if !eventually(func() bool {
					f.mu.Lock()
					defer f.mu.Unlock()
					if len(f.byes) > 0 {
						hungUp, _ = f.byes[0].To().Params.Get("tag")
					}
					return hungUp != ""
				}) {
					return
				}
				answerAs(tx, req, hungUp) // a retransmission of a 2xx already hung up
				eventually(func() bool { f.mu.Lock(); defer f.mu.Unlock(); return countOf(tagsOf(f.acks), hungUp) >= 2 })
			})
			client, contact := plateauSide(t)
			rec := &legRecorder{}
			o := rec.options()
			stop := make(chan struct{})
			o.Stop = stop
			if tt.giveUp {
				o.RingTimeout = 300 * time.Millisecond
			}
			d, err := dialTrunkLeg(context.Background(), client, contact, trunkInvite(carrier.addr), o)
			close(dialled)
			switch {
			case tt.giveUp && err == nil:
				t.Fatal("dial connected after the ring timeout")
			case !tt.giveUp && err != nil:
				t.Fatalf("dial: %v", err)
			}
			waitFor(t, "the other fork reported", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.forks) == 1 })
			if !tt.giveUp {
				taken := toTagOf(d.InviteResponse)
				other := map[string]string{"forkA": "forkB", "forkB": "forkA"}[taken]
				waitFor(t, "BYE to the other fork", func() bool {
					carrier.mu.Lock()
					defer carrier.mu.Unlock()
					return countOf(tagsOf(carrier.byes), other) == 1
				})
				carrier.mu.Lock()
				byTaken := countOf(tagsOf(carrier.byes), taken)
				carrier.mu.Unlock()
				if byTaken != 0 {
					t.Fatalf("the call's own fork %s was hung up", taken)
				}
				if err := d.Bye(context.Background()); err != nil {
					t.Fatalf("bye: %v", err)
				}
			} else {
				waitFor(t, "the late answer hung up", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.late == 1 })
			}
			waitFor(t, "one BYE to each fork, and the retransmission acknowledged", func() bool {
				carrier.mu.Lock()
				defer carrier.mu.Unlock()
				byes, acks := tagsOf(carrier.byes), tagsOf(carrier.acks)
				return countOf(byes, "forkA") == 1 && countOf(byes, "forkB") == 1 &&
					countOf(acks, "forkA")+countOf(acks, "forkB") >= 3
			})
			close(stop)
			rec.wg.Wait()
			carrier.mu.Lock()
			for _, b := range carrier.byes {
				if tag, _ := b.To().Params.Get("tag"); b.Recipient.User != tag {
					t.Errorf("BYE to fork %s went to %s, not that fork's Contact", tag, b.Recipient.String())
				}
			}
			if n := len(carrier.byes); n != 2 {
				t.Errorf("%d BYEs, want 2 (a retransmitted 2xx is not hung up twice)", n)
			}
			carrier.mu.Unlock()
			if got := rec.count("fork_answer"); got != 1 {
				t.Errorf("fork_answer events %d, want 1", got)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if rec.forks[0] != nil {
				t.Errorf("fork BYE error: %v", rec.forks[0])
			}
		})
	}
}
