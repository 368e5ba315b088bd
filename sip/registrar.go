package sip

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// registrar is the location service (RFC 3261 §10.3). Bindings live in
// memory for lookups and are persisted in batches, so that a burst of
// REGISTERs costs one database commit per batch, not one per request.
type registrar struct {
	s     *Server
	store BindingStore

	mu       sync.Mutex
	bindings map[string]map[string]Binding // extension -> contact URI -> binding
	count    int

	pendingMu sync.Mutex
	upserts   []Binding
	removals  []Binding
	kick      chan struct{}
}

func newRegistrar(s *Server, st BindingStore) *registrar {
	return &registrar{s: s, store: st, bindings: map[string]map[string]Binding{}, kick: make(chan struct{}, 1)}
}

// load reads the persisted bindings, so a restart keeps phones reachable.
func (r *registrar) load(ctx context.Context) error {
	bs, err := r.store.Bindings(ctx, "", r.s.now())
	if err != nil {
		return fmt.Errorf("load registrations: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range bs {
		if r.bindings[b.Extension] == nil {
			r.bindings[b.Extension] = map[string]Binding{}
		}
		r.bindings[b.Extension][b.Contact] = b
	}
	r.count = len(bs)
	r.s.metrics.registrations.Set(float64(r.count))
	return nil
}

// run persists pending changes and expires bindings until ctx ends, then
// flushes what is left.
func (r *registrar) run(ctx context.Context) {
	expire := time.NewTicker(5 * time.Second)
	defer expire.Stop()
	flush := func() {
		r.pendingMu.Lock()
		up, rm := r.upserts, r.removals
		r.upserts, r.removals = nil, nil
		r.pendingMu.Unlock()
		if len(up)+len(rm) == 0 {
			return
		}
		// Persist even while shutting down: a lost binding strands a phone.
		if err := r.store.SaveBindings(context.WithoutCancel(ctx), up, rm); err != nil {
			r.s.log.Error("persist registrations failed", "err", err, "bindings", len(up)+len(rm))
		}
	}
	for {
		select {
		case <-ctx.Done():
			flush()
			return
		case <-r.kick:
			flush()
			// Let a burst accumulate into the next batch.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		case <-expire.C:
			r.expire()
		}
	}
}

func (r *registrar) queue(up, rm []Binding) {
	r.pendingMu.Lock()
	r.upserts = append(r.upserts, up...)
	r.removals = append(r.removals, rm...)
	r.pendingMu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *registrar) expire() {
	now := r.s.now()
	var gone []Binding
	r.mu.Lock()
	for ext, m := range r.bindings {
		for c, b := range m {
			if !b.ExpiresAt.After(now) {
				delete(m, c)
				gone = append(gone, b)
			}
		}
		if len(m) == 0 {
			delete(r.bindings, ext)
		}
	}
	r.count -= len(gone)
	r.s.metrics.registrations.Set(float64(r.count))
	r.mu.Unlock()
	if len(gone) > 0 {
		r.queue(nil, gone)
	}
}

// extensions lists the users with live bindings, sorted.
func (r *registrar) extensions() []string {
	r.mu.Lock()
	out := make([]string, 0, len(r.bindings))
	for ext := range r.bindings {
		out = append(out, ext)
	}
	r.mu.Unlock()
	sort.Strings(out)
	return out
}

// Contacts returns a user's live bindings, newest expiry first.
func (r *registrar) contacts(ext string) []Binding {
	now := r.s.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Binding
	for _, b := range r.bindings[ext] {
		if b.ExpiresAt.After(now) {
			out = append(out, b)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].ExpiresAt.After(out[j-1].ExpiresAt); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (r *registrar) handleRegister(req *sip.Request, tx sip.ServerTransaction) {
	s := r.s
	to := req.To()
	if to == nil || req.CallID() == nil || req.CSeq() == nil {
		s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
		return
	}
	u, ok := s.authenticate(req, tx, false)
	if !ok {
		return
	}
	// A user may only register their own address of record.
	if to.Address.User != u.Extension {
		res := sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil)
		res.AppendHeader(reasonHeader("AOR_MISMATCH"))
		s.respond(tx, req, res)
		return
	}
	defExp := int(s.opts.DefaultExpires / time.Second)
	if h := getHeader(req, "Expires"); h != nil {
		v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || v < 0 {
			s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Expires", nil))
			return
		}
		defExp = v
	}
	path, ok := pathOf(req) // path.go
	if !ok {
		s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Path", nil))
		return
	}
	if len(path) > 0 {
		// A Path is where Plateau will send INVITEs: only a trusted proxy
		// that the REGISTER came through may put itself there.
		perr := s.pathAllowed(path)
		if src, ok := s.source(req); perr == nil && (!ok || !src.Proxied()) {
			perr = fmt.Errorf("Path from %s, which is not a trusted proxy", req.Source())
		}
		if perr != nil {
			s.audit.Audit(s.ctx, "sip.register", u.Extension, strings.Join(path, ", "), "refused", ReasonPathNotAllowed, req.Source(),
				map[string]any{"detail": perr.Error()})
			res := sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil)
			res.AppendHeader(reasonHeader(ReasonPathNotAllowed))
			s.respond(tx, req, res)
			return
		}
	}
	contacts := getHeaders(req, "Contact")
	now := s.now()
	var up, rm []Binding
	wildcard := false
	for _, h := range contacts {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Contact", nil))
			return
		}
		if c.Address.Wildcard {
			// RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0.
			if len(contacts) != 1 || defExp != 0 {
				s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Contact * needs Expires: 0", nil))
				return
			}
			wildcard = true
			continue
		}
		exp := defExp
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad expires parameter", nil))
				return
			}
			exp = n
		}
		if exp > 0 && exp < int(s.opts.MinExpires/time.Second) {
			res := sip.NewResponseFromRequest(req, sip.StatusIntervalToBrief, "Interval Too Brief", nil)
			res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(int(s.opts.MinExpires/time.Second))))
			s.respond(tx, req, res)
			return
		}
		if max := int(s.opts.MaxExpires / time.Second); exp > max {
			exp = max
		}
		// Plateau later sends INVITEs to this address (inbound calls,
		// click-to-call, monitoring): it must be a phone's, never a
		// trunk's or a third party's (the egress gate checks again at use).
		// Behind a trusted proxy the phone's own address is the real source
		// its Via records (source.go), not the proxy's.
		realSrc := req.Source()
		if rs, ok := s.source(req); ok {
			realSrc = rs.Addr.String()
		}
		if exp > 0 {
			src, _ := netip.ParseAddrPort(realSrc)
			if _, err := s.PhoneAddrAllowed(c.Address.Host, uint16(c.Address.Port), src.Addr()); err != nil {
				s.audit.Audit(s.ctx, "sip.register", u.Extension, c.Address.String(), "refused", ReasonContactNotAllowed, req.Source(),
					map[string]any{"detail": err.Error()})
				res := sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil)
				res.AppendHeader(reasonHeader(ReasonContactNotAllowed))
				s.respond(tx, req, res)
				return
			}
		}
		b := Binding{
			Extension: u.Extension, Contact: c.Address.String(), Source: realSrc,
			Transport: strings.ToLower(req.Transport()), CallID: req.CallID().Value(), CSeq: req.CSeq().SeqNo,
			ExpiresAt: now.Add(time.Duration(exp) * time.Second), Path: path,
		}
		if h := getHeader(req, "User-Agent"); h != nil {
			b.UserAgent = h.Value()
		}
		if exp == 0 {
			rm = append(rm, b)
		} else {
			up = append(up, b)
		}
	}
	if wildcard {
		rm = []Binding{{Extension: u.Extension}}
	}
	if err := r.apply(u.Extension, up, rm); err != nil {
		res := sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil)
		res.AppendHeader(reasonHeader("TOO_MANY_CONTACTS"))
		s.respond(tx, req, res)
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	for _, b := range r.contacts(u.Extension) {
		res.AppendHeader(sip.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(int(b.ExpiresAt.Sub(now).Round(time.Second)/time.Second))))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")))
	echoPath(req, res, path)
	s.respond(tx, req, res)
}

