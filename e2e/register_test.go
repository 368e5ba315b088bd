package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// bulkUsers are the 100 users SIPp registers: 1000..1099, password pw-EXT.
func bulkUsers() []user {
	var us []user
	for i := range 100 {
		ext := fmt.Sprint(1000 + i)
		us = append(us, user{ext, "pw-" + ext})
	}
	return us
}

func rows(us []user, password func(user) string, expires int) []string {
	var out []string
	for _, u := range us {
		out = append(out, fmt.Sprintf("%s;%s;%d", u.ext, password(u), expires))
	}
	return out
}

func realPassword(u user) string { return u.password }

func TestRegistrar(t *testing.T) {
	users := append(bulkUsers(), user{"101", "demo101"}, user{"102", "demo102"}, user{"103", "demo103"})
	p := startPlateau(t, serverOpts{users: users})

	t.Run("SIPp registers 100 users with digest auth", func(t *testing.T) {
		res := runSipp(t, p, "register_auth.xml", rows(bulkUsers(), realPassword, 3600), "-r", "50", "-l", "100")
		if res.exit != 0 {
			t.Fatalf("sipp exit %d\nerrors:\n%s\noutput:\n%s", res.exit, tail(res.errLog, 3000), tail(res.output, 3000))
		}
		if got := p.metric("plateau_sip_registrations_active"); got != 100 {
			t.Errorf("plateau_sip_registrations_active = %v, want 100", got)
		}
		eventually(t, "100 registrations in plateau user list", func() (bool, string) {
			regs := p.registered()
			n := 0
			for _, u := range bulkUsers() {
				if strings.Contains(regs[u.ext], "sip:"+u.ext+"@127.0.0.1") {
					n++
				}
			}
			return n == 100, fmt.Sprintf("%d registered", n)
		})
	})

	t.Run("a wrong password never gets 200", func(t *testing.T) {
		before := p.metric("plateau_sip_auth_failures_total")
		res := runSipp(t, p, "register_wrong.xml", rows(bulkUsers()[:20], func(u user) string { return u.password + "x" }, 3600), "-r", "50")
		if res.exit != 0 {
			t.Fatalf("sipp exit %d (a call did not end in 401)\nerrors:\n%s", res.exit, tail(res.errLog, 3000))
		}
		if got := p.metric("plateau_sip_auth_failures_total") - before; got != 20 {
			t.Errorf("auth failures grew by %v, want 20", got)
		}
		c := newClient(t, p, "101", "not-demo101")
		if r := c.register("Contact: <sip:101@" + c.local() + ">"); r == nil || r.status != 401 {
			t.Fatalf("Go client, wrong password: %v, want 401", r)
		}
	})

	t.Run("an unknown user is answered like a wrong password", func(t *testing.T) {
		type answer struct {
			status     int
			names      []string
			challenges []string
		}
		look := func(ext string) (first, second answer) {
			c := newClient(t, p, ext, "guess")
			contact := "Contact: <sip:" + ext + "@" + c.local() + ">"
			for i, a := range []*answer{&first, &second} {
				r := c.request("REGISTER", "", contact)
				if r == nil {
					t.Fatalf("%s: request %d got no answer", ext, i+1)
				}
				a.status = r.status
				for _, h := range r.headers {
					a.names = append(a.names, h[0])
				}
				for _, v := range r.all("WWW-Authenticate") {
					a.challenges = append(a.challenges, parseChallenge(v).shape())
				}
			}
			return
		}
		k1, k2 := look("102")
		u1, u2 := look("4242")
		for _, pair := range [][2]answer{{k1, u1}, {k2, u2}} {
			k, u := pair[0], pair[1]
			if k.status != 401 || k.status != u.status || !slices.Equal(k.names, u.names) || !slices.Equal(k.challenges, u.challenges) {
				t.Fatalf("known user, wrong password: %+v\nunknown user: %+v", k, u)
			}
		}
	})

	t.Run("Expires 0 removes a binding, Contact * all of them", func(t *testing.T) {
		c := newClient(t, p, "102", "demo102")
		a := "sip:102@" + c.local()
		b := "sip:102@127.0.0.1:9" // a second phone of the same user
		for _, contact := range []string{a, b} {
			if r := c.register("Contact: <"+contact+">", "Expires: 600"); r == nil || r.status != 200 {
				t.Fatalf("REGISTER %s: %v", contact, r)
			}
		}
		listed := func(want ...string) func() (bool, string) {
			return func() (bool, string) {
				reg := p.registered()["102"]
				for _, w := range want {
					if !strings.Contains(reg, w+" ") {
						return false, reg
					}
				}
				n := strings.Count(reg, "sip:")
				return n == len(want), reg
			}
		}
		eventually(t, "two bindings listed", listed(a, b))
		if r := c.register("Contact: <"+a+">", "Expires: 0"); r == nil || r.status != 200 {
			t.Fatalf("Expires: 0: %v", r)
		}
		eventually(t, "one binding left", listed(b))
		if r := c.register("Contact: <"+a+">", "Expires: 600"); r == nil || r.status != 200 {
			t.Fatalf("REGISTER again: %v", r)
		}
		eventually(t, "two bindings again", listed(a, b))
		if r := c.register("Contact: *", "Expires: 0"); r == nil || r.status != 200 {
			t.Fatalf("Contact: *: %v", r)
		}
		eventually(t, "no binding left", listed())
		if reg := p.registered()["102"]; reg != "-" {
			t.Errorf("REGISTERED column = %q, want -", reg)
		}
	})

	t.Run("expires below min_expires gets 423 with Min-Expires", func(t *testing.T) {
		c := newClient(t, p, "102", "demo102")
		r := c.register("Contact: <sip:102@"+c.local()+">", "Expires: 30")
		if r == nil || r.status != 423 || r.get("Min-Expires") != "60" {
			t.Fatalf("Expires: 30: %v, want 423 with Min-Expires: 60", r)
		}
	})

	t.Run("TCP registration", func(t *testing.T) {
		us := bulkUsers()[:10]
		res := runSipp(t, p, "register_auth.xml", rows(us, realPassword, 600), "-t", "t1", "-r", "20")
		if res.exit != 0 {
			t.Fatalf("sipp -t t1 exit %d\nerrors:\n%s\noutput:\n%s", res.exit, tail(res.errLog, 3000), tail(res.output, 3000))
		}
		eventually(t, "TCP bindings listed", func() (bool, string) {
			regs := p.registered()
			n := 0
			for _, u := range us {
				if strings.Contains(regs[u.ext], "(tcp,") {
					n++
				}
			}
			return n == len(us), fmt.Sprintf("%d over tcp", n)
		})
	})

	t.Run("a suspended user gets 403", func(t *testing.T) {
		c := newClient(t, p, "103", "demo103")
		contact := "Contact: <sip:103@" + c.local() + ">"
		if r := c.register(contact); r == nil || r.status != 200 {
			t.Fatalf("before suspension: %v", r)
		}
		if out, err := p.plateauCmd("user", "suspend", "103"); err != nil {
			t.Fatalf("plateau user suspend: %v\n%s", err, out)
		}
		r := c.register(contact)
		if r == nil || r.status != 403 || !strings.Contains(r.get("Reason"), "OPERATOR_SUSPENDED") {
			t.Fatalf("suspended, right password: %v, want 403 OPERATOR_SUSPENDED", r)
		}
		if out, err := p.plateauCmd("user", "activate", "103"); err != nil {
			t.Fatalf("plateau user activate: %v\n%s", err, out)
		}
		if r := c.register(contact); r == nil || r.status != 200 {
			t.Fatalf("activated again: %v", r)
		}
	})

	t.Run("OPTIONS gets 200", func(t *testing.T) {
		c := newClient(t, p, "999", "")
		if r := c.request("OPTIONS", ""); r == nil || r.status != 200 {
			t.Fatalf("OPTIONS: %v", r)
		}
	})

	// baresip: TestBaresipShippedDigestSettings (auth_test.go), with the
	// digest settings of configs/plateau.yaml rather than this harness's.
}

