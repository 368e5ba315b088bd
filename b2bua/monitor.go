package b2bua

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"plateau/media"
	psip "plateau/sip"
)

// Errors of live monitoring; each knows its SIP answer (a Refusal whose
// rule is "monitor": audited as monitor.refused).
var (
	ErrRoleForbidden           = &Refusal{Status: sip.StatusForbidden, Reason: "ROLE_FORBIDDEN", Rule: ruleMonitor}
	ErrNoActiveCall            = &Refusal{Status: sip.StatusNotFound, Reason: "NO_ACTIVE_CALL", Rule: ruleMonitor}
	ErrMonitorBusy             = &Refusal{Status: sip.StatusBusyHere, Reason: "MONITOR_BUSY", Rule: ruleMonitor}
	ErrSupervisorNotRegistered = &Refusal{Status: sip.StatusTemporarilyUnavailable, Reason: "SUPERVISOR_NOT_REGISTERED", Rule: ruleMonitor}
	ErrNoMonitoring            = &Refusal{Status: sip.StatusServiceUnavailable, Reason: "MONITORING_UNAVAILABLE", Rule: ruleMonitor}
	errMonitorNoPorts          = &Refusal{Status: sip.StatusServiceUnavailable, Reason: ReasonNoMediaPorts, Rule: ruleMonitor}
)

// MonitorOptions configure live monitoring (see EnableMonitoring).
type MonitorOptions struct {
	// FollowNextCall keeps a supervisor's leg up when the operator's call
	// ends, and joins the operator's next call.
	FollowNextCall bool
	// Training decides which calls are coached automatically; nil: none.
	Training Training
	// Registerer exports plateau_monitor_sessions_active.
	Registerer prometheus.Registerer
}

// Training is the coaching state of operators.
type Training interface {
	// CountTrainingCall counts one answered call of ext and reports
	// whether it must be offered to a supervisor (ext is in training and
	// within its coached calls).
	CountTrainingCall(ctx context.Context, ext string) (bool, error)
}

// monitorTable is the b2bua's live monitor sessions, by the Call-ID of
// the supervisor's dialog. Its zero value works (feature codes without
// EnableMonitoring: no follow, no coaching, an unexported gauge).
type monitorTable struct {
	mu     sync.Mutex
	opts   MonitorOptions
	byID   map[string]*monitorSession // by supervisor Call-ID
	gauge  prometheus.Gauge
	inited bool
}

func (t *monitorTable) init() {
	if t.inited {
		return
	}
	t.inited = true
	t.byID = map[string]*monitorSession{}
	t.gauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "plateau_monitor_sessions_active", Help: "Supervisor monitor sessions (listen, whisper, barge) in progress.",
	})
	if t.opts.Registerer != nil {
		t.opts.Registerer.MustRegister(t.gauge)
	}
}

func (t *monitorTable) add(callID string, m *monitorSession) {
	t.mu.Lock()
	t.init()
	t.byID[callID] = m
	t.gauge.Inc()
	t.mu.Unlock()
}

func (t *monitorTable) remove(callID string) {
	t.mu.Lock()
	if _, ok := t.byID[callID]; ok {
		delete(t.byID, callID)
		t.gauge.Dec()
	}
	t.mu.Unlock()
}

func (t *monitorTable) get(callID string) *monitorSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byID[callID]
}

func (t *monitorTable) all() []*monitorSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*monitorSession, 0, len(t.byID))
	for _, m := range t.byID {
		out = append(out, m)
	}
	return out
}

func (t *monitorTable) options() MonitorOptions {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.opts
}

// monitorSession is one supervisor's leg on an operator's calls.
type monitorSession struct {
	b          *B2BUA
	id         string
	supervisor string
	operator   string
	callID     string // the supervisor's dialog
	source     string
	start      time.Time
	media      *media.Monitor
	log        *slog.Logger
	follow     bool

	mu      sync.Mutex
	leg     *leg
	mode    media.MonitorMode
	cur     *call
	modeAt  time.Time
	endOnce sync.Once
	next    chan *call // the operator's next call, when following
	done    chan struct{}
	// timer is the supervisor leg's session timer (sessiontimer.go),
	// stopped by end.
	timer     *sessionTimer
	timerStop context.CancelFunc
}