// apply updates the in-memory bindings and queues their persistence.
func (r *registrar) apply(ext string, up, rm []Binding) error {
	r.mu.Lock()
	m := r.bindings[ext]
	if m == nil {
		m = map[string]Binding{}
		r.bindings[ext] = m
	}
	before := len(m)
	for _, b := range rm {
		if b.Contact == "" {
			clear(m)
		} else {
			delete(m, b.Contact)
		}
	}
	for _, b := range up {
		if old, ok := m[b.Contact]; ok && old.CallID == b.CallID && b.CSeq <= old.CSeq {
			continue // RFC 3261 §10.3 step 7: an older request does not win
		}
		if _, ok := m[b.Contact]; !ok && len(m) >= r.s.opts.MaxContacts {
			r.mu.Unlock()
			return fmt.Errorf("user %s: more than %d contacts", ext, r.s.opts.MaxContacts)
		}
		m[b.Contact] = b
	}
	r.count += len(m) - before
	if len(m) == 0 {
		delete(r.bindings, ext)
	}
	r.s.metrics.registrations.Set(float64(r.count))
	r.mu.Unlock()
	r.queue(up, rm)
	return nil
}

// The registrar's refusal reason codes (the call layer refuses with the
// same codes when it checks a binding again at use).
const (
	ReasonContactNotAllowed = "CONTACT_NOT_ALLOWED"
	ReasonPathNotAllowed    = "PATH_NOT_ALLOWED"
)
