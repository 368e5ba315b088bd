package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"plateau/config"
	"plateau/sim"
)

// Registration trunks (issue 13 item 10): pstn-sim in registrar mode
// accepts calls only from a PBX registered with digest credentials, and
// delivers calls to the registered contact.

// startRegistrar runs pstn-sim as a registration-trunk carrier on
// 127.0.0.2 (the trunk source of the call tests); the binding it grants
// lasts at most maxExpires.
func startRegistrar(t *testing.T, password string, maxExpires time.Duration) *sim.PSTN {
	t.Helper()
	return startSim(t, func(cfg *sim.Config) {
		cfg.Auth = sim.AuthConfig{Username: "atelier", Password: password, Realm: "carrier"}
		cfg.Registrar = sim.RegistrarConfig{Enabled: true, MaxExpires: config.Duration(maxExpires)}
	})
}

// startRegTrunkServer starts plateau with one registration trunk toward
// carrier, the password Plateau uses being password.
func startRegTrunkServer(t *testing.T, carrier *sim.PSTN, password string) *plateau {
	t.Helper()
	need(t, "sipp")
	trunk := fmt.Sprintf(`trunks:
  - name: reg
    address: %q
    transport: udp
    auth: {username: atelier, password: %q}
    register: {expires: 600s, contact_user: atelier-pbx}
    caller_id: %q
    allowed_sources: [%q]
    options_interval: 0s
`, carrier.Addr().String(), password, callerID, trunkSources)
	p := startPlateau(t, serverOpts{
		users:      []user{{opExt, opPass}},
		policyYAML: "  windows: [{days: mon-sun, from: \"00:00\", to: \"24:00\"}]\n",
		extraYAML:  trunk,
	})
	approve(t, p, approved)
	return p
}

const mRegistered = `plateau_trunk_registered{trunk="reg"}`

func TestRegistrationTrunk(t *testing.T) {
	carrier := startRegistrar(t, "reg-secret", 4*time.Second)
	p := startRegTrunkServer(t, carrier, "reg-secret")

	waitMetric(t, p, mRegistered, 1)
	user, hostport, ok := carrier.Binding()
	if !ok || user != "atelier-pbx" || hostport != p.sipAddr() {
		t.Fatalf("carrier binding %q at %q (%v), want atelier-pbx at %s", user, hostport, ok, p.sipAddr())
	}
	// The carrier grants 4 s: Plateau renews at 80 % of it.
	eventually(t, "a renewed registration", func() (bool, string) {
		n := carrier.Registrations()
		return n >= 2, strconv.Itoa(n)
	})
	if reg := auditLines(t, p, "trunk.registration"); !strings.Contains(reg, "registered") {
		t.Errorf("audit has no trunk.registration registered:\n%s", reg)
	}

	// Out: the carrier accepts the registered PBX's call.
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "1500")
	op.mustSucceed(45 * time.Second)
	waitMetric(t, p, mAnswer, 1)

	// In: the carrier calls the registered contact; Plateau takes it as an
	// inbound call of the trunk and rings the operator.
	phonePort := registerSippPhone(t, p)
	phone := startSipp(t, "operator phone answers", "uas_answer.xml", "-p", phonePort)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := carrier.Call(ctx, hostport, user, approved, 1500*time.Millisecond)
	if err != nil || st.Status != 200 || !st.Answered {
		t.Fatalf("carrier's call to %s@%s: %+v, %v", user, hostport, st, err)
	}
	phone.mustSucceed(20 * time.Second)
	waitMetric(t, p, mAnswer, 2)
	waitMetric(t, p, mActive, 0)
	auditVerify(t, p)
}

// Wrong credentials: the registration fails (audited, gauge 0) and the
// trunk counts as down, so an operator call gets 503 and never reaches
// the carrier.
func TestRegistrationTrunkDownWhileUnregistered(t *testing.T) {
	carrier := startRegistrar(t, "reg-secret", time.Hour)
	p := startRegTrunkServer(t, carrier, "wrong-secret")

	eventually(t, "a failed registration audited", func() (bool, string) {
		reg := auditLines(t, p, "trunk.registration")
		return strings.Contains(reg, "failed"), reg
	})
	if v := p.metricOf(mRegistered); v != 0 {
		t.Errorf("%s = %v, want 0", mRegistered, v)
	}
	op := startOperator(t, p, "uac_503.xml", approved)
	op.mustSucceed(30 * time.Second)
	if calls := carrier.Calls(); len(calls) != 0 {
		t.Errorf("the carrier got %d calls from an unregistered PBX", len(calls))
	}
}
