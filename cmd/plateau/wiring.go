package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/pion/rtp"

	"plateau/audit"
	"plateau/b2bua"
	"plateau/config"
	"plateau/dialer"
	"plateau/media"
	"plateau/policy"
	"plateau/recordings"
	"plateau/recordings/siprec"
	"plateau/sip"
	"plateau/store"
	"plateau/web"
)

// auditLog adapts the audit chain to the packages' Auditor interfaces. An
// audit entry that cannot be written is logged as an error: the event
// already happened, and the operator of the system must see the gap.
type auditLog struct {
	chain *audit.Log
	log   *slog.Logger
}

func (a *auditLog) Audit(ctx context.Context, kind, actor, subject, outcome, reason, source string, details map[string]any) {
	if _, err := a.chain.Append(context.WithoutCancel(ctx), audit.Entry{
		Kind: kind, Actor: actor, Subject: subject, Outcome: outcome, Reason: reason, Source: source, Details: details,
	}); err != nil {
		a.log.Error("audit append failed", "kind", kind, "actor", actor, "subject", subject, "err", err)
	}
	logDecision(a.log, kind, actor, subject, outcome, reason, source, details)
}

// operators adapts the user store to the policy.
type operators struct{ st *store.Store }

func (o operators) Operator(ctx context.Context, ext string) (policy.Operator, bool, error) {
	u, err := o.st.User(ctx, ext)
	if errors.Is(err, store.ErrNotFound) {
		return policy.Operator{}, false, nil
	}
	if err != nil {
		return policy.Operator{}, false, err
	}
	return policy.Operator{Extension: u.Extension, Role: string(u.Role), Active: u.Status == store.StatusActive}, true, nil
}

// callRecorder adapts the recordings manager to the B2BUA: media legs map
// to the WAV's channels (operator left, outside right).
type callRecorder struct{ m *recordings.Manager }

func (r callRecorder) Ready() error { return r.m.Ready() }

func (r callRecorder) Start(ctx context.Context, info b2bua.RecordingInfo) (b2bua.Recording, error) {
	s, err := r.m.Start(ctx, recordings.Info{ID: info.CallID, CallIDs: info.LegCallIDs, Operator: info.Operator,
		Number: info.Number, Campaign: info.Campaign, Start: info.Start})
	if err != nil {
		return nil, err
	}
	return recordingSession{s}, nil
}

type recordingSession struct{ s *recordings.Session }

func (r recordingSession) TapRTP(l media.Leg, p *rtp.Packet, at time.Time) error {
	ch := recordings.Operator
	if l == media.LegOutside {
		ch = recordings.Outside
	}
	return r.s.WriteRTP(ch, p, at)
}

func (r recordingSession) Close(end time.Time) error { return r.s.Close(end) }

// remoteRecorder adapts the SIPREC client (recordings.remote) to the
// B2BUA and the policy: the recorder on another host.
type remoteRecorder struct{ c *siprec.Client }

func (r remoteRecorder) Ready() error { return r.c.Ready() }