// findCall returns the operator's answered call in progress, if any.
func (b *B2BUA) findCall(operator string) *call {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.calls {
		if c.operator != operator || c.ctx.Err() != nil {
			continue
		}
		c.mu.Lock()
		ok := c.relay != nil && !c.answered.IsZero()
		c.mu.Unlock()
		if ok {
			return c
		}
	}
	return nil
}

// mayMonitor says whether u may monitor others.
func mayMonitor(u psip.Account) bool {
	return u.Active && (u.Role == psip.RoleSupervisor || u.Role == psip.RoleAdmin)
}

// newMonitorSession allocates the supervisor's media leg and joins c.
func (b *B2BUA) newMonitorSession(supervisor, operator, source string, mode media.MonitorMode, c *call) (*monitorSession, error) {
	opts := b.monitors.options()
	m := &monitorSession{
		b: b, id: uuid.NewString(), supervisor: supervisor, operator: operator, source: source,
		start: b.s.Now(), mode: mode, modeAt: b.s.Now(), follow: opts.FollowNextCall,
		next: make(chan *call, 1), done: make(chan struct{}),
	}
	m.log = b.s.Log().With("monitor", m.id, "supervisor", supervisor, "operator", operator)
	mon, err := media.NewMonitor(b.opts.Ports, b.opts.MediaIP, mode, media.WithDTMF(m.dtmf), media.WithMonitorLogger(m.log))
	if err != nil {
		return nil, err
	}
	m.media = mon
	if err := m.join(c); err != nil {
		mon.Close()
		return nil, err
	}
	return m, nil
}

// join attaches the monitor to c's relay.
func (m *monitorSession) join(c *call) error {
	c.mu.Lock()
	relay := c.relay
	c.mu.Unlock()
	if relay == nil {
		return ErrNoActiveCall
	}
	if err := m.media.Attach(relay); err != nil {
		if errors.Is(err, media.ErrMonitorBusy) {
			return ErrMonitorBusy
		}
		return ErrNoActiveCall
	}
	m.mu.Lock()
	m.cur = c
	m.mu.Unlock()
	return nil
}

// localSDP is our SDP toward the supervisor's phone.
func (m *monitorSession) localSDP(codecs []media.Codec, dtmf uint8) []byte {
	now := uint64(m.start.UnixNano())
	body, err := media.BuildSDP(media.Local{
		Addr: m.b.opts.MediaIP, Port: m.media.LocalPort(), Codecs: codecs, DTMFPT: dtmf,
		Direction: media.SendRecv, SessionID: now, Version: uint64(m.b.s.Now().UnixNano()),
	})
	if err != nil {
		m.log.Error("build sdp", "err", err)
	}
	return body
}

// register makes the supervisor's dialog known to the in-dialog handlers
// (the ACK of our 200 must find it).
func (m *monitorSession) register(l *leg) {
	m.mu.Lock()
	m.leg, m.callID = l, l.callID
	m.mu.Unlock()
	m.b.monitors.add(l.callID, m)
}

// abort undoes register for a session that never started.
func (m *monitorSession) abort() {
	m.b.monitors.remove(m.callID)
	m.media.Close()
}

// started audits an answered, registered session and supervises it.
func (m *monitorSession) started() {
	m.mu.Lock()
	c := m.cur
	m.mu.Unlock()
	b := m.b
	b.s.Audit(b.s.Context(), "monitor.start", m.supervisor, m.operator, "started", m.Mode().String(), m.source,
		map[string]any{"session": m.id, "mode": m.Mode().String(), "call_id": c.id})
	m.log.Info("monitor started", "mode", m.Mode())
	b.goCall(nil, "monitor", m.supervise)
}

// Mode is the session's current mode.
func (m *monitorSession) Mode() media.MonitorMode {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mode
}

// setMode switches the mode (DTMF 1/2/3, SIP INFO) and audits it.
func (m *monitorSession) setMode(mode media.MonitorMode, how string) {
	m.mu.Lock()
	old := m.mode
	now := m.b.s.Now()
	held := now.Sub(m.modeAt)
	m.mode, m.modeAt = mode, now
	m.mu.Unlock()
	if old == mode {
		return
	}
	m.media.SetMode(mode)
	m.b.s.Audit(m.b.s.Context(), "monitor.mode", m.supervisor, m.operator, "changed", mode.String(), m.source,
		map[string]any{"session": m.id, "from": old.String(), "mode": mode.String(), "via": how, "previous_ms": held.Milliseconds()})
	m.log.Info("monitor mode", "mode", mode, "via", how)
}

