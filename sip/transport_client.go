package sip

import (
	"context"
	"errors"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// clientBinding sends Plateau's own requests. The client is built with
// sipgo.WithClientConnectionAddr(listen) so that UDP requests leave from
// the listening socket (the trunk sees the port it knows, and answers come
// back where the dialog lives). Over TCP the same local address is wrong
// twice: dialling from the listener's port fails (`bind: address already
// in use`), and sipgo's TCP pool files every accepted connection under the
// listener's address too, so a lookup by it may return some phone's
// connection. For reliable transports the local address is cleared, and
// sipgo reuses a connection to the destination or dials a new one from an
// ephemeral port.
//
// Every request also gets its transport here (transport_route.go), and a
// TLS one its connection (transport_tls_client.go); a new INVITE is sent
// only with the egress gate's mark (ThroughEgressGate).
type clientBinding struct{ s *Server }

// gateMark is the context value of ThroughEgressGate.
type gateMark struct{}

// ThroughEgressGate marks the context of an INVITE the egress gate
// (package b2bua, gate.go) decided to send. Every request Plateau sends
// passes clientBinding.Request, which refuses a new INVITE (no To tag)
// without this mark: a call path that skips the gate fails closed at run
// time, not only in review. Only gate.go calls it (b2bua's
// TestEverySendPathIsReviewed checks).
func ThroughEgressGate(ctx context.Context) context.Context {
	return context.WithValue(ctx, gateMark{}, true)
}

// ErrUngated is a new INVITE that did not come through the egress gate.
var ErrUngated = errors.New("sip: INVITE not sent through the egress gate")

// Request is sipgo's ClientTransactionRequester: the client calls it for
// every transaction, and for ACKs (which have none).
func (c clientBinding) Request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	if req.Method == sip.INVITE && !inDialog(req) && (ctx == nil || ctx.Value(gateMark{}) == nil) {
		c.s.metrics.ungatedInvites.Inc()
		c.s.log.Error("INVITE outside the egress gate refused", "to", req.Recipient.String())
		c.s.audit.Audit(c.s.ctx, "egress.refused", "", req.Recipient.String(), "refused", "NOT_THROUGH_GATE", "",
			map[string]any{"detail": "a new INVITE did not come through the egress gate"})
		return nil, ErrUngated
	}
	if err := c.s.chooseTransport(req); err != nil {
		return nil, err
	}
	if sip.IsReliable(req.Transport()) {
		req.Laddr = sip.Addr{}
	}
	if req.Transport() == "TLS" {
		if ctx == nil || ctx == context.TODO() {
			ctx = c.s.ctx
		}
		if err := c.s.routeTLS(ctx, req); err != nil {
			c.s.log.Warn("sip request not sent: TLS", "method", req.Method, "err", err)
			return nil, err
		}
	}
	if req.IsAck() {
		return nil, c.s.ua.TransportLayer().WriteMsg(req)
	}
	return c.s.ua.TransactionLayer().Request(ctx, req)
}

var _ sipgo.ClientTransactionRequester = clientBinding{}
