package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Roles a user may have.
var roles = map[string]bool{"operator": true, "supervisor": true, "security": true, "admin": true}

var extensionRE = regexp.MustCompile(`^[0-9]{2,8}$`)

// sipUserRE is what Plateau accepts as a registered contact's user part.
var sipUserRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,64}$`)

// Validate checks every value and names the key of the first bad one.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if _, err := time.LoadLocation(c.Site.Timezone); err != nil {
		return bad("site.timezone", "unknown time zone %q (use e.g. Europe/Paris)", c.Site.Timezone)
	}
	if !regexp.MustCompile(`^[A-Z]{2}$`).MatchString(c.Site.DefaultRegion) {
		return bad("site.default_region", "%q is not a two-letter region code such as FR", c.Site.DefaultRegion)
	}
	if err := checkHostPort(c.SIP.Listen); err != nil {
		return bad("sip.listen", "%v", err)
	}
	sipTLS := false
	for i, t := range c.SIP.Transports {
		if t != "udp" && t != "tcp" && t != "tls" {
			return bad(fmt.Sprintf("sip.transports[%d]", i), "%q is not supported (udp, tcp or tls)", t)
		}
		sipTLS = sipTLS || t == "tls"
	}
	if sipTLS {
		if err := c.validateSIPTLS(); err != nil {
			return err
		}
	}
	if c.SIP.ExternalAddress != "" {
		if _, err := netip.ParseAddr(c.SIP.ExternalAddress); err != nil {
			return bad("sip.external_address", "%q is not an IP address", c.SIP.ExternalAddress)
		}
	}
	for i, n := range c.SIP.PhoneNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return bad(fmt.Sprintf("sip.phone_networks[%d]", i), "%q is not a CIDR network (e.g. 10.20.0.0/24)", n)
		}
	}
	for i, a := range c.SIP.DigestAlgorithms {
		if a != "SHA-256" && a != "MD5" {
			return bad(fmt.Sprintf("sip.digest_algorithms[%d]", i), "%q is not SHA-256 or MD5", a)
		}
	}
	if c.SIP.DigestURICheck != "request_uri" && c.SIP.DigestURICheck != "server" {
		return bad("sip.digest_uri_check", "%q is not request_uri or server", c.SIP.DigestURICheck)
	}
	c.SIP.trustedProxies = nil
	for i, e := range c.SIP.TrustedProxies {
		p, err := parsePrefixOrAddr(e)
		if err != nil {
			return bad(fmt.Sprintf("sip.trusted_proxies[%d]", i), "%v", err)
		}
		if p.Bits() == 0 {
			// Believing every sender's Via would turn the strict source
			// checks off for everyone.
			return bad(fmt.Sprintf("sip.trusted_proxies[%d]", i), "%q trusts every address: list only the proxies' own addresses", e)
		}
		c.SIP.trustedProxies = append(c.SIP.trustedProxies, p)
	}
	if c.SIP.MinExpires > c.SIP.MaxExpires {
		return bad("sip.min_expires", "must not exceed sip.max_expires")
	}
	if d := c.SIP.MinSessionExpires.D(); d < time.Second || d > time.Hour || d%time.Second != 0 {
		return bad("sip.min_session_expires", "%s is not a whole number of seconds from 1s to 1h (default 90s, RFC 4028's minimum)", d)
	}
	if c.SIP.NonceTTL.D() < 5*time.Second {
		return bad("sip.nonce_ttl", "must be at least 5s")
	}
	if l := c.SIP.Limits; l.TCPConnections < 1 {
		return bad("sip.limits.tcp_connections", "must be at least 1 (default 2048)")
	} else if l.TCPConnectionsPerSource < 1 || l.TCPConnectionsPerSource > l.TCPConnections {
		return bad("sip.limits.tcp_connections_per_source", "must be between 1 and sip.limits.tcp_connections (default 32)")
	} else if l.TCPIdleTimeout.D() < time.Second {
		return bad("sip.limits.tcp_idle_timeout", "must be at least 1s (default 2m; longer than the phones' keepalive interval)")
	} else if l.RequestsPerSource < 1 {
		return bad("sip.limits.requests_per_source", "must be at least 1 (default 200 a second)")
	}
	if _, err := netip.ParseAddr(c.Media.IP); err != nil {
		return bad("media.ip", "%q is not an IP address", c.Media.IP)
	}
	min, max, err := parsePortRange(c.Media.RTPPorts)
	if err != nil {
		return bad("media.rtp_ports", "%v", err)
	}
	c.Media.portMin, c.Media.portMax = min, max
	if err := checkHostPort(c.HTTP.Listen); err != nil {
		return bad("http.listen", "%v", err)
	}
	if err := c.validateHTTPTLS(); err != nil {
		return err
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return bad("log.format", "%q is not text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	names := map[string]bool{}
	for i, t := range c.Trunks {
		key := fmt.Sprintf("trunks[%d]", i)
		if t.Name == "" {
			return bad(key+".name", "is required")
		}
		if names[t.Name] {
			return bad(key+".name", "%q is used twice", t.Name)
		}
		names[t.Name] = true
		if err := checkHostPort(t.Address); err != nil {
			return bad(key+".address", "%v", err)
		}
		if t.Transport != "udp" && t.Transport != "tcp" && t.Transport != "tls" {
			return bad(key+".transport", "%q is not udp, tcp or tls", t.Transport)
		}
		if err := c.validateTrunkTLS(key, t, sipTLS); err != nil {
			return err
		}
		for j, s := range t.AllowedSources {
			if _, err := netip.ParsePrefix(s); err != nil {
				return bad(fmt.Sprintf("%s.allowed_sources[%d]", key, j), "%q is not a CIDR such as 192.0.2.0/24", s)
			}
		}
		if t.Auth.PasswordFile != "" {
			if _, err := os.Stat(c.Resolve(t.Auth.PasswordFile)); err != nil {
				return bad(key+".auth.password_file", "cannot read: %v", err)
			}
		}
		if t.RingTimeout != nil && (t.RingTimeout.D() < time.Second || t.RingTimeout.D() > 10*time.Minute) {
			return bad(key+".ring_timeout", "%s is not between 1s and 10m", t.RingTimeout.D())
		}
		if r := t.Register; r != nil {
			if r.Expires.D() < time.Minute || r.Expires.D() > 24*time.Hour {
				return bad(key+".register.expires", "%s is not between 60s and 24h", r.Expires.D())
			}
			if r.Username == "" {
				return bad(key+".register.username", "is required (or auth.username)")
			}
			if r.Password == "" && r.PasswordFile == "" {
				return bad(key+".register.password", "a password or password_file is required (or the trunk's auth)")
			}
			if r.PasswordFile != "" {
				if _, err := os.Stat(c.Resolve(r.PasswordFile)); err != nil {
					return bad(key+".register.password_file", "cannot read: %v", err)
				}
			}
			if !sipUserRE.MatchString(r.ContactUser) {
				return bad(key+".register.contact_user", "%q is not a SIP user name (letters, digits, - _ . + only)", r.ContactUser)
			}
		}
		switch t.NumberFormat {
		case "e164", "national", "international":
		default:
			return bad(key+".number_format", "%q is not e164, national or international", t.NumberFormat)
		}
		switch t.MediaLatch {
		case "host", "any":
		default:
			return bad(key+".media_latch", "%q is not host (RTP only from the host in the trunk's SDP) or any (carrier behind NAT)", t.MediaLatch)
		}
		switch t.SRTP {
		case "off":
		case "optional", "required":
			// SDES keys travel in the SDP: over UDP or TCP anyone on the
			// path reads them, and the SRTP protects nothing.
			if t.Transport != "tls" {
				return bad(key+".srtp", "%s needs %s.transport: tls (SDES sends the SRTP keys in the SDP, in clear over %s)", t.SRTP, key, t.Transport)
			}
		default:
			return bad(key+".srtp", "%q is not off, optional or required", t.SRTP)
		}
	}
	exts := map[string]bool{}
	for i, u := range c.Users {
		key := fmt.Sprintf("users[%d]", i)
		if !extensionRE.MatchString(u.Extension) {
			return bad(key+".extension", "%q must be 2 to 8 digits", u.Extension)
		}
		if exts[u.Extension] {
			return bad(key+".extension", "%q is used twice", u.Extension)
		}
		exts[u.Extension] = true
		if !roles[u.Role] {
			return bad(key+".role", "%q is not operator, supervisor, security or admin", u.Role)
		}
		for _, f := range []struct{ key, path string }{{".sip_password_file", u.SIPPasswordFile}, {".web_password_file", u.WebPasswordFile}} {
			if f.path != "" {
				if _, err := os.Stat(c.Resolve(f.path)); err != nil {
					return bad(key+f.key, "cannot read: %v", err)
				}
			}
		}
	}
	for i, w := range c.Policy.Windows {
		if _, err := w.Parse(); err != nil {
			return bad(fmt.Sprintf("policy.windows[%d]", i), "%v", err)
		}
	}
	for i, h := range c.Policy.Holidays {
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			return bad(fmt.Sprintf("policy.holidays[%d]", i), "%q is not a date YYYY-MM-DD", h)
		}
	}
	seen := map[string]string{}
	for i, nw := range c.Policy.NumberWindows {
		key := fmt.Sprintf("policy.number_windows[%d]", i)
		if len(nw.Numbers) == 0 {
			return bad(key+".numbers", "at least one number is required")
		}
		for j, n := range nw.Numbers {
			k := fmt.Sprintf("%s.numbers[%d]", key, j)
			if !e164RE.MatchString(n) {
				return bad(k, "%q is not an E.164 number (write it as +33240123456)", n)
			}
			if prev, dup := seen[n]; dup {
				return bad(k, "%s already has its hours in %s", n, prev)
			}
			seen[n] = key
		}
		// No windows would mean never: say it explicitly instead.
		if len(nw.Windows) == 0 {
			return bad(key+".windows", "at least one window is required (to forbid a number, revoke it from the allowlist)")
		}
		for j, w := range nw.Windows {
			if _, err := w.Parse(); err != nil {
				return bad(fmt.Sprintf("%s.windows[%d]", key, j), "%v", err)
			}
		}
		for j, h := range nw.Holidays {
			if _, err := time.Parse(time.DateOnly, h); err != nil {
				return bad(fmt.Sprintf("%s.holidays[%d]", key, j), "%q is not a date YYYY-MM-DD", h)
			}
		}
	}
	if c.Policy.MaxCallDuration < 0 {
		return bad("policy.max_call_duration", "must be positive")
	}
	if c.Policy.Limits.PerOperator < 0 || c.Policy.Limits.PerSite < 0 {
		return bad("policy.limits", "limits must be positive")
	}
	if c.Policy.Ban.MaxFailures < 1 {
		return bad("policy.ban.max_failures", "must be at least 1")
	}
	if c.Recordings.RetentionDays < 1 {
		return bad("recordings.retention_days", "must be at least 1")
	}
	if c.Monitoring.TrainingCalls < 0 {
		return bad("monitoring.training_calls", "must not be negative")
	}
	if c.Recordings.MinFreeMB < 0 {
		return bad("recordings.min_free_mb", "must not be negative")
	}
	if r := c.Recordings.Remote; r.Address != "" {
		if _, _, err := net.SplitHostPort(r.Address); err != nil {
			return bad("recordings.remote.address", "%q is not host:port (the plateau recorder's SIP address)", r.Address)
		}
		if r.Transport != "udp" && r.Transport != "tcp" && r.Transport != "tls" {
			return bad("recordings.remote.transport", "%q is not udp, tcp or tls", r.Transport)
		}
		if r.Timeout.D() < 100*time.Millisecond || r.Timeout.D() > time.Minute {
			return bad("recordings.remote.timeout", "must be between 100ms and 1m")
		}
	} else if r := c.Recordings.Remote; r.Transport != "" || r.Timeout != 0 || r.CAFile != "" || r.CertFile != "" || r.KeyFile != "" || r.ServerName != "" {
		return bad("recordings.remote.address", "is required when recordings.remote is set")
	}
	if err := checkHostPort(c.Recorder.Listen); err != nil {
		return bad("recorder.listen", "%v", err)
	}
	for i, t := range c.Recorder.Transports {
		if t != "udp" && t != "tcp" {
			return bad(fmt.Sprintf("recorder.transports[%d]", i), "%q is not supported (udp or tcp)", t)
		}
	}
	if c.Recorder.RTPTimeout.D() < time.Second {
		return bad("recorder.rtp_timeout", "must be at least 1s")
	}
	for i, s := range c.Recorder.AllowedSources {
		if _, err := netip.ParsePrefix(s); err != nil {
			return bad(fmt.Sprintf("recorder.allowed_sources[%d]", i), "%q is not a CIDR prefix such as 10.0.0.0/24", s)
		}
	}
	if err := c.validateRecorderLink(); err != nil {
		return err
	}
	for name, p := range c.Recordings.CampaignPrompts {
		if p == "" {
			return bad("recordings.campaign_prompts."+name, "is empty: a campaign may change the notice, not remove it")
		}
		if _, err := os.Stat(c.Resolve(p)); err != nil {
			return bad("recordings.campaign_prompts."+name, "cannot read: %v", err)
		}
	}
	if c.Recordings.NoticePrompt != "" {
		if _, err := os.Stat(c.Resolve(c.Recordings.NoticePrompt)); err != nil {
			return bad("recordings.notice_prompt", "cannot read: %v", err)
		}
	} else if c.DetentionMode() {
		return bad("recordings.notice_prompt", "is required in detention mode (the called party must hear that the call is recorded)")
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
			return fmt.Errorf("%q: host must be an IP address", s)
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port must be 0-65535", s)
	}
	return nil
}

func parsePortRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not a range such as 20000-29999", s)
	}
	min, err1 := strconv.Atoi(strings.TrimSpace(a))
	max, err2 := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("%q is not a range such as 20000-29999", s)
	case min < 1024 || max > 65534 || min >= max:
		return 0, 0, fmt.Errorf("%q must be within 1024-65534 with start < end", s)
	case max-min < 3:
		return 0, 0, fmt.Errorf("%q holds fewer than two RTP/RTCP port pairs", s)
	}
	return min, max, nil
}

// WeeklyWindow is a parsed Window: the weekdays it applies to and the
// minutes after local midnight it opens and closes.
type WeeklyWindow struct {
	Days     [7]bool // indexed by time.Weekday
	From, To int     // minutes since midnight, From < To
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

var e164RE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Parse validates a window: days like "mon-fri" or "mon,wed,sat", times HH:MM.
func (w Window) Parse() (WeeklyWindow, error) {
	var ww WeeklyWindow
	if strings.TrimSpace(w.Days) == "" {
		return ww, fmt.Errorf("days is required (e.g. mon-fri)")
	}
	for _, part := range strings.Split(strings.ToLower(w.Days), ",") {
		part = strings.TrimSpace(part)
		a, b, isRange := strings.Cut(part, "-")
		da, ok := dayNames[a]
		if !ok {
			return ww, fmt.Errorf("days: %q is not a day (mon, tue, wed, thu, fri, sat, sun)", a)
		}
		if !isRange {
			ww.Days[da] = true
			continue
		}
		db, ok := dayNames[b]
		if !ok {
			return ww, fmt.Errorf("days: %q is not a day (mon, tue, wed, thu, fri, sat, sun)", b)
		}
		for d := da; ; d = (d + 1) % 7 {
			ww.Days[d] = true
			if d == db {
				break
			}
		}
	}
	var err error
	if ww.From, err = parseClock(w.From); err != nil {
		return ww, fmt.Errorf("from: %v", err)
	}
	if ww.To, err = parseClock(w.To); err != nil {
		return ww, fmt.Errorf("to: %v", err)
	}
	if ww.From >= ww.To {
		return ww, fmt.Errorf("from %s must be before to %s", w.From, w.To)
	}
	return ww, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		if s == "24:00" {
			return 24 * 60, nil
		}
		return 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// parsePrefixOrAddr reads a CIDR, or a single address as its /32 or /128.
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (use e.g. 10.0.0.5/32)", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
