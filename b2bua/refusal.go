package b2bua

import (
	"context"
	"strconv"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/policy"
	psip "plateau/sip"
)

// Refusal is a call, transfer or monitor request that Plateau will not
// carry out, with everything needed to say so: the SIP status, the reason
// code the phone or console shows (RFC 3326 Reason text), the rule that
// decided and a human-readable detail for the audit log. Every refusal on
// every path is written by one function, refuse, so that the response,
// the audit entry and the metric cannot drift apart.
type Refusal struct {
	Status int    // SIP status of the answer (403, 404, 486, 491, 503, ...)
	Reason string // reason code, e.g. NOT_ALLOWLISTED, RECORDER_UNAVAILABLE
	Rule   string // policy rule or step that refused: allowlist, recorder, media, refer, monitor...
	Detail string // why, for the audit log (never sent on the wire)
	// Opens is when calling opens again (OUTSIDE_WINDOW), told to the
	// caller in a Warning header.
	Opens time.Time
}

func (r *Refusal) Error() string {
	if r.Detail != "" {
		return "refused: " + r.Reason + ": " + r.Detail
	}
	return "refused: " + r.Reason
}

// Is makes errors.Is(r, ErrRefused) hold for call refusals.
func (r *Refusal) Is(target error) bool { return target == ErrRefused && r.Rule != ruleMonitor }

// MonitorError is the refusal of a monitor request (kept as a name for
// the web console's error mapping).
type MonitorError = Refusal

// Rules of refusals that are not the policy's own.
const (
	ruleRequest  = "request"  // the request itself (From, source, draining)
	ruleMedia    = "media"    // media ports, SDP
	ruleRefer    = "refer"    // transfer state
	ruleMonitor  = "monitor"  // live monitoring
	ruleEgress   = "egress"   // a destination the egress gate refuses
	ruleRecorder = "recorder" // the recording could not start
)

// Reason codes of refusals decided outside the policy.
const (
	ReasonDraining            = "DRAINING"
	ReasonFromMismatch        = "FROM_MISMATCH"
	ReasonMediaMismatch       = "MEDIA_ADDRESS_MISMATCH"
	ReasonNoMediaPorts        = "NO_MEDIA_PORTS"
	ReasonNoOperator          = "NO_OPERATOR_AVAILABLE"
	ReasonReferForbidden      = "REFER_FORBIDDEN"
	ReasonReferNotConfirmed   = "REFER_NOT_CONFIRMED"
	ReasonReferPending        = "REFER_PENDING"
	ReasonContactNotAllowed   = psip.ReasonContactNotAllowed
	ReasonPathNotAllowed      = psip.ReasonPathNotAllowed
	ReasonDestinationRefused  = "DESTINATION_NOT_ALLOWED"
	ReasonUnknownFeature      = "UNKNOWN_FEATURE"
	ReasonBadSDP              = "BAD_SDP"
	ReasonNoCommonCodec       = "NO_COMMON_CODEC"
	reasonRecorderUnavailable = policy.ReasonRecorderUnavailable
)

// refusalOf turns a policy refusal into its answer: 403 with the reason.
func refusalOf(d policy.Decision) *Refusal {
	return &Refusal{Status: sip.StatusForbidden, Reason: d.Reason, Rule: d.Rule, Detail: d.Detail, Opens: d.Opens}
}

// decision is the refusal as a policy decision (the console's RefusedError).
func (r *Refusal) decision(e164 string) policy.Decision {
	return policy.Decision{Reason: r.Reason, Rule: r.Rule, Detail: r.Detail, E164: e164, Opens: r.Opens}
}

// refusalSite is where a refusal happened: who asked, for what, on which
// request. The answer goes to the dialog when there is one (after
// ReadInvite), else to the transaction, else nowhere (the console path
// returns the refusal as an error).
type refusalSite struct {
	req      *sip.Request
	tx       sip.ServerTransaction
	ds       *sipgo.DialogServerSession
	operator string // or supervisor, for monitor refusals
	subject  string // the number as dialled (or the monitored operator)
	e164     string // the normalised number, once known
	callID   string // Plateau's call id, once there is a call
	source   string
}

// refuse writes one refusal: the SIP answer with its Reason header, the
// audit entry (policy.decision refused, or monitor.refused) and the
// refused-calls metric. It returns r so callers can hand it on as an error.
func (b *B2BUA) refuse(at refusalSite, r *Refusal) *Refusal {
	if at.source == "" && at.req != nil {
		at.source = at.req.Source()
	}
	kind := "policy.decision"
	if r.Rule == ruleMonitor {
		kind = "monitor.refused"
	} else {
		b.metrics.callsRefused.WithLabelValues(r.Reason).Inc()
	}
	subject := at.e164
	if subject == "" {
		subject = at.subject
	}
	details := map[string]any{"rule": r.Rule, "detail": r.Detail, "dialled": at.subject, "status": r.Status}
	if at.callID != "" {
		details["call_id"] = at.callID
	}
	b.s.Audit(b.s.Context(), kind, at.operator, subject, "refused", r.Reason, at.source, details)
	hdrs := append([]sip.Header{refusalReason(r.Status, r.Reason)}, decisionWarning(r)...)
	switch {
	case at.ds != nil:
		if err := at.ds.Respond(r.Status, phrase(r.Status), nil, hdrs...); err != nil {
			b.s.Log().Debug("refusal not sent", "reason", r.Reason, "err", err)
		}
	case at.tx != nil && at.req != nil:
		res := sip.NewResponseFromRequest(at.req, r.Status, phrase(r.Status), nil)
		for _, h := range hdrs {
			res.AppendHeader(h)
		}
		b.s.Respond(at.tx, at.req, res)
	}
	return r
}

// refusalReason is the RFC 3326 Reason header of a refusal.
func refusalReason(status int, code string) sip.Header {
	return sip.NewHeader("Reason", `SIP;cause=`+strconv.Itoa(status)+`;text="`+code+`"`)
}

// phrase is the reason phrase of the statuses refusals use.
func phrase(status int) string {
	switch status {
	case sip.StatusForbidden:
		return "Forbidden"
	case sip.StatusNotFound:
		return "Not Found"
	case sip.StatusBusyHere:
		return "Busy Here"
	case sip.StatusTemporarilyUnavailable:
		return "Temporarily Unavailable"
	case sip.StatusNotAcceptableHere:
		return "Not Acceptable Here"
	case sip.StatusCallTransactionDoesNotExists:
		return "Call/Transaction Does Not Exist"
	case 491:
		return "Request Pending"
	case sip.StatusBadRequest:
		return "Bad Request"
	}
	return "Service Unavailable"
}

// auditDecision audits an allowed decision (refusals go through refuse).
func (b *B2BUA) auditAllowed(ctx context.Context, operator, number, source, callID string, d policy.Decision) {
	b.s.Audit(ctx, "policy.decision", operator, d.E164, "allowed", d.Reason, source,
		map[string]any{"rule": d.Rule, "detail": d.Detail, "dialled": number, "call_id": callID})
}
