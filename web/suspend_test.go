package web

import (
	"sync"
	"testing"
)

// endingCalls is the SIP server's calls with EndCallsOf, as b2bua.B2BUA has.
type endingCalls struct {
	fakeCalls
	mu    sync.Mutex
	ended []string
}

func (e *endingCalls) EndCallsOf(ext, why string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ended = append(e.ended, ext+" "+why)
	return 1
}

// Suspending a user ends what they have in progress on the phones (an
// inmate taken off the phones must not stay on the line); reactivating
// ends nothing.
func TestSuspendEndsCallsInProgress(t *testing.T) {
	calls := &endingCalls{}
	f := newFixture(t, func(d *Deps) { d.Calls = calls })
	adm := f.as("401")
	if res, body := adm.api("POST", "/api/v1/users/101/suspend", map[string]string{"reason": "incident"}); res.StatusCode != 200 {
		t.Fatalf("suspend: %d %s", res.StatusCode, body)
	}
	if res, body := adm.api("POST", "/api/v1/users/101/activate", nil); res.StatusCode != 200 {
		t.Fatalf("activate: %d %s", res.StatusCode, body)
	}
	calls.mu.Lock()
	defer calls.mu.Unlock()
	if len(calls.ended) != 1 || calls.ended[0] != "101 user_suspended" {
		t.Errorf("calls ended %v, want once for 101 on the suspension", calls.ended)
	}
}
