package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/icholy/digest"
)

// Registration trunks: many small-business SIP trunks only take calls from,
// and deliver calls to, a PBX that REGISTERs to them with digest
// credentials. Plateau registers at start, renews at 80 % of the granted
// expiry, backs off on failure, and counts the trunk as down while it is
// not registered. The carrier's INVITEs to the registered contact come
// from its address (which allowed_sources must list) and are inbound calls
// of that trunk like any other.

// TrunkRegistration is a registration trunk's REGISTER settings.
type TrunkRegistration struct {
	Expires     time.Duration // asked; the carrier may grant less
	Username    string
	Password    string
	ContactUser string // the Contact's user part, where inbound calls come
	// RetryMin and RetryMax bound the backoff after a failure (defaults
	// 5 s and 5 min).
	RetryMin, RetryMax time.Duration
}

// registrationUp is false for a registration trunk not (yet) registered.
func (t *Trunk) registrationUp() bool {
	return t.Register == nil || t.registered.Load()
}

// TrunkForRequest picks the trunk of an out-of-dialog INVITE from src: a
// registration trunk whose contact user the Request-URI names first (two
// trunks may share a carrier's addresses), else the first trunk allowing
// src.
func (s *Server) TrunkForRequest(req *sip.Request, src netip.Addr) *Trunk {
	for _, t := range s.trunks {
		if t.Register != nil && t.Allows(src) && req.Recipient.User == t.Register.ContactUser {
			return t
		}
	}
	return s.TrunkFor(src)
}

// registerTrunk keeps t registered until ctx ends, then unregisters.
func (s *Server) registerTrunk(ctx context.Context, t *Trunk) {
	r := t.Register
	retryMin, retryMax := r.RetryMin, r.RetryMax
	if retryMin <= 0 {
		retryMin = 5 * time.Second
	}
	if retryMax < retryMin {
		retryMax = max(retryMin, 5*time.Minute)
	}
	reg := &trunkRegistrar{s: s, t: t, callID: uuid.NewString(), tag: sip.GenerateTagN(16)}
	backoff := retryMin
	s.metrics.trunkRegistered.WithLabelValues(t.Name).Set(0)
	for {
		granted, err := reg.register(ctx, r.Expires)
		if ctx.Err() != nil {
			break
		}
		var wait time.Duration
		if err == nil {
			reg.setState(ctx, true, "", granted)
			wait = granted * 8 / 10
			backoff = retryMin
		} else {
			reg.setState(ctx, false, err.Error(), 0)
			wait = backoff
			backoff = min(2*backoff, retryMax)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
			continue
		}
		break
	}
	// Shutdown: remove the binding so the carrier stops sending calls to
	// a Plateau that is gone.
	if t.registered.Load() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		_, err := reg.register(uctx, 0)
		cancel()
		reg.setState(context.WithoutCancel(ctx), false, "unregistered at shutdown", 0)
		if err != nil {
			s.log.Info("trunk unregister failed", "trunk", t.Name, "err", err)
		}
	}
}

// trunkRegistrar is one trunk's REGISTER dialog (one Call-ID, rising CSeq).
type trunkRegistrar struct {
	s      *Server
	t      *Trunk
	callID string
	tag    string
	cseq   uint32
	failed bool // the last attempt failed (one audit entry per failure streak)
}

func (r *trunkRegistrar) setState(ctx context.Context, up bool, why string, granted time.Duration) {
	t, s := r.t, r.s
	was := t.registered.Swap(up)
	s.metrics.trunkRegistered.WithLabelValues(t.Name).Set(map[bool]float64{true: 1, false: 0}[up])
	switch {
	case up && !was:
		r.failed = false
		s.log.Info("trunk registered", "trunk", t.Name, "expires", granted)
		s.audit.Audit(ctx, "trunk.registration", "", t.Name, "registered", "", "", map[string]any{"expires_s": int(granted / time.Second)})
	case !up && (was || !r.failed):
		r.failed = true
		s.log.Warn("trunk not registered", "trunk", t.Name, "why", why)
		outcome := "failed"
		if why == "unregistered at shutdown" {
			outcome = "unregistered"
		}
		s.audit.Audit(ctx, "trunk.registration", "", t.Name, outcome, why, "", nil)
	}
}

