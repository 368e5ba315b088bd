package sip

import (
	"errors"

	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/store"
)

// featureModes maps the feature-code prefix to a monitor mode.
var featureModes = map[string]media.MonitorMode{"*1": media.Listen, "*2": media.Whisper, "*3": media.Barge}

// handleFeatureCode answers feature codes dialled from a softphone:
// *1<ext> listen, *2<ext> whisper, *3<ext> barge into operator ext's call.
// Only supervisors and admins may; every outcome is audited, and no
// feature code ever reaches a trunk.
func (b *b2bua) handleFeatureCode(req *sip.Request, tx sip.ServerTransaction, u store.User, offer media.Remote, codec media.Codec) {
	dialled := req.Recipient.User
	var (
		mode media.MonitorMode
		ok   bool
	)
	if len(dialled) > 2 {
		mode, ok = featureModes[dialled[:2]]
	}
	if !ok {
		b.auditMonitorRefusal(u.Extension, dialled, req.Source(), "UNKNOWN_FEATURE")
		b.respondReason(req, tx, sip.StatusNotFound, "Not Found", "UNKNOWN_FEATURE")
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
		var me *MonitorError
		if !errors.As(err, &me) {
			b.s.log.Warn("monitor media", "err", err)
			me = &MonitorError{Status: sip.StatusServiceUnavailable, Reason: "NO_MEDIA_PORTS"}
		}
		b.refuseMonitor(req, tx, u.Extension, operator, me)
		return
	}
	ds, err := b.dialogs.ReadInvite(req, tx)
	if err != nil {
		m.media.Close()
		return
	}
	if err := m.media.SetRemote(offer.Addr, codec, offer.DTMFPT); err != nil {
		m.media.Close()
		ds.Respond(sip.StatusNotAcceptableHere, "Not Acceptable Here", nil)
		return
	}
	m.register(ds, req.CallID().Value())
	if err := ds.RespondSDP(m.localSDP([]media.Codec{codec}, offer.DTMFPT)); err != nil {
		m.log.Info("supervisor leg not confirmed", "err", err)
		m.abort()
		return
	}
	m.started()
}

// refuseMonitor answers a refused monitor request with its status and
// Reason, and audits it.
func (b *b2bua) refuseMonitor(req *sip.Request, tx sip.ServerTransaction, supervisor, operator string, e *MonitorError) {
	b.auditMonitorRefusal(supervisor, operator, req.Source(), e.Reason)
	b.respondReason(req, tx, e.Status, e.phrase(), e.Reason)
}

func (b *b2bua) auditMonitorRefusal(supervisor, operator, source, reason string) {
	b.s.audit.Audit(b.s.ctx, "monitor.refused", supervisor, operator, "refused", reason, source, nil)
}

func (e *MonitorError) phrase() string {
	switch e.Status {
	case sip.StatusForbidden:
		return "Forbidden"
	case sip.StatusNotFound:
		return "Not Found"
	case sip.StatusBusyHere:
		return "Busy Here"
	case sip.StatusTemporarilyUnavailable:
		return "Temporarily Unavailable"
	}
	return "Service Unavailable"
}