func (r remoteRecorder) Start(ctx context.Context, info b2bua.RecordingInfo) (b2bua.Recording, error) {
	s, err := r.c.Start(ctx, recordings.Info{ID: info.CallID, CallIDs: info.LegCallIDs, Operator: info.Operator,
		Number: info.Number, Campaign: info.Campaign, Start: info.Start})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// callOptions builds the B2BUA's options from the config.
func callOptions(cfg *config.Config, pool *media.PortPool, mm *media.Metrics) (b2bua.CallOptions, error) {
	ip, _ := netip.ParseAddr(cfg.Media.IP)
	opts := b2bua.CallOptions{
		MediaIP: ip, Ports: pool, MediaMetrics: mm,
		InactivityTimeout: cfg.Media.InactivityTimeout.D(),
		MaxCallDuration:   cfg.Policy.MaxCallDuration.D(),
		WindowWarning:     cfg.Policy.WindowWarning.D(),
		WindowGrace:       cfg.Policy.WindowGrace.D(),
		Region:            cfg.Site.DefaultRegion,
		MinSessionExpires: cfg.SIP.MinSessionExpires.D(),
		// Detention mode (the default) requires a notice (config), so the
		// relay's notice gate always has one to open it.
		Detention: cfg.DetentionMode() && cfg.Recordings.NoticePrompt != "",
	}
	if p := cfg.Recordings.NoticePrompt; p != "" {
		pcm, err := readPrompt(cfg.Resolve(p))
		if err != nil {
			return opts, fmt.Errorf("recordings.notice_prompt: %w", err)
		}
		opts.Notice = pcm
	}
	for name, p := range cfg.Recordings.CampaignPrompts {
		pcm, err := readPrompt(cfg.Resolve(p))
		if err != nil {
			return opts, fmt.Errorf("recordings.campaign_prompts.%s: %w", name, err)
		}
		if opts.CampaignNotices == nil {
			opts.CampaignNotices = map[string][]int16{}
		}
		opts.CampaignNotices[name] = pcm
	}
	for i, t := range cfg.Trunks {
		pass, err := cfg.Secret(t.Auth.Password, t.Auth.PasswordFile)
		if err != nil {
			return opts, fmt.Errorf("trunks[%d].auth.password_file: %w", i, err)
		}
		tc := sip.TrunkConfig{
			Name: t.Name, Address: t.Address, Transport: t.Transport, Username: t.Auth.Username, Password: pass,
			CallerID: t.CallerID, OptionsInterval: t.OptionsInterval.D(), NumberFormat: t.NumberFormat,
			CountryCode: countryCode(cfg.Site.DefaultRegion), RingTimeout: t.RingTimeout.D(),
		}
		if tc.MediaLatch, err = media.ParseLatchMode(t.MediaLatch); err != nil {
			return opts, fmt.Errorf("trunks[%d].media_latch: %w", i, err)
		}
		if tc.SRTP, err = media.ParseSRTPMode(t.SRTP); err != nil {
			return opts, fmt.Errorf("trunks[%d].srtp: %w", i, err)
		}
		if r := t.Register; r != nil {
			rpass, err := cfg.Secret(r.Password, r.PasswordFile)
			if err != nil {
				return opts, fmt.Errorf("trunks[%d].register.password_file: %w", i, err)
			}
			tc.Register = &sip.TrunkRegistration{Expires: r.Expires.D(), Username: r.Username, Password: rpass, ContactUser: r.ContactUser}
		}
		for _, s := range t.AllowedSources {
			p, _ := netip.ParsePrefix(s)
			tc.AllowedSources = append(tc.AllowedSources, p)
		}
		opts.Trunks = append(opts.Trunks, tc)
	}
	return opts, nil
}

// countryCode is the calling code of a region, for trunks that want
// national numbers.
func countryCode(region string) string {
	if cc := phonenumbers.GetCountryCodeForRegion(region); cc > 0 {
		return strconv.Itoa(cc)
	}
	return ""
}

// clickToCall adapts the SIP server's click-to-call to the dialer's
// CallFunc: the call is labelled with the contact's campaign and the web
// client's address, and the outside leg's result becomes the attempt's
// outcome (recorded by the dialer through report).
type clickToCall struct {
	calls  *b2bua.B2BUA
	dialer *dialer.Service // set once the dialer exists
}

func (c *clickToCall) Call(ctx context.Context, operator, number string, report func(dialer.Outcome, int, string)) error {
	campaign := ""
	if c.dialer != nil {
		if _, cp, err := c.dialer.PendingCall(ctx, operator, number); err == nil {
			campaign = cp.Name
		}
	}
	_, err := c.calls.ClickToCall(ctx, b2bua.ClickToCallRequest{Operator: operator, Number: number, Campaign: campaign,
		Source: web.RequestSource(ctx)}, func(o b2bua.Outcome) {
		report(outcomeOf(o), o.Status, o.CallID)
	})
	if err != nil {
		return fmt.Errorf("click-to-call %s → %s: %w", operator, number, err)
	}
	return nil
}

// outcomeOf maps the outside leg's result to the dialer's outcomes. An
// operator who hangs up before the contact answers ("cancelled") counts
// as no answer: the contact comes back after the no-answer delay.
func outcomeOf(o b2bua.Outcome) dialer.Outcome {
	switch {
	case o.Answered || o.Result == "answered":
		return dialer.Answered
	case o.Result == "busy":
		return dialer.Busy
	case o.Result == "no_answer", o.Result == "cancelled":
		return dialer.NoAnswer
	}
	return dialer.Failed
}

// readPrompt loads an 8 kHz mono WAV prompt.
func readPrompt(path string) ([]int16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return media.ReadWAV(f)
}
