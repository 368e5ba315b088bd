package sip

import (
	"errors"

	"github.com/emiago/sipgo/sip"

	"plateau/store"
)

// authenticate checks the request's digest credentials. On success it
// returns the user; otherwise it has already answered (a challenge, or 403
// for a suspended user, or 500 when the directory fails) and returns false.
// proxy selects 407/Proxy-Authorization (INVITE) over 401/Authorization.
func (s *Server) authenticate(req *sip.Request, tx sip.ServerTransaction, proxy bool) (store.User, bool) {
	hdrName, code, reason, chalName := "authorization", sip.StatusUnauthorized, "Unauthorized", "WWW-Authenticate"
	if proxy {
		hdrName, code, reason, chalName = "proxy-authorization", sip.StatusProxyAuthRequired, "Proxy Authentication Required", "Proxy-Authenticate"
	}
	challenge := func(stale bool) {
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		for _, c := range s.nonces.challenges(stale) {
			res.AppendHeader(sip.NewHeader(chalName, c))
		}
		s.respond(tx, req, res)
	}
	h := getHeader(req, hdrName)
	if h == nil {
		challenge(false)
		return store.User{}, false
	}
	cred, err := parseCredentials(h.Value())
	if err != nil {
		s.authFailed(req, "", "malformed credentials")
		challenge(false)
		return store.User{}, false
	}
	u, err := s.users.User(s.ctx, cred.Username)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("user lookup failed", "user", cred.Username, "err", err)
		s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Error", nil))
		return store.User{}, false
	}
	err = s.nonces.verify(&cred, string(req.Method), secrets{HA1MD5: u.HA1MD5, HA1SHA256: u.HA1SHA256})
	switch {
	case err == nil && known:
	case errors.Is(err, errStaleNonce) && known:
		challenge(true)
		return store.User{}, false
	default:
		s.authFailed(req, cred.Username, "wrong credentials")
		challenge(false)
		return store.User{}, false
	}
	if src, ok := sourceAddr(req); ok {
		s.bans.succeed(src)
	}
	if u.Status != store.StatusActive {
		res := sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil)
		res.AppendHeader(reasonHeader("OPERATOR_SUSPENDED"))
		s.respond(tx, req, res)
		s.audit.Audit(s.ctx, "sip.refused", u.Extension, string(req.Method), "refused", "OPERATOR_SUSPENDED", req.Source(), nil)
		return store.User{}, false
	}
	return u, true
}

// authFailed counts a failure and bans the source when it has failed too
// often. The username is logged, not trusted.
func (s *Server) authFailed(req *sip.Request, user, why string) {
	s.metrics.authFailures.Inc()
	s.log.Info("sip auth failed", "method", req.Method, "user", user, "source", req.Source(), "why", why)
	// Wrong credentials are attempts, audited; a first request without
	// credentials is the protocol's challenge and is not.
	s.audit.Audit(s.ctx, "sip.auth_failed", user, string(req.Method), "refused", "BAD_CREDENTIALS", req.Source(),
		map[string]any{"why": why})
	addr, ok := sourceAddr(req)
	if !ok {
		return
	}
	if s.bans.fail(addr) {
		s.metrics.bans.Inc()
		s.log.Warn("sip source banned", "source", addr.String(), "duration", s.opts.BanDuration, "last_user", user)
		s.audit.Audit(s.ctx, "sip.ban", "", addr.String(), "banned", "AUTH_FAILURES", req.Source(),
			map[string]any{"duration": s.opts.BanDuration.String(), "last_user": user})
	}
}

// reasonHeader is an RFC 3326 Reason header carrying Plateau's reason code,
// so a softphone can show why a call was refused.
func reasonHeader(code string) sip.Header {
	return sip.NewHeader("Reason", `SIP;cause=403;text="`+code+`"`)
}