func (m *monitorSession) dtmf(digit byte) {
	switch digit {
	case '1':
		m.setMode(media.Listen, "dtmf")
	case '2':
		m.setMode(media.Whisper, "dtmf")
	case '3':
		m.setMode(media.Barge, "dtmf")
	}
}

// supervise ends the session with the supervisor's hang-up, the
// operator's call (or, when following, waits for the next one) or
// shutdown.
func (m *monitorSession) supervise() {
	m.mu.Lock()
	leg, c := m.leg, m.cur
	m.mu.Unlock()
	for {
		var callDone <-chan struct{}
		if c != nil {
			callDone = c.ctx.Done()
		}
		select {
		case <-leg.d.Context().Done():
			m.end("supervisor_hangup")
			return
		case <-m.done:
			return
		case <-m.b.s.Context().Done():
			m.end("shutdown")
			return
		case <-callDone:
			m.media.Detach()
			if !m.follow {
				m.end("call_ended")
				return
			}
			m.mu.Lock()
			m.cur = nil
			m.mu.Unlock()
			c = nil
			m.log.Info("operator's call ended: waiting for the next one")
		case nc := <-m.next:
			if c != nil {
				continue
			}
			if err := m.join(nc); err != nil {
				m.log.Warn("join next call", "err", err)
				continue
			}
			c = nc
			m.b.s.Audit(m.b.s.Context(), "monitor.join", m.supervisor, m.operator, "joined", m.Mode().String(), m.source,
				map[string]any{"session": m.id, "call_id": nc.id})
		}
	}
}

// end hangs up the supervisor's leg, stops its media and audits the
// session with its duration. Safe to call more than once.
func (m *monitorSession) end(why string) {
	m.endOnce.Do(func() {
		close(m.done)
		m.mu.Lock()
		leg, callID, mode, stopTimer := m.leg, m.callID, m.mode, m.timerStop
		m.mu.Unlock()
		if stopTimer != nil {
			stopTimer()
		}
		m.media.Close()
		if leg != nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(m.b.s.Context()), 5*time.Second)
			leg.hangup(ctx, m.log)
			cancel()
		}
		m.b.monitors.remove(callID)
		dur := m.b.s.Now().Sub(m.start)
		m.b.s.Audit(context.WithoutCancel(m.b.s.Context()), "monitor.end", m.supervisor, m.operator, "ended", why, m.source,
			map[string]any{"session": m.id, "mode": mode.String(), "duration_ms": dur.Milliseconds()})
		m.log.Info("monitor ended", "why", why, "duration", dur.Round(time.Millisecond))
	})
}

// callAnswered is told of every answered call: following sessions join
// it, and a training operator's call is offered to a supervisor.
func (b *B2BUA) callAnswered(c *call) {
	for _, m := range b.monitors.all() {
		if m.operator == c.operator && m.follow {
			select {
			case m.next <- c:
			default:
			}
		}
	}
	tr := b.monitors.options().Training
	if tr == nil {
		return
	}
	b.goCall(c, "coaching", func() {
		coach, err := tr.CountTrainingCall(c.ctx, c.operator)
		if c.ctx.Err() != nil {
			return // ended before anyone could listen: not a coached call
		}
		if err != nil {
			c.log.Warn("training state", "err", err)
			return
		}
		if !coach {
			return
		}
		sup := b.onDutySupervisor(c.ctx, c.operator)
		if sup == "" {
			b.s.Audit(b.s.Context(), "monitor.coaching", "", c.operator, "skipped", "NO_SUPERVISOR_AVAILABLE", "",
				map[string]any{"call_id": c.id})
			return
		}
		b.s.Audit(b.s.Context(), "monitor.coaching", sup, c.operator, "offered", media.Listen.String(), "",
			map[string]any{"call_id": c.id})
		if _, err := b.ringSupervisor(c.ctx, sup, c.operator, media.Listen, c, "coaching"); err != nil {
			c.log.Info("coaching not offered", "supervisor", sup, "err", err)
		}
	})
}

