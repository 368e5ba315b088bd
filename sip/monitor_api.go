package sip

import (
	"context"
	"errors"
	"fmt"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/store"
)

// EnableMonitoring configures live monitoring; call it after EnableCalls.
// Without it feature codes still work (no following, no coaching).
func (s *Server) EnableMonitoring(opts MonitorOptions) error {
	b := s.calls
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
func (s *Server) Monitor(ctx context.Context, supervisorExt, operatorExt string, mode media.MonitorMode) (string, error) {
	b := s.calls
	if b == nil {
		return "", ErrNoMonitoring
	}
	u, err := s.users.User(ctx, supervisorExt)
	if err != nil || !mayMonitor(u) {
		b.auditMonitorRefusal(supervisorExt, operatorExt, "api", ErrRoleForbidden.Reason)
		return "", ErrRoleForbidden
	}
	c := b.findCall(operatorExt)
	if c == nil {
		b.auditMonitorRefusal(supervisorExt, operatorExt, "api", ErrNoActiveCall.Reason)
		return "", ErrNoActiveCall
	}
	return b.ringSupervisor(ctx, supervisorExt, operatorExt, mode, c, "api")
}

// ringSupervisor joins c, then rings the supervisor in the background.
func (b *b2bua) ringSupervisor(ctx context.Context, supervisor, operator string, mode media.MonitorMode, c *call, source string) (string, error) {
	contacts := b.s.reg.contacts(supervisor)
	if len(contacts) == 0 {
		b.auditMonitorRefusal(supervisor, operator, source, ErrSupervisorNotRegistered.Reason)
		return "", ErrSupervisorNotRegistered
	}
	m, err := b.newMonitorSession(supervisor, operator, source, mode, c)
	if err != nil {
		var me *MonitorError
		if !errors.As(err, &me) {
			me = &MonitorError{Status: sip.StatusServiceUnavailable, Reason: "NO_MEDIA_PORTS"}
		}
		b.auditMonitorRefusal(supervisor, operator, source, me.Reason)
		return "", me
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		// The ring ends with the operator's call or the ring timeout.
		ringCtx, cancel := context.WithTimeout(c.ctx, b.opts.RingTimeout)
		defer cancel()
		cs, callID, err := b.inviteSupervisor(ringCtx, m, contacts[0])
		if err != nil {
			m.media.Close()
			b.s.audit.Audit(b.s.ctx, "monitor.refused", supervisor, operator, "unanswered", "SUPERVISOR_DID_NOT_ANSWER", source,
				map[string]any{"session": m.id, "detail": err.Error()})
			m.log.Info("supervisor did not answer", "err", err)
			return
		}
		m.register(cs, callID)
		m.started()
	}()
	return m.id, nil
}

// inviteSupervisor places the INVITE to the supervisor's phone.
func (b *b2bua) inviteSupervisor(ctx context.Context, m *monitorSession, contact store.Binding) (*sipgo.DialogClientSession, string, error) {
	var target sip.Uri
	if err := sip.ParseUri(contact.Contact, &target); err != nil {
		return nil, "", err
	}
	req := sip.NewRequest(sip.INVITE, target)
	req.SetBody(m.localSDP(media.DefaultCodecs(), 101))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	name := "Monitor " + m.operator
	from := sip.FromHeader{DisplayName: name, Address: sip.Uri{Scheme: "sip", User: "monitor-" + m.operator, Host: b.s.opts.ExternalAddress}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: m.supervisor, Host: b.s.opts.ExternalAddress}})
	routeViaPath(req, contact) // through the proxy it registered through (path.go)
	if contact.Transport == "tcp" {
		req.SetTransport("TCP")
	}
	cs, err := b.dialogs.WriteInvite(ctx, req)
	if err != nil {
		return nil, "", err
	}
	callID := req.CallID().Value()
	if err := cs.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		return nil, "", err
	}
	answer, codec, err := negotiate(cs.InviteResponse.Body())
	if err == nil {
		err = m.media.SetRemote(answer.Addr, codec, answer.DTMFPT)
	}
	cs.Ack(ctx)
	if err != nil {
		cs.Bye(context.WithoutCancel(ctx))
		return nil, "", fmt.Errorf("supervisor answered with unusable SDP: %w", err)
	}
	return cs, callID, nil
}
