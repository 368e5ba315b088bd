package sip

import (
	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/store"
)

// handleFeatureCode answers feature codes dialled from a softphone. Live
// monitoring (*1, *2, *3 + extension) is not built yet: the codes are
// refused, audited, and never reach a trunk.
func (b *b2bua) handleFeatureCode(req *sip.Request, tx sip.ServerTransaction, u store.User, offer media.Remote, codec media.Codec) {
	b.refuse(req, tx, u.Extension, req.Recipient.User, "FEATURE_UNAVAILABLE", "feature code not available")
}
