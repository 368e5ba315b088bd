package b2bua

import (
	"context"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
)

// Why the outside party hung up (RFC 3326: Reason: Q.850;cause=16) tells
// the operator's phone and the audit a normal clearing from a congested
// network or a rejected call. Only the carrier's Reason is relayed, to the
// operator: nothing an operator's phone writes leaves the prison to the
// carrier this way.

// hangupReason is a Reason header value read from a BYE, checked and
// rebuilt: the protocol, the cause and a short printable text only.
type hangupReason struct {
	Protocol string // Q.850 or SIP
	Cause    int
	Text     string
}

func (r hangupReason) String() string {
	s := r.Protocol + ";cause=" + strconv.Itoa(r.Cause)
	if r.Text != "" {
		s += `;text="` + r.Text + `"`
	}
	return s
}

// maxReasonText bounds the text kept from a carrier's Reason.
const maxReasonText = 64

// parseHangupReason reads the first usable Reason value (Q.850 or SIP, a
// numeric cause); anything else is ignored, not relayed.
func parseHangupReason(values []string) (hangupReason, bool) {
	for _, v := range values {
		parts := strings.Split(v, ";")
		proto := strings.TrimSpace(parts[0])
		var r hangupReason
		switch {
		case strings.EqualFold(proto, "Q.850"):
			r.Protocol = "Q.850"
		case strings.EqualFold(proto, "SIP"):
			r.Protocol = "SIP"
		default:
			continue
		}
		for _, p := range parts[1:] {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "cause":
				n, err := strconv.Atoi(strings.TrimSpace(val))
				if err != nil || n <= 0 || n > 999 {
					r.Cause = 0
				} else {
					r.Cause = n
				}
			case "text":
				r.Text = cleanReasonText(val)
			}
		}
		if r.Cause == 0 || (r.Protocol == "Q.850" && r.Cause > 127) {
			continue
		}
		return r, true
	}
	return hangupReason{}, false
}

// cleanReasonText keeps printable ASCII without quotes or backslashes, so
// the rebuilt header and the audit entry stay well-formed.
func cleanReasonText(s string) string {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxReasonText; i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// noteHangupReason keeps the Reason of a BYE from the outside leg, for the
// operator's BYE and the call.ended audit entry.
func (c *call) noteHangupReason(l *leg, req *sip.Request) {
	if l.side != media.LegOutside {
		return
	}
	r, ok := parseHangupReason(headerValues(req, "Reason"))
	if !ok {
		return
	}
	c.mu.Lock()
	c.hangupReason = r
	c.mu.Unlock()
}

// byeHeaders are the extra headers of the BYE to leg l: the outside
// party's Reason, toward the operator only.
func (c *call) byeHeaders(l *leg) []sip.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hangupReason.Cause == 0 || l != c.op {
		return nil
	}
	return []sip.Header{sip.NewHeader("Reason", c.hangupReason.String())}
}

// hangupAudit adds the relayed Reason to call.ended's details.
func (c *call) hangupAudit(details map[string]any) map[string]any {
	c.mu.Lock()
	r := c.hangupReason
	c.mu.Unlock()
	if r.Cause != 0 {
		details["hangup_reason"] = r.String()
	}
	return details
}

// byeWith hangs up leg l, with extra headers when there are some.
func byeWith(ctx context.Context, l dialogLeg, hdrs ...sip.Header) error {
	if len(hdrs) == 0 {
		return l.Bye(ctx)
	}
	var bye *sip.Request
	switch d := l.(type) {
	case *sipgo.DialogServerSession:
		ct := d.InviteRequest.Contact()
		if ct == nil {
			return l.Bye(ctx)
		}
		bye = sip.NewRequest(sip.BYE, *ct.Address.Clone())
		bye.SetTransport(d.InviteRequest.Transport())
		for _, h := range hdrs {
			bye.AppendHeader(h)
		}
		return d.WriteBye(ctx, bye)
	case *sipgo.DialogClientSession:
		if d.InviteResponse == nil || d.InviteResponse.Contact() == nil {
			return l.Bye(ctx)
		}
		bye = sip.NewRequest(sip.BYE, *d.InviteResponse.Contact().Address.Clone())
		for _, h := range hdrs {
			bye.AppendHeader(h)
		}
		return d.WriteBye(ctx, bye)
	case *trunkDialog:
		return d.bye(ctx, hdrs...)
	}
	return l.Bye(ctx)
}