// register sends one REGISTER (answering one digest challenge and one 423)
// and returns the expiry the carrier granted.
func (r *trunkRegistrar) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	t := r.t
	host, _, err := net.SplitHostPort(t.Address)
	if err != nil {
		return 0, err
	}
	var registrar sip.Uri
	if err := sip.ParseUri("sip:"+t.Address, &registrar); err != nil {
		return 0, fmt.Errorf("trunk %s address: %w", t.Name, err)
	}
	aor := sip.Uri{Scheme: "sip", User: t.Register.Username, Host: host}
	contact := r.s.ContactFor(t.sipTransport())
	contact.Address.User = t.Register.ContactUser
	// (ContactFor wrote transport=tcp, or transport=tls and the TLS port.)
	var auth sip.Header
	authTried, briefTried := false, false
	for {
		req := sip.NewRequest(sip.REGISTER, registrar)
		if tp := t.sipTransport(); tp != "UDP" {
			req.SetTransport(tp)
		}
		from := sip.FromHeader{Address: aor, Params: sip.NewParams()}
		from.Params.Add("tag", r.tag)
		req.AppendHeader(&from)
		req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
		cid := sip.CallIDHeader(r.callID)
		req.AppendHeader(&cid)
		r.cseq++
		req.AppendHeader(&sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER})
		req.AppendHeader(&contact)
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
		if auth != nil {
			req.AppendHeader(auth)
		}
		res, err := r.s.client.Do(ctx, req, sipgo.ClientRequestBuild)
		if err != nil {
			return 0, fmt.Errorf("REGISTER: %w", err)
		}
		switch {
		case res.IsSuccess():
			return grantedExpiry(res, contact.Address, expires), nil
		case (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) && !authTried:
			authTried = true
			if auth, err = digestAnswer(res, sip.REGISTER, registrar.Addr(), t.Register.Username, t.Register.Password); err != nil {
				return 0, err
			}
		case res.StatusCode == sip.StatusIntervalToBrief && !briefTried:
			briefTried = true
			h := res.GetHeader("Min-Expires")
			if h == nil {
				return 0, errors.New("REGISTER answered 423 without a Min-Expires")
			}
			if expires, err = ParseSeconds(h.Value(), maxTrunkExpiry); err != nil {
				return 0, fmt.Errorf("REGISTER answered 423 with an unusable Min-Expires: %w", err)
			}
		default:
			return 0, fmt.Errorf("REGISTER answered %d %s", res.StatusCode, res.Reason)
		}
	}
}

// maxTrunkExpiry bounds what a carrier may grant or demand: a longer
// registration is refreshed no later than this anyway.
const maxTrunkExpiry = 24 * time.Hour

// grantedExpiry reads the expiry of our contact in a REGISTER's 2xx: its
// expires parameter, else the Expires header, else what we asked.
func grantedExpiry(res *sip.Response, ours sip.Uri, asked time.Duration) time.Duration {
	// A registrar lists every binding of the AOR, often in one header.
	for _, v := range splitNameAddrs(res.GetHeaders("Contact")) {
		var c sip.ContactHeader
		if _, err := sip.ParseAddressValue(v, &c.Address, &c.Params); err != nil {
			continue
		}
		if c.Address.User != ours.User || !strings.EqualFold(strings.Trim(c.Address.Host, "[]"), strings.Trim(ours.Host, "[]")) || c.Address.Port != ours.Port {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if d, err := ParseSeconds(v, maxTrunkExpiry); err == nil {
				return d
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if d, err := ParseSeconds(h.Value(), maxTrunkExpiry); err == nil {
			return d
		}
	}
	return asked
}

// digestAnswer answers a 401/407 challenge (the first one; RFC 8760
// algorithms as github.com/icholy/digest supports them).
func digestAnswer(res *sip.Response, method sip.RequestMethod, uri, username, password string) (sip.Header, error) {
	hname, aname := "WWW-Authenticate", "Authorization"
	if res.StatusCode == sip.StatusProxyAuthRequired {
		hname, aname = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(hname)
	if h == nil {
		return nil, fmt.Errorf("%d without %s", res.StatusCode, hname)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return nil, fmt.Errorf("carrier challenge: %w", err)
	}
	chal.Algorithm = strings.ToUpper(chal.Algorithm)
	cred, err := digest.Digest(chal, digest.Options{Method: string(method), URI: uri, Username: username, Password: password})
	if err != nil {
		return nil, fmt.Errorf("answer the carrier's challenge: %w", err)
	}
	return sip.NewHeader(aname, cred.String()), nil
}