// A source that fails N times is banned: it gets no answer at all.
func TestBan(t *testing.T) {
	p := startPlateau(t, serverOpts{users: []user{{"101", "demo101"}}, maxFailures: 3, algorithms: "[SHA-256, MD5]"})
	bad := newClient(t, p, "101", "guess")
	contact := "Contact: <sip:101@" + bad.local() + ">"
	if r := bad.request("REGISTER", "", contact); r == nil || r.status != 401 {
		t.Fatalf("first REGISTER: %v", r)
	}
	for i := 1; i <= 3; i++ {
		if r := bad.request("REGISTER", "", contact); r == nil || r.status != 401 {
			t.Fatalf("wrong password %d: %v, want 401", i, r)
		}
	}
	if got := p.metric("plateau_sip_bans_total"); got != 1 {
		t.Errorf("plateau_sip_bans_total = %v, want 1", got)
	}
	// Banned by address: a new port, the right password or OPTIONS get nothing.
	good := newClient(t, p, "101", "demo101")
	if r := good.do(good.build("OPTIONS"), 3*time.Second); r != nil {
		t.Fatalf("banned source, OPTIONS: %v, want no answer", r)
	}
	if r := good.do(good.build("REGISTER", "Contact: <sip:101@"+good.local()+">"), 3*time.Second); r != nil {
		t.Fatalf("banned source, REGISTER: %v, want no answer", r)
	}
	if got := p.metric("plateau_sip_bans_total"); got != 1 {
		t.Errorf("plateau_sip_bans_total = %v after more requests, want 1", got)
	}
	eventually(t, "the ban is logged", func() (bool, string) {
		logs := p.logs.String()
		return strings.Contains(logs, "sip source banned") && strings.Contains(logs, "source=127.0.0.1"), "no log line"
	})
}

// testBaresip registers a real softphone, headless, and checks the binding.
func testBaresip(t *testing.T, p *plateau, ext, pass string) {
	b := startBaresip(t, baresipOpts{
		account: fmt.Sprintf("<sip:%s@%s;transport=udp>;auth_pass=%s;regint=600", ext, p.sipAddr(), pass),
		quit:    45 * time.Second, timeout: 60 * time.Second,
	})
	defer b.stop()
	// baresip writes its own user part in Contact (e.g. 101-0x55fd...).
	b.waitRegistered(p, ext, fmt.Sprintf("@127.0.0.1:%d", b.port), 20*time.Second)
	if !strings.Contains(b.out.String(), "200 OK") {
		t.Errorf("baresip did not report 200 OK:\n%s", b.out.String())
	}
}
