package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"plateau/config"
)

// The registrar mode: calls refused until the PBX registers with the right
// credentials; the binding is kept, capped, and removed by Expires: 0.
func TestRegistrarMode(t *testing.T) {
	p := startPSTN(t, func(c *Config) {
		c.Auth = AuthConfig{Username: "101", Password: "right", Realm: "carrier"}
		c.Registrar = RegistrarConfig{Enabled: true, MaxExpires: config.Duration(10 * time.Minute)}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ph, _ := newTestPhone(t, p.Addr().String(), "udp", "right")
	var se *StatusError
	if _, err := ph.Dial(ctx, "0240123456"); !errors.As(err, &se) || se.Status != 403 {
		t.Fatalf("call before registering: %v, want 403", err)
	}

	bad, _ := newTestPhone(t, p.Addr().String(), "udp", "wrong")
	if err := bad.Register(ctx, time.Hour); err == nil {
		t.Fatal("registered with a wrong password")
	}
	if _, _, ok := p.Binding(); ok {
		t.Fatal("a failed registration left a binding")
	}

	if err := ph.Register(ctx, time.Hour); err != nil {
		t.Fatalf("register: %v", err)
	}
	user, hp, ok := p.Binding()
	if !ok || user != "101" || hp != ph.Addr().String() {
		t.Fatalf("binding %q %q %v, want 101 at %s", user, hp, ok, ph.Addr())
	}
	call, err := ph.Dial(ctx, "0240123456")
	if err != nil {
		t.Fatalf("call once registered: %v", err)
	}
	call.Hangup(ctx)
	waitFor(t, "PSTN call end", func() bool { return !lastCall(p).End.IsZero() })

	if err := ph.Unregister(ctx); err != nil {
		t.Fatalf("unregister: %v", err)
	}
	if _, _, ok := p.Binding(); ok {
		t.Fatal("binding left after Expires: 0")
	}
	if n := p.Registrations(); n != 1 {
		t.Errorf("%d registrations counted, want 1", n)
	}
}

func TestRegistrarNeedsAuth(t *testing.T) {
	c := DefaultConfig()
	c.Registrar.Enabled = true
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "registrar.enabled") {
		t.Fatalf("registrar without auth: %v, want an error naming registrar.enabled", err)
	}
}
