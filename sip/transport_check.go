package sip

import (
	"context"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// badRequest is why a request is refused before any handler sees it: the
// status (400, 416, 505), a reason phrase that names the problem (RFC 3261
// §8.2: "the reason phrase SHOULD identify the header"), and a short label
// for the metric.
type badRequest struct {
	status int
	phrase string
	label  string
}

// checkRequest validates what every handler relies on, so that none of
// them meets a request without a Call-ID (a nil dereference once crashed
// the process) or with a CSeq of another method. sipgo's parser has
// already rejected headers it cannot parse (a non-numeric Max-Forwards, a
// From without a URI); what it lets through are missing, duplicated or
// inconsistent headers, an unknown SIP version and unknown URI schemes.
// nil means the request may go on.
func checkRequest(req *sip.Request) *badRequest {
	// RFC 3261 §8.2.2 order: version, then URI scheme (§8.2.2.1: 416),
	// then the headers every request must carry (§8.1.1).
	if !strings.EqualFold(req.SipVersion, "SIP/2.0") {
		return &badRequest{sip.StatusVersionNotSupported, "Version Not Supported", "version"}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "tel":
	case "sips":
		// RFC 3261 §26.2.2 (and RFC 5630 §3.1.3): a SIPS Request-URI that
		// arrived over anything but TLS is refused, 416.
		if !strings.EqualFold(req.Transport(), "TLS") {
			return &badRequest{416, "SIPS Requires TLS", "sips_not_tls"}
		}
	default:
		// 416 (sipgo names it after HTTP: StatusRequestedRangeNotSatisfiable).
		return &badRequest{416, "Unsupported URI Scheme", "uri_scheme"}
	}
	// Count by name (compact forms too), not by parsed type: a header
	// sipgo keeps unparsed is still a header.
	var via, from, to, callID, cseq, maxFwd int
	for _, h := range req.Headers() {
		switch n := h.Name(); {
		case asciiEqualFold(n, "via") || asciiEqualFold(n, "v"):
			via++
		case asciiEqualFold(n, "from") || asciiEqualFold(n, "f"):
			from++
		case asciiEqualFold(n, "to") || asciiEqualFold(n, "t"):
			to++
		case asciiEqualFold(n, "call-id") || asciiEqualFold(n, "i"):
			callID++
		case asciiEqualFold(n, "cseq"):
			cseq++
		case asciiEqualFold(n, "max-forwards"):
			maxFwd++
		}
	}
	switch {
	case via == 0:
		return &badRequest{sip.StatusBadRequest, "Missing Via Header", "missing_via"}
	case from == 0:
		return &badRequest{sip.StatusBadRequest, "Missing From Header", "missing_from"}
	case to == 0:
		return &badRequest{sip.StatusBadRequest, "Missing To Header", "missing_to"}
	case callID == 0:
		return &badRequest{sip.StatusBadRequest, "Missing Call-ID Header", "missing_call_id"}
	case cseq == 0:
		return &badRequest{sip.StatusBadRequest, "Missing CSeq Header", "missing_cseq"}
	// A request has one of each (RFC 3261 §7.3.1: only list headers may
	// repeat); two Call-IDs or two From tags leave the dialog ambiguous.
	case from > 1:
		return &badRequest{sip.StatusBadRequest, "Multiple From Headers", "multiple_from"}
	case to > 1:
		return &badRequest{sip.StatusBadRequest, "Multiple To Headers", "multiple_to"}
	case callID > 1:
		return &badRequest{sip.StatusBadRequest, "Multiple Call-ID Headers", "multiple_call_id"}
	case cseq > 1:
		return &badRequest{sip.StatusBadRequest, "Multiple CSeq Headers", "multiple_cseq"}
	case maxFwd > 1:
		return &badRequest{sip.StatusBadRequest, "Multiple Max-Forwards Headers", "multiple_max_forwards"}
	}
	// Present but unparsable (sipgo parses some lazily and answers nil).
	switch {
	case req.Via() == nil:
		return &badRequest{sip.StatusBadRequest, "Malformed Via Header", "malformed_via"}
	case req.From() == nil:
		return &badRequest{sip.StatusBadRequest, "Malformed From Header", "malformed_from"}
	case req.To() == nil:
		return &badRequest{sip.StatusBadRequest, "Malformed To Header", "malformed_to"}
	case req.CallID() == nil:
		return &badRequest{sip.StatusBadRequest, "Malformed Call-ID Header", "malformed_call_id"}
	case req.CSeq() == nil:
		return &badRequest{sip.StatusBadRequest, "Malformed CSeq Header", "malformed_cseq"}
	case maxFwd == 1 && req.MaxForwards() == nil:
		return &badRequest{sip.StatusBadRequest, "Malformed Max-Forwards Header", "malformed_max_forwards"}
	}
	if strings.TrimSpace(req.CallID().Value()) == "" {
		return &badRequest{sip.StatusBadRequest, "Empty Call-ID Header", "empty_call_id"}
	}
	// §8.1.1.5: the CSeq method matches the request's; a CANCEL or ACK
	// carries its own method there too.
	if req.CSeq().MethodName != req.Method {
		return &badRequest{sip.StatusBadRequest, "CSeq Method Does Not Match Request", "cseq_method"}
	}
	return nil
}

// methodLabel is req's method as a metric label: the methods Plateau knows,
// "other" for the rest, so a scanner inventing methods cannot grow the
// metric without bound.
func methodLabel(m sip.RequestMethod) string {
	switch m {
	case sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.REGISTER, sip.OPTIONS, sip.SUBSCRIBE, sip.NOTIFY,
		sip.REFER, sip.INFO, sip.MESSAGE, sip.PRACK, sip.UPDATE, sip.PUBLISH:
		return string(m)
	}
	return "other"
}

// refusedSource logs and audits that the front door turned a source away:
// sip.rate_limited (once per episode of a source), sip.tcp_refused (a
// connection over a cap) and sip.malformed (a request refused by
// checkRequest). A flood must not flood the log and the audit chain in
// turn: at most about one entry a second is written, for all sources
// together, and the rest are logged at debug level; the metrics count
// every refusal.
func (s *Server) refusedSource(ip netip.Addr, why string) {
	if !s.auditBudget.allow(netip.Addr{}) {
		s.log.Debug("sip source refused", "source", ip.String(), "why", why)
		return
	}
	s.log.Warn("sip source refused", "source", ip.String(), "why", why)
	kind := "sip.tcp_refused"
	switch {
	case why == "rate_limited":
		kind = "sip.rate_limited"
	case strings.HasPrefix(why, "malformed:"):
		kind = "sip.malformed"
	}
	s.audit.Audit(context.WithoutCancel(s.ctx), kind, "", ip.String(), "refused", strings.ToUpper(why), ip.String(), nil)
}

// newParser is sipgo's parser, except that a mandatory header it cannot
// parse (Max-Forwards: abc, CSeq: x INVITE, a From without a URI) is kept
// as text instead of failing the whole message, which sipgo drops without
// an answer: checkRequest then refuses it with a 400 naming the header
// (RFC 3261 §8.2), and no handler ever sees it. Via and Contact keep
// sipgo's parsers (their values split on commas).
func newParser() *sip.Parser {
	m := map[string]sip.HeaderParser{}
	for k, v := range sip.DefaultHeadersParser() {
		m[k] = v
	}
	for _, name := range []string{"max-forwards", "cseq", "call-id", "i", "from", "f", "to", "t"} {
		if p := m[name]; p != nil {
			m[name] = keepUnparsable(p)
		}
	}
	return sip.NewParser(sip.WithHeadersParsers(m))
}

func keepUnparsable(p sip.HeaderParser) sip.HeaderParser {
	return func(name []byte, text string) (sip.Header, error) {
		h, err := p(name, text)
		if err != nil {
			return sip.NewHeader(string(name), text), nil
		}
		return h, nil
	}
}
