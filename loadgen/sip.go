package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
)

// ua is one lean SIP user agent for every simulated operator: one UDP
// socket, one sipgo client and server. Each operator registers its own
// binding (sip:EXT@this socket) and authenticates its own INVITE.
type ua struct {
	server  string // host:port
	host    string
	port    int
	local   netip.AddrPort
	conn    net.PacketConn
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	dialogs *sipgo.DialogUA

	mu    sync.Mutex
	calls map[string]*leg // by Call-ID
	wg    sync.WaitGroup
}

// leg is one placed call.
type leg struct {
	user     User
	sess     *sipgo.DialogClientSession
	answered time.Time
	ended    time.Time
	byRemote bool
}

func newUA(server string, bind netip.Addr) (*ua, error) {
	host, ps, err := net.SplitHostPort(server)
	if err != nil {
		return nil, fmt.Errorf("server %q is not host:port", server)
	}
	port, _ := strconv.Atoi(ps)
	c, err := net.ListenPacket("udp", netip.AddrPortFrom(bind, 0).String())
	if err != nil {
		return nil, err
	}
	if uc, ok := c.(*net.UDPConn); ok {
		uc.SetReadBuffer(4 << 20)
		uc.SetWriteBuffer(4 << 20)
	}
	a := c.LocalAddr().(*net.UDPAddr).AddrPort()
	u := &ua{server: server, host: host, port: port, conn: c, calls: map[string]*leg{},
		local: netip.AddrPortFrom(a.Addr().Unmap(), a.Port())}
	lh := u.local.Addr().String()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if u.ua, err = sipgo.NewUA(sipgo.WithUserAgent("plateau-loadgen"), sipgo.WithUserAgentHostname(lh)); err != nil {
		c.Close()
		return nil, err
	}
	u.srv, _ = sipgo.NewServer(u.ua, sipgo.WithServerLogger(quiet))
	u.client, _ = sipgo.NewClient(u.ua, sipgo.WithClientHostname(lh), sipgo.WithClientLogger(quiet),
		sipgo.WithClientPort(int(u.local.Port())), sipgo.WithClientConnectionAddr(u.local.String()))
	u.dialogs = &sipgo.DialogUA{Client: u.client, ContactHDR: u.contact("loadgen")}
	u.srv.OnBye(u.onBye)
	u.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	u.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	u.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		// re-INVITEs and new calls are out of this benchmark's scope.
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
	})
	u.wg.Add(1)
	go func() { defer u.wg.Done(); u.srv.ServeUDP(c) }()
	// Wait until the transport holds the socket, so requests reuse it.
	for range 200 {
		if tc, _ := u.srv.TransportLayer().GetConnection("udp", u.local.String()); tc != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return u, nil
}

func (u *ua) contact(user string) sip.ContactHeader {
	return sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: u.local.Addr().String(), Port: int(u.local.Port())}}
}

func (u *ua) uri(user string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: user, Host: u.host, Port: u.port}
}

// register binds user's contact for expires, answering the digest challenge.
func (u *ua) register(ctx context.Context, user User, expires time.Duration) error {
	aor := sip.Uri{Scheme: "sip", User: user.Ext, Host: u.host}
	req := sip.NewRequest(sip.REGISTER, u.uri(""))
	from := &sip.FromHeader{Address: aor, Params: sip.HeaderParams{}}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	ct := u.contact(user.Ext)
	req.AppendHeader(&ct)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	res, err := u.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("register %s: %w", user.Ext, err)
	}
	if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
		res, err = u.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user.Ext, Password: user.Password})
		if err != nil {
			return fmt.Errorf("register %s: %w", user.Ext, err)
		}
	}
	if !res.IsSuccess() {
		return fmt.Errorf("register %s: %d %s", user.Ext, res.StatusCode, res.Reason)
	}
	return nil
}

// dial places a call from user to number offering PCMU at rtp and returns
// the far end's RTP address once answered and acknowledged. An empty
// password places the call unauthenticated (the direct path to pstn-sim).
func (u *ua) dial(ctx context.Context, user User, number string, rtp netip.AddrPort) (*leg, netip.AddrPort, error) {
	offer, err := media.BuildSDP(media.Local{
		Addr: rtp.Addr(), Port: int(rtp.Port()), Codecs: []media.Codec{media.PCMU.Codec()},
		Direction: media.SendRecv, SessionID: uint64(rtp.Port()), Version: 1,
	})
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	req := sip.NewRequest(sip.INVITE, u.uri(number))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user.Ext, Host: u.host}, Params: sip.HeaderParams{}}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: number, Host: u.host}})
	ct := u.contact(user.Ext)
	req.AppendHeader(&ct)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	sess, err := u.dialogs.WriteInvite(ctx, req)
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("invite %s: %w", user.Ext, err)
	}
	l := &leg{user: user, sess: sess}
	id := req.CallID().Value()
	u.mu.Lock()
	u.calls[id] = l
	u.mu.Unlock()
	fail := func(err error) (*leg, netip.AddrPort, error) {
		sess.Close()
		u.forget(id)
		return nil, netip.AddrPort{}, err
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user.Ext, Password: user.Password}); err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			reason := ""
			if h := de.Res.GetHeader("Reason"); h != nil {
				reason = " (" + h.Value() + ")"
			}
			return fail(fmt.Errorf("invite %s: %d %s%s", user.Ext, de.Res.StatusCode, de.Res.Reason, reason))
		}
		return fail(fmt.Errorf("invite %s: %w", user.Ext, err))
	}
	ans, err := media.ParseSDP(sess.InviteResponse.Body())
	if err != nil {
		sess.Ack(ctx)
		sess.Bye(ctx)
		return fail(fmt.Errorf("invite %s: answer SDP: %w", user.Ext, err))
	}
	if err := sess.Ack(ctx); err != nil {
		return fail(fmt.Errorf("invite %s: ack: %w", user.Ext, err))
	}
	l.answered = time.Now()
	return l, ans.Addr, nil
}

// hangup sends BYE unless the far end already did.
func (u *ua) hangup(ctx context.Context, l *leg) error {
	id := l.sess.InviteRequest.CallID().Value()
	defer u.forget(id)
	u.mu.Lock()
	remote := l.byRemote
	if l.ended.IsZero() {
		l.ended = time.Now()
	}
	u.mu.Unlock()
	defer l.sess.Close()
	if remote {
		return nil
	}
	return l.sess.Bye(ctx)
}

func (u *ua) forget(id string) {
	u.mu.Lock()
	delete(u.calls, id)
	u.mu.Unlock()
}

func (u *ua) onBye(req *sip.Request, tx sip.ServerTransaction) {
	u.mu.Lock()
	l := u.calls[req.CallID().Value()]
	if l != nil {
		l.byRemote = true
		if l.ended.IsZero() {
			l.ended = time.Now()
		}
	}
	u.mu.Unlock()
	if l == nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	l.sess.ReadBye(req, tx)
}

// remoteHangups counts calls the far end ended.
func (u *ua) remoteHangups(legs []*leg) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, l := range legs {
		if l != nil && l.byRemote {
			n++
		}
	}
	return n
}

func (u *ua) Close() {
	u.conn.Close()
	u.ua.Close()
	u.wg.Wait()
}
