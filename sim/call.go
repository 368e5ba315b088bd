package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
)

// Call is one call placed by a Phone.
type Call struct {
	p      *Phone
	sess   *sipgo.DialogClientSession
	ep     *media.Endpoint
	number string

	mu           sync.Mutex
	codec        media.Codec
	sessID       uint64
	version      uint64
	sent         int
	status       int
	reason       string
	answered     bool
	early        bool
	remoteHangup bool
	closed       bool
}

// CallResult is what a Phone's call did.
type CallResult struct {
	Number       string
	Answered     bool
	Status       int    // final status (200 when answered)
	Reason       string // Reason header text of a failure
	Early        bool   // early media SDP was received (18x)
	Codec        media.Codec
	Sent         int // RTP packets sent
	Received     int // RTP packets received (audio and events)
	RemoteHangup bool
}

// Stats returns the call's counters so far.
func (c *Call) Stats() CallResult {
	recv := c.endpoint().Received()
	c.mu.Lock()
	defer c.mu.Unlock()
	return CallResult{
		Number: c.number, Answered: c.answered, Status: c.status, Reason: c.reason, Early: c.early,
		Codec: c.codec, Sent: c.sent, Received: recv, RemoteHangup: c.remoteHangup,
	}
}

// Done is closed when the dialog ends (BYE either way).
func (c *Call) Done() <-chan struct{} { return c.sess.Context().Done() }

// Endpoint gives access to the call's RTP endpoint (captured audio).
func (c *Call) Endpoint() *media.Endpoint { return c.endpoint() }

func (c *Call) endpoint() *media.Endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ep
}

// Play sends pcm as RTP, paced at 20 ms, until it ends, ctx ends or the far
// end hangs up. It counts what it sent.
func (c *Call) Play(ctx context.Context, pcm []int16) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.sess.Context(), cancel)
	defer stop()
	const chunk = 10 * media.FrameSamples
	for off := 0; off < len(pcm); off += chunk {
		end := min(off+chunk, len(pcm))
		ep := c.endpoint()
		if err := ep.Play(ctx, pcm[off:end]); err != nil {
			if c.sess.Context().Err() != nil {
				return nil // the far end hung up
			}
			if errors.Is(err, media.ErrClosed) && c.endpoint() != ep { // MoveMedia
				continue
			}
			if errors.Is(err, media.ErrNoRemote) { // on hold: nothing to send to
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(media.FrameSamples * time.Second / media.SampleRate):
				}
				continue
			}
			return err
		}
		c.mu.Lock()
		c.sent += (end - off + media.FrameSamples - 1) / media.FrameSamples
		c.mu.Unlock()
	}
	return nil
}

// Hangup sends BYE unless the far end already hung up, then closes the
// RTP endpoint. Safe to call twice.
func (c *Call) Hangup(ctx context.Context) error {
	c.mu.Lock()
	remote, answered, closed := c.remoteHangup, c.answered, c.closed
	c.mu.Unlock()
	defer c.close()
	if remote || closed || !answered {
		return nil
	}
	c.p.step("→ BYE")
	if err := c.sess.Bye(ctx); err != nil {
		c.p.step("BYE failed: %v", err)
		return err
	}
	c.p.step("← 200 OK")
	return nil
}

func (c *Call) close() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return
	}
	c.endpoint().Close()
	c.sess.Close()
	c.p.mu.Lock()
	delete(c.p.calls, c.sess.InviteRequest.CallID().Value())
	c.p.mu.Unlock()
}

func (c *Call) setFinal(e *StatusError) {
	c.mu.Lock()
	c.status, c.reason = e.Status, e.Reason
	c.mu.Unlock()
}

// applyAnswer points RTP at the far end's SDP and adopts its codec.
func (c *Call) applyAnswer(r media.Remote) {
	if codec, err := media.Negotiate(r, media.DefaultCodecs()); err == nil {
		c.endpoint().SetCodec(codec)
		c.mu.Lock()
		c.codec = codec
		c.mu.Unlock()
	}
	if r.OnHold() {
		c.endpoint().SetRemote(netip.AddrPort{})
	} else {
		c.endpoint().SetRemote(r.Addr)
	}
}

func (c *Call) sdp(dir media.Direction) ([]byte, error) {
	la := c.endpoint().LocalAddr()
	c.mu.Lock()
	defer c.mu.Unlock()
	return media.BuildSDP(media.Local{
		Addr: la.Addr(), Port: int(la.Port()), Codecs: media.DefaultCodecs(), DTMFPT: 101,
		Direction: dir, SessionID: c.sessID, Version: c.version,
	})
}

// Hold puts the far end on hold: re-INVITE with a=sendonly.
func (c *Call) Hold(ctx context.Context) error { return c.reinvite(ctx, media.SendOnly, false) }

// Resume takes the call off hold: re-INVITE with a=sendrecv.
func (c *Call) Resume(ctx context.Context) error { return c.reinvite(ctx, media.SendRecv, false) }

// MoveMedia rebinds the call's RTP on a new port and announces it with a
// re-INVITE, as a phone changing network does: the far end must follow.
func (c *Call) MoveMedia(ctx context.Context) error { return c.reinvite(ctx, media.SendRecv, true) }

func (c *Call) reinvite(ctx context.Context, dir media.Direction, move bool) error {
	c.mu.Lock()
	answered, closed := c.answered, c.closed
	c.mu.Unlock()
	if !answered || closed {
		return errors.New("re-INVITE: call not up")
	}
	if move {
		c.mu.Lock()
		codec := c.codec
		c.mu.Unlock()
		ep, err := media.NewEndpoint(nil, c.p.cfg.MediaIP, codec)
		if err != nil {
			return fmt.Errorf("re-INVITE: %w", err)
		}
		ep.SetRemote(c.endpoint().Last().From)
		c.mu.Lock()
		old := c.ep
		c.ep = ep
		c.mu.Unlock()
		old.Close()
	}
	c.mu.Lock()
	c.version++
	c.mu.Unlock()
	body, err := c.sdp(dir)
	if err != nil {
		return err
	}
	target := c.sess.InviteRequest.Recipient
	if ct := c.sess.InviteResponse.Contact(); ct != nil {
		target = ct.Address
	}
	req := sip.NewRequest(sip.INVITE, target)
	req.SetTransport(c.sess.InviteRequest.Transport())
	req.AppendHeader(&c.p.contact)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	c.p.step("→ re-INVITE (%s)", dir)
	res, err := c.sess.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("re-INVITE: %w", err)
	}
	c.p.stepResponse(res)
	if !res.IsSuccess() {
		return fmt.Errorf("re-INVITE: %w", responseError(res))
	}
	if r, err := media.ParseSDP(res.Body()); err == nil {
		c.applyAnswer(r)
	}
	c.p.step("→ ACK")
	return c.sess.WriteAck(ctx, sip.NewRequest(sip.ACK, target))
}

// CallID is the Call-ID of the call's INVITE: Plateau indexes the call's
// recording under it (the operator leg's Call-ID).
func (c *Call) CallID() string {
	if id := c.sess.InviteRequest.CallID(); id != nil {
		return id.Value()
	}
	return ""
}
