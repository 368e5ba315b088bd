package b2bua

import (
	"errors"

	"github.com/emiago/sipgo/sip"

	"plateau/media"
	psip "plateau/sip"
)

// featureModes maps the feature-code prefix to a monitor mode.
var featureModes = map[string]media.MonitorMode{"*1": media.Listen, "*2": media.Whisper, "*3": media.Barge}

// handleFeatureCode answers feature codes dialled from a softphone:
// *1<ext> listen, *2<ext> whisper, *3<ext> barge into operator ext's call.
// Only supervisors and admins may; every outcome is audited, and no
// feature code ever reaches a trunk.
func (b *B2BUA) handleFeatureCode(req *sip.Request, tx sip.ServerTransaction, u psip.Account, offer media.Remote, codec media.Codec) {
	dialled := req.Recipient.User
	var (
		mode media.MonitorMode
		ok   bool
	)
	if len(dialled) > 2 {
		mode, ok = featureModes[dialled[:2]]
	}
	if !ok {
		b.refuseMonitor(req, tx, u.Extension, dialled, &Refusal{Status: sip.StatusNotFound, Reason: ReasonUnknownFeature, Rule: ruleMonitor, Detail: "no feature code " + dialled})
		return
	}
	operator := dialled[2:]
	if !mayMonitor(u) {
		b.refuseMonitor(req, tx, u.Extension, operator, ErrRoleForbidden)
		return
	}
	c := b.findCall(operator)
	if c == nil {
		b.refuseMonitor(req, tx, u.Extension, operator, ErrNoActiveCall)
		return
	}
	m, err := b.newMonitorSession(u.Extension, operator, req.Source(), mode, c)
	if err != nil {
		var me *Refusal
		if !errors.As(err, &me) {
			b.s.Log().Warn("monitor media", "err", err)
			me = errMonitorNoPorts
		}
		b.refuseMonitor(req, tx, u.Extension, operator, me)
		return
	}
	ds, err := b.dialogsFor(req).ReadInvite(req, tx)
	if err != nil {
		m.media.Close()
		return
	}
	if err := m.media.SetRemote(offer.Addr, codec, offer.DTMFPT); err != nil {
		m.media.Close()
		ds.Respond(sip.StatusNotAcceptableHere, "Not Acceptable Here", nil)
		return
	}
	m.register(uasLeg(media.LegOperator, ds, b.s.PeerOf(req)))
	m.leg.setAnswered()
	if err := ds.RespondSDP(m.localSDP([]media.Codec{codec}, offer.DTMFPT)); err != nil {
		m.log.Info("supervisor leg not confirmed", "err", err)
		m.abort()
		return
	}
	m.started()
}

// refuseMonitor answers a refused monitor request with its status and
// Reason, and audits it (monitor.refused), through refuse.
func (b *B2BUA) refuseMonitor(req *sip.Request, tx sip.ServerTransaction, supervisor, operator string, e *Refusal) {
	b.refuse(refusalSite{req: req, tx: tx, operator: supervisor, subject: operator}, e)
}
