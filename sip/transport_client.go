package sip

import (
	"context"

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
type clientBinding struct{ ua *sipgo.UserAgent }

// Request is sipgo's ClientTransactionRequester: the client calls it for
// every transaction, and for ACKs (which have none).
func (c clientBinding) Request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	if sip.IsReliable(req.Transport()) {
		req.Laddr = sip.Addr{}
	}
	if req.IsAck() {
		return nil, c.ua.TransportLayer().WriteMsg(req)
	}
	return c.ua.TransactionLayer().Request(ctx, req)
}
