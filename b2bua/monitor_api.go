package b2bua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
	psip "plateau/sip"
)

// EnableMonitoring configures live monitoring; call it after EnableCalls.
// Without it feature codes still work (no following, no coaching).
func (b *B2BUA) EnableMonitoring(opts MonitorOptions) error {
	if b == nil {
		return errors.New("sip: monitoring needs call control (EnableCalls)")
	}
	b.monitors.mu.Lock()
	defer b.monitors.mu.Unlock()
	if b.monitors.inited {
		return errors.New("sip: monitoring already enabled")
	}
	b.monitors.opts = opts
	b.monitors.init()
	return nil
}

// Monitor rings supervisorExt's registered phone and, when it answers,
// joins operatorExt's call in mode (the web console's POST
// /api/v1/monitor). It checks the request at once (a *MonitorError:
// ErrRoleForbidden, ErrNoActiveCall, ErrSupervisorNotRegistered, ErrMonitorBusy) and
// returns the session id while the phone rings; the answer, a refusal
// and the session's end are audited under that id.
func (b *B2BUA) Monitor(ctx context.Context, supervisorExt, operatorExt string, mode media.MonitorMode) (string, error) {
	if b == nil {
		return "", ErrNoMonitoring
	}
	site := refusalSite{operator: supervisorExt, subject: operatorExt, source: "api"}
	u, err := b.s.User(ctx, supervisorExt)
	if err != nil || !mayMonitor(u) {
		return "", b.refuse(site, ErrRoleForbidden)
	}
	c := b.findCall(operatorExt)
	if c == nil {
		return "", b.refuse(site, ErrNoActiveCall)
	}
	return b.ringSupervisor(ctx, supervisorExt, operatorExt, mode, c, "api")
}

// ringSupervisor joins c, then rings the supervisor in the background.
func (b *B2BUA) ringSupervisor(ctx context.Context, supervisor, operator string, mode media.MonitorMode, c *call, source string) (string, error) {
	site := refusalSite{operator: supervisor, subject: operator, source: source}
	contacts := b.s.Contacts(supervisor)
	if len(contacts) == 0 {
		return "", b.refuse(site, ErrSupervisorNotRegistered)
	}
	m, err := b.newMonitorSession(supervisor, operator, source, mode, c)
	if err != nil {
		var me *Refusal
		if !errors.As(err, &me) {
			me = errMonitorNoPorts
		}
		return "", b.refuse(site, me)
	}
	b.goCall(nil, "ring_supervisor", func() {
		// The ring ends with the operator's call or the ring timeout.
		ringCtx, cancel := context.WithTimeout(c.ctx, b.opts.RingTimeout)
		defer cancel()
		l, err := b.inviteSupervisor(ringCtx, m, contacts[0])
		if err != nil {
			m.media.Close()
			b.s.Audit(b.s.Context(), "monitor.refused", supervisor, operator, "unanswered", "SUPERVISOR_DID_NOT_ANSWER", source,
				map[string]any{"session": m.id, "detail": err.Error()})
			m.log.Info("supervisor did not answer", "err", err)
			return
		}
		m.register(l)
		m.armSessionTimer(l) // the phone's 2xx decides (sessiontimer.go)
		m.started()
	})
	return m.id, nil
}

// inviteSupervisor places the INVITE to the supervisor's phone, through
// the egress gate.
func (b *B2BUA) inviteSupervisor(ctx context.Context, m *monitorSession, contact psip.Binding) (*leg, error) {
	var target sip.Uri
	if err := sip.ParseUri(contact.Contact, &target); err != nil {
		return nil, err
	}
	invite := phoneInvite(target, "Monitor "+m.operator, "monitor-"+m.operator, m.supervisor, b.s.ExternalAddress())
	body := m.localSDP(media.DefaultCodecs(), 101)
	l, cs, targetErr, err := b.ringBinding(ctx, nil, m.supervisor, contact, invite, body, false, nil, sipgo.AnswerOptions{})
	if err != nil {
		return nil, err
	}
	err = targetErr // the answer pointed elsewhere: ACK, then hang up
	answer, codec, nerr := negotiate(cs.InviteResponse.Body())
	if err == nil {
		err = nerr
	}
	if err == nil {
		err = b.monitorMediaAllowed(m, l, answer) // mediaguard.go
	}
	if err == nil {
		err = m.media.SetRemote(answer.Addr, codec, answer.DTMFPT)
	}
	cs.Ack(ctx)
	if err != nil {
		l.hangup(context.WithoutCancel(ctx), m.log)
		return nil, fmt.Errorf("supervisor answered with unusable SDP: %w", err)
	}
	return l, nil
}

// MonitorInfo is a monitoring session in progress, for the wallboard:
// who listens to whom, in which mode, since when.
type MonitorInfo struct {
	ID         string    `json:"id"`
	Supervisor string    `json:"supervisor"`
	Operator   string    `json:"operator"`
	Mode       string    `json:"mode"` // listen, whisper, barge
	Since      time.Time `json:"since"`
}

// MonitorSessions lists the monitoring sessions in progress (answered by
// the supervisor's phone).
func (b *B2BUA) MonitorSessions() []MonitorInfo {
	if b == nil {
		return nil
	}
	var out []MonitorInfo
	for _, m := range b.monitors.all() {
		out = append(out, MonitorInfo{ID: m.id, Supervisor: m.supervisor, Operator: m.operator, Mode: m.Mode().String(), Since: m.start})
	}
	return out
}

// SetMonitorMode switches supervisorExt's session on operatorExt to mode
// (the wallboard's buttons, as DTMF 1/2/3 on the phone do); audited as
// monitor.mode with via "web". It returns the session id, or
// ErrNoActiveCall (a *Refusal) when that supervisor has no session on
// that operator.
func (b *B2BUA) SetMonitorMode(supervisorExt, operatorExt string, mode media.MonitorMode) (string, error) {
	if b == nil {
		return "", ErrNoMonitoring
	}
	for _, m := range b.monitors.all() {
		if m.supervisor == supervisorExt && m.operator == operatorExt {
			m.setMode(mode, "web")
			return m.id, nil
		}
	}
	return "", ErrNoActiveCall
}
