package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
)

// Call places a call from the PSTN toward target (host:port, UDP): an
// inbound call for Plateau, from the number from to the number number. The
// answered call echoes or plays per the config and lasts until the far end
// hangs up, hold elapses (then the PSTN sends BYE) or ctx ends. It must be
// called while Serve runs. The returned stats describe the call.
func (p *PSTN) Call(ctx context.Context, target, number, from string, hold time.Duration) (CallStats, error) {
	return p.CallOver(ctx, "UDP", target, number, from, hold)
}

// CallOver is Call over transport: "UDP", "TCP", or "TLS" toward
// Plateau's TLS listener (an SDES carrier's keys travel only over TLS).
func (p *PSTN) CallOver(ctx context.Context, transport, target, number, from string, hold time.Duration) (CallStats, error) {
	transport = strings.ToUpper(transport)
	select {
	case <-p.serving:
	case <-ctx.Done():
		return CallStats{}, ctx.Err()
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return CallStats{}, fmt.Errorf("call: target %q is not host:port", target)
	}
	rport, _ := strconv.Atoi(port)
	host = uriHost(host)
	recipient := sip.Uri{Scheme: "sip", User: number, Host: host, Port: rport}
	if transport != "UDP" {
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", strings.ToLower(transport))
	}
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetTransport(transport)
	id := sip.CallIDHeader(sip.GenerateTagN(24))
	fh := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: uriHost(p.addr.Addr().String())}, Params: sip.HeaderParams{}}
	fh.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(fh)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: number, Host: host}})
	req.AppendHeader(&id)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))

	st := p.stat(string(id), func() *CallStats {
		return &CallStats{Direction: "out", Transport: transport, Number: number, From: from, Start: p.now(), Auth: "none", Action: ActionRing}
	})
	log := p.log.With("call", shortID(string(id)), "number", number, "from", from, "direction", "out")
	c := &pstnCall{p: p, id: string(id), log: log, st: st}
	ep, err := media.NewEndpoint(p.pool, p.cfg.Media.ip, media.PCMU.Codec())
	if err != nil {
		return CallStats{}, fmt.Errorf("call: %w", err)
	}
	c.ep, c.codec, c.dtmfPT, c.sessID, c.version = ep, media.PCMU.Codec(), 101, rand.Uint64()>>1, 1
	la := ep.LocalAddr()
	key, err := p.offerKey() // RTP/SAVP with srtp optional or required (sdes.go)
	if err != nil {
		ep.Close()
		return CallStats{}, err
	}
	var crypto []string
	if key != nil {
		crypto = []string{key.String()}
	}
	offer, err := media.BuildSDP(media.Local{Addr: la.Addr(), Port: int(la.Port()), Codecs: media.DefaultCodecs(), DTMFPT: 101, SessionID: c.sessID, Version: 1, Crypto: crypto})
	if err != nil {
		ep.Close()
		return CallStats{}, err
	}
	req.SetBody(offer)

	p.mu.Lock()
	p.calls[string(id)] = c
	p.mu.Unlock()
	p.wg.Add(1)
	defer func() {
		c.stopMedia()
		if c.cli != nil {
			c.cli.Close()
		}
		p.mu.Lock()
		delete(p.calls, string(id))
		st.End = p.now()
		p.mu.Unlock()
		p.wg.Done()
	}()

	log.Info("→ INVITE", "target", target)
	dua := p.dialogFor(transport)
	if transport != "UDP" {
		// TCP and TLS connections leave from the simulator's own address
		// (a trunk's allowed source), on any port: binding the listener's
		// port would fail with "address already in use".
		cli, err := sipgo.NewClient(p.ua, sipgo.WithClientHostname(uriHost(p.addr.Addr().String())),
			sipgo.WithClientConnectionAddr(net.JoinHostPort(p.addr.Addr().String(), "0")), sipgo.WithClientLogger(p.log))
		if err != nil {
			return CallStats{}, fmt.Errorf("call: %w", err)
		}
		defer cli.Close()
		dua = &sipgo.DialogUA{Client: cli, ContactHDR: dua.ContactHDR, RewriteContact: dua.RewriteContact}
	}
	sess, err := dua.WriteInvite(ctx, req)
	if err != nil {
		return *st, fmt.Errorf("call %s: %w", number, err)
	}
	c.cli = sess
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		log.Info(fmt.Sprintf("← %d %s", res.StatusCode, res.Reason))
		if !res.IsProvisional() {
			p.update(func() { st.Status = int(res.StatusCode) })
		}
		return nil
	}})
	if err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return p.snapshot(st), fmt.Errorf("call %s: %w", number, responseError(de.Res))
		}
		return p.snapshot(st), fmt.Errorf("call %s: %w", number, err)
	}
	ans, codec, keys, err := readAnswer(sess.InviteResponse.Body(), key)
	log.Info("→ ACK")
	sess.Ack(ctx)
	if err != nil {
		c.hangup()
		return p.snapshot(st), fmt.Errorf("call %s: answer SDP: %w", number, err)
	}
	ep.SetCodec(codec)
	c.mu.Lock()
	c.codec = codec
	c.mu.Unlock()
	c.setKeys(keys)
	c.applyRemote(ans)
	p.update(func() { st.RTPTo = ans.Addr.String() })
	p.update(func() { st.Answered = true })
	c.startMedia(p.ctx)
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-sess.Context().Done():
		p.update(func() { st.HangupBy = "remote" })
	case <-t.C:
		c.hangup()
	case <-ctx.Done():
		c.hangup()
	case <-p.ctx.Done():
		c.hangup()
	}
	c.updateRTP()
	return p.snapshot(st), nil
}

func (p *PSTN) snapshot(st *CallStats) CallStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return *st
}
