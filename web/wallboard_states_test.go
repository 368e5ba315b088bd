package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"plateau/audit"
	"plateau/b2bua"
	"plateau/config"
	"plateau/dialer"
	"plateau/media"
	"plateau/policy"
)

// fakeModer is the SIP server's monitoring with sessions in progress.
type fakeModer struct {
	fakeMonitor
	mu       sync.Mutex
	sessions []b2bua.MonitorInfo
	set      []string
}

func (m *fakeModer) MonitorSessions() []b2bua.MonitorInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]b2bua.MonitorInfo(nil), m.sessions...)
}

func (m *fakeModer) SetMonitorMode(sup, op string, mode media.MonitorMode) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, s := range m.sessions {
		if s.Supervisor == sup && s.Operator == op {
			m.sessions[i].Mode = mode.String()
			m.set = append(m.set, sup+">"+op+":"+mode.String())
			return s.ID, nil
		}
	}
	return "", b2bua.ErrNoActiveCall
}

// The wallboard shows the real states: phone off, available, ringing or
// in a call (with who listens), wrap-up, paused with its reason,
// suspended; « Chuchoter » after « Écouter » changes the session's mode.
func TestWallboardStates(t *testing.T) {
	mod := &fakeModer{fakeMonitor: fakeMonitor{next: "mon-1"}}
	calls := &fakeCalls{}
	var svc *dialer.Service
	f := newFixture(t, func(d *Deps) {
		weekday := [7]bool{false, true, true, true, true, true, false}
		ws, err := policy.NewWindows(d.Location, []config.WeeklyWindow{{Days: weekday, From: 7*60 + 30, To: 18 * 60}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if svc, err = dialer.New(d.Store, ws, "FR", dialer.WithClock(d.Now)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		d.Dialer, d.Calls, d.Monitor = svc, calls, mod
	})
	cf := &consoleFixture{fixture: f, calls: calls, dial: svc}
	cf.register("101")
	state := func(ext string) string {
		t.Helper()
		_, body := cf.as("201").get("/supervisor")
		i := strings.Index(body, `<tr data-ext="`+ext+`">`)
		if i < 0 {
			t.Fatalf("no row for %s", ext)
		}
		row := body[i:]
		row = row[:strings.Index(row, "</tr>")]
		return row
	}
	if !strings.Contains(state("101"), `wstate available">disponible`) || !strings.Contains(state("102"), `wstate off">téléphone éteint`) ||
		!strings.Contains(state("103"), `wstate suspended">compte suspendu`) {
		t.Fatalf("101 %s\n102 %s\n103 %s", state("101"), state("102"), state("103"))
	}
	// 102 goes to the infirmary; an unknown reason is refused.
	op := cf.as("102")
	if res, _ := op.api("POST", "/api/v1/me/pause", map[string]string{"reason": "cigarette"}); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown reason: %d", res.StatusCode)
	}
	if res, _ := op.api("POST", "/api/v1/me/pause", map[string]string{"reason": "medical"}); res.StatusCode != http.StatusOK {
		t.Fatalf("pause: %d", res.StatusCode)
	}
	cf.clock.Add(3 * time.Minute)
	if row := state("102"); !strings.Contains(row, `wstate paused">en pause (infirmerie)`) || !strings.Contains(row, `data-elapsed="180"`) {
		t.Fatalf("paused: %s", row)
	}
	if res, _ := cf.as("201").api("POST", "/api/v1/me/pause", map[string]string{"reason": "visit"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a supervisor pauses: %d", res.StatusCode)
	}
	op.api("POST", "/api/v1/me/pause", map[string]string{"reason": ""})
	if !strings.Contains(state("102"), `wstate off"`) {
		t.Fatal("back from pause")
	}
	if recs, _ := cf.audit.List(context.Background(), audit.Filter{Actor: "102"}); len(recs) < 2 || recs[0].Entry.Kind != "operator.resume" ||
		recs[0].Entry.Reason != "medical" || recs[1].Entry.Kind != "operator.pause" {
		t.Fatalf("pause audit: %+v", recs)
	}
	// 101 calls a contact: wrap-up until the outcome is entered.
	c := cf.campaign("archi", csvTwo, true)
	l, err := svc.Next(t.Context(), "101", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordAttempt(t.Context(), dialer.Attempt{ContactID: l.Contact.ID, Operator: "101", Outcome: dialer.Busy, SIPStatus: 486}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(state("101"), `wstate wrap_up">saisit l&#39;issue`) {
		t.Fatalf("wrap-up: %s", state("101"))
	}
	// In a call, with supervisor 201 listening.
	now := cf.clock.Now()
	calls.set(b2bua.CallInfo{ID: "c1", Operator: "101", Number: "+33240123456", State: "connected", Start: now, Answered: now})
	mod.sessions = []b2bua.MonitorInfo{{ID: "mon-1", Supervisor: "201", Operator: "101", Mode: "listen", Since: now}}
	row := state("101")
	if !strings.Contains(row, `wstate in_call">en communication`) || !strings.Contains(row, "écouté par 201 (écoute)") ||
		!strings.Contains(row, `data-confirm="Intervenir dans l&#39;appel`) {
		t.Fatalf("in call: %s", row)
	}
	// « Chuchoter »: the session's mode changes, the phone does not ring again.
	res, body := cf.as("201").api("POST", "/api/v1/monitor", map[string]string{"operator": "101", "mode": "whisper"})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Mode changé : chuchotement") || len(mod.set) != 1 || len(mod.got) != 0 {
		t.Fatalf("mode switch: %d %s set %v rang %v", res.StatusCode, body, mod.set, mod.got)
	}
	if !strings.Contains(state("101"), "écouté par 201 (chuchotement)") {
		t.Fatal("the wallboard does not show the new mode")
	}
}
