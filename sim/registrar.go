package sim

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The registrar mode plays a small-business SIP trunk that only serves a
// PBX registered to it: REGISTER with digest (401), one binding, INVITEs
// refused until it is live, and calls delivered to its contact.

// registration is the PBX's binding.
type registration struct {
	contact sip.Uri
	expires time.Time
}

// registered reports whether a binding is live.
func (p *PSTN) registered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.binding.expires.IsZero() && p.now().Before(p.binding.expires)
}

// Binding returns the live registration's contact user and host:port.
func (p *PSTN) Binding() (user, hostport string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.binding.expires.IsZero() || !p.now().Before(p.binding.expires) {
		return "", "", false
	}
	c := p.binding.contact
	port := c.Port
	if port == 0 {
		port = 5060
	}
	return c.User, net.JoinHostPort(strings.Trim(c.Host, "[]"), strconv.Itoa(port)), true
}

// Registrations counts the REGISTERs accepted (refreshes included).
func (p *PSTN) Registrations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.registers
}

func (p *PSTN) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if !p.auth.verify(req) {
		res := sip.NewResponseFromRequest(req, sip.StatusUnauthorized, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", p.auth.challenge()))
		tx.Respond(res)
		p.log.Info("← REGISTER → 401", "authorization", req.GetHeader("Authorization") != nil)
		return
	}
	ct := req.Contact()
	if ct == nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Contact Required", nil))
		return
	}
	asked := 3600
	if v, ok := ct.Params.Get("expires"); ok {
		asked, _ = strconv.Atoi(v)
	} else if h := req.GetHeader("Expires"); h != nil {
		asked, _ = strconv.Atoi(strings.TrimSpace(h.Value()))
	}
	max := time.Duration(p.cfg.Registrar.MaxExpires)
	if max <= 0 {
		max = time.Hour
	}
	granted := min(time.Duration(asked)*time.Second, max)
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	p.mu.Lock()
	if granted <= 0 {
		p.binding = registration{}
	} else {
		p.binding = registration{contact: *ct.Address.Clone(), expires: p.now().Add(granted)}
		p.registers++
		c := ct.Clone()
		c.Params.Remove("expires")
		c.Params.Add("expires", strconv.Itoa(int(granted/time.Second)))
		res.AppendHeader(c)
	}
	p.mu.Unlock()
	tx.Respond(res)
	p.log.Info("← REGISTER → 200", "contact", ct.Address.String(), "granted", granted)
}
