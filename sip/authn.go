package sip

import (
	"errors"

	"github.com/emiago/sipgo/sip"
)

// authenticate checks the request's digest credentials. On success it
// returns the user; otherwise it has already answered (a challenge, or 403
// for a suspended user, or 500 when the directory fails) and returns false.
// proxy selects 407/Proxy-Authorization (INVITE) over 401/Authorization.
//
// An unknown user, a user without a SIP secret (security, admin, web-only
// accounts) and a banned account are all checked against no secret: the
// same work, the same challenge, the same failure counting and the same
// audit entry as a wrong password, and they can never succeed.
func (s *Server) authenticate(req *sip.Request, tx sip.ServerTransaction, proxy bool) (Account, bool) {
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
		return Account{}, false
	}
	src, _ := s.source(req) // invalid when unknown: then not counted by source
	cred, err := parseCredentials(h.Value())
	if err != nil {
		s.authFailed(req, src, "", "malformed credentials")
		challenge(false)
		return Account{}, false
	}
	u, err := s.users.User(s.ctx, cred.Username)
	known := err == nil
	if err != nil && !errors.Is(err, ErrUnknownAccount) {
		s.log.Error("user lookup failed", "user", cred.Username, "err", err)
		s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Error", nil))
		return Account{}, false
	}
	// Failures count on the account the directory knows (its canonical
	// extension), or on the name as given.
	account := cred.Username
	var sec secrets
	if known {
		account = u.Extension
		sec = secrets{HA1MD5: u.HA1MD5, HA1SHA256: u.HA1SHA256}
	}
	why := "wrong credentials"
	if s.bans.accountBanned(account) {
		// Refused like a wrong password, right or not: a guess must not
		// learn that it was right while the account is banned.
		sec, why = secrets{}, "account banned"
	}
	err = s.nonces.verify(&cred, string(req.Method), req.Recipient.String(), sec)
	switch {
	case err == nil && known:
	case errors.Is(err, errStaleNonce) && known:
		// Only reachable with the right password and a usable secret.
		challenge(true)
		return Account{}, false
	default:
		s.authFailed(req, src, account, why)
		challenge(false)
		return Account{}, false
	}
	s.bans.succeed(account, src.BanKey())
	if !u.Active {
		res := sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil)
		res.AppendHeader(reasonHeader("OPERATOR_SUSPENDED"))
		s.respond(tx, req, res)
		s.audit.Audit(s.ctx, "sip.refused", u.Extension, string(req.Method), "refused", "OPERATOR_SUSPENDED", sourceString(req, src), nil)
		return Account{}, false
	}
	return u, true
}

// authFailed counts a failure against the account and the real source,
// and bans either when it has failed too often. The username is logged,
// not trusted.
func (s *Server) authFailed(req *sip.Request, src Source, account, why string) {
	s.metrics.authFailures.Inc()
	from := sourceString(req, src)
	s.log.Info("sip auth failed", "method", req.Method, "user", account, "source", from, "why", why)
	// Wrong credentials are attempts, audited; a first request without
	// credentials is the protocol's challenge and is not.
	s.audit.Audit(s.ctx, "sip.auth_failed", account, string(req.Method), "refused", "BAD_CREDENTIALS", from,
		map[string]any{"why": why})
	key := src.BanKey()
	srcBanned, accBanned, untracked := s.bans.fail(account, key)
	if untracked {
		s.metrics.banUntracked.Inc()
	}
	if srcBanned {
		s.metrics.bans.Inc()
		s.log.Warn("sip source banned", "source", key.String(), "duration", s.opts.BanDuration, "last_user", account)
		s.audit.Audit(s.ctx, "sip.ban", "", key.String(), "banned", "AUTH_FAILURES", from,
			map[string]any{"kind": "source", "duration": s.opts.BanDuration.String(), "last_user": account})
	}
	if accBanned {
		s.metrics.accountBans.Inc()
		s.log.Warn("sip account banned", "user", account, "duration", s.opts.BanDuration, "last_source", from)
		s.audit.Audit(s.ctx, "sip.ban", "", account, "banned", "AUTH_FAILURES", from,
			map[string]any{"kind": "account", "duration": s.opts.BanDuration.String()})
	}
}

// sourceString is the source written in logs and audits: the real source
// (with the trusted proxy it came through), or the transport source when
// the real one cannot be told.
func sourceString(req *sip.Request, src Source) string {
	if !src.Addr.IsValid() {
		return req.Source()
	}
	return src.String()
}

// reasonHeader is an RFC 3326 Reason header carrying Plateau's reason code,
// so a softphone can show why a call was refused.
func reasonHeader(code string) sip.Header {
	return sip.NewHeader("Reason", `SIP;cause=403;text="`+code+`"`)
}