// onDutySupervisor picks a registered, active supervisor who is not
// already monitoring someone.
func (b *B2BUA) onDutySupervisor(ctx context.Context, operator string) string {
	busy := map[string]bool{}
	for _, m := range b.monitors.all() {
		busy[m.supervisor] = true
	}
	for _, ext := range b.s.Extensions() {
		if ext == operator || busy[ext] {
			continue
		}
		u, err := b.s.User(ctx, ext)
		if err != nil || u.Role != psip.RoleSupervisor || !u.Active {
			continue
		}
		return ext
	}
	return ""
}

// monitorInDialog handles a request inside a supervisor's dialog (ACK,
// BYE, re-INVITE, INFO) and reports whether it was one.
func (b *B2BUA) monitorInDialog(req *sip.Request, tx sip.ServerTransaction) bool {
	if req.CallID() == nil {
		return false
	}
	m := b.monitors.get(req.CallID().Value())
	if m == nil {
		return false
	}
	m.mu.Lock()
	leg := m.leg
	m.mu.Unlock()
	// The supervisor's dialog is matched like a call's: tags and source.
	src, _ := b.s.RequestHost(req)
	if tagsOK, srcOK := leg.matches(req, src); !tagsOK || !srcOK {
		why := "tags"
		if !srcOK {
			why = "source"
			b.s.Audit(b.s.Context(), "call.hijack_attempt", m.supervisor, m.operator, "refused", "NOT_DIALOG_PEER", req.Source(),
				map[string]any{"session": m.id, "method": string(req.Method)})
		}
		b.metrics.inDialogRejected.WithLabelValues(why).Inc()
		b.noDialog(req, tx, "NOT_DIALOG_PEER")
		return true
	}
	switch req.Method {
	case sip.ACK:
		if ds, ok := leg.d.(interface {
			ReadAck(*sip.Request, sip.ServerTransaction) error
		}); ok {
			ds.ReadAck(req, tx)
		}
	case sip.BYE:
		if err := leg.d.ReadBye(req, tx); err != nil {
			b.s.Respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		}
		leg.peerHungUp()
		m.end("supervisor_hangup")
	case sip.INVITE, sip.UPDATE:
		if err := leg.d.ReadRequest(req, tx); err != nil {
			b.s.Respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "CSeq out of order", nil))
			return true
		}
		if req.Method == sip.UPDATE && len(req.Body()) == 0 { // a session refresh
			res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
			m.sessionRefreshed(req, res)
			b.s.Respond(tx, req, res)
			return true
		}
		remote, codec, err := negotiate(req.Body())
		if err != nil {
			b.refuse(refusalSite{req: req, tx: tx, operator: m.supervisor, subject: m.operator},
				&Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonBadSDP, Rule: ruleMonitor, Detail: err.Error()})
			return true
		}
		if err := b.monitorMediaAllowed(m, leg, remote); err != nil { // mediaguard.go
			b.refuse(refusalSite{req: req, tx: tx, operator: m.supervisor, subject: m.operator},
				&Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonMediaMismatch, Rule: ruleMonitor, Detail: err.Error()})
			return true
		}
		m.media.SetRemote(remote.Addr, codec, remote.DTMFPT)
		res := sip.NewSDPResponseFromRequest(req, m.localSDP([]media.Codec{codec}, remote.DTMFPT))
		res.AppendHeader(b.contactFor(req))
		m.sessionRefreshed(req, res) // a refresh carrying SDP (sessiontimer.go)
		b.s.Respond(tx, req, res)
	case sip.INFO:
		// DTMF as SIP INFO (application/dtmf-relay "Signal=2").
		if d := infoDigit(req.Body()); d != 0 {
			m.dtmf(d)
		}
		b.s.Respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	default:
		b.s.Respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	}
	return true
}

func infoDigit(body []byte) byte {
	const key = "Signal="
	for i := 0; i+len(key) < len(body); i++ {
		if string(body[i:i+len(key)]) == key {
			for _, c := range body[i+len(key):] {
				if c != ' ' {
					return c
				}
			}
		}
	}
	return 0
}

// endMonitors ends every session (shutdown).
func (b *B2BUA) endMonitors(why string) {
	for _, m := range b.monitors.all() {
		m.end(why)
	}
}
