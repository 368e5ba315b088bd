package sip

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// banStep is one event in a ban scenario: a failure or a success of an
// account from a source, and what must hold after it.
type banStep struct {
	op      string // "fail", "ok", "wait"
	account string
	src     string // "" for no source (not counted by source)
	wait    time.Duration

	// After the step (checked only when set).
	srcBan, accBan     bool   // fail: which bans this step started
	bannedSrc, freeSrc string // a source that must be / must not be banned
	bannedAcc, freeAcc string // an account that must be / must not be banned
}

func fails(n int, account, src string) []banStep {
	out := make([]banStep, n)
	for i := range out {
		out[i] = banStep{op: "fail", account: account, src: src}
	}
	return out
}

func steps(groups ...any) []banStep {
	var out []banStep
	for _, g := range groups {
		switch g := g.(type) {
		case banStep:
			out = append(out, g)
		case []banStep:
			out = append(out, g...)
		}
	}
	return out
}

func TestBanList(t *testing.T) {
	const max = 5
	window, duration := time.Minute, 15*time.Minute
	const S, S2, S3 = "192.0.2.7", "192.0.2.8", "2001:db8::9"

	tests := []struct {
		name  string
		steps []banStep
	}{
		{"N-1 failures ban nothing, the Nth bans source and account",
			steps(fails(max-1, "101", S),
				banStep{op: "fail", account: "101", src: S, srcBan: true, accBan: true, bannedSrc: S, bannedAcc: "101", freeSrc: S2, freeAcc: "102"},
				// Failures during a ban start no other (one log line, one metric).
				banStep{op: "fail", account: "101", src: S})},
		{"an account is banned by failures spread over sources",
			steps(fails(1, "101", S), fails(1, "101", S2), fails(1, "101", S3), fails(1, "101", "10.0.0.1"),
				banStep{op: "fail", account: "101", src: "10.0.0.2", accBan: true, bannedAcc: "101", freeSrc: S},
				banStep{op: "wait", freeSrc: S2, freeAcc: "102"})},
		{"a source is banned by failures spread over accounts",
			steps(fails(1, "101", S), fails(1, "102", S), fails(1, "103", S), fails(1, "104", S),
				banStep{op: "fail", account: "105", src: S, srcBan: true, bannedSrc: S, freeAcc: "101"})},
		{"success as oneself does not reset the brute force on another account",
			// The review's attack: guess 102's password, log in as 101, go on.
			steps(fails(max-1, "102", S), banStep{op: "ok", account: "101", src: S},
				banStep{op: "fail", account: "102", src: S, srcBan: true, accBan: true, bannedSrc: S, bannedAcc: "102", freeAcc: "101"})},
		{"success for A takes back only A's failures from that source",
			steps(fails(2, "101", S), fails(2, "102", S), banStep{op: "ok", account: "101", src: S},
				// The source has 2 (102's) left: 2 more do not ban it, the 3rd does.
				fails(2, "103", S),
				banStep{op: "fail", account: "103", src: S, srcBan: true, bannedSrc: S})},
		{"success for A from S keeps A's failures from other sources",
			steps(fails(2, "101", S2), fails(2, "101", S), banStep{op: "ok", account: "101", src: S},
				// 101 has 2 (from S2) left: 2 more from S3 do not ban, the 3rd does.
				fails(2, "101", S3),
				banStep{op: "fail", account: "101", src: S3, accBan: true, bannedAcc: "101", freeSrc: S3})},
		{"success for A does not touch B's failures",
			steps(fails(max-1, "102", S2), banStep{op: "ok", account: "101", src: S2}, banStep{op: "ok", account: "101", src: S},
				banStep{op: "fail", account: "102", src: S3, accBan: true, bannedAcc: "102"})},
		{"success forgets a user's own typos",
			steps(fails(max-1, "101", S), banStep{op: "ok", account: "101", src: S},
				fails(max-1, "101", S), banStep{op: "wait", freeSrc: S, freeAcc: "101"})},
		{"success lifts no ban",
			steps(fails(max-1, "101", S), banStep{op: "fail", account: "101", src: S, srcBan: true, accBan: true},
				banStep{op: "ok", account: "101", src: S, bannedSrc: S, bannedAcc: "101"})},
		{"failures without a source count on the account only",
			steps(fails(max-1, "101", ""), banStep{op: "fail", account: "101", accBan: true, bannedAcc: "101"})},
		{"failures without an account count on the source only",
			steps(fails(max-1, "", S), banStep{op: "fail", src: S, srcBan: true, bannedSrc: S, freeAcc: ""})},
		{"the window resets the counts",
			steps(fails(max-1, "101", S), banStep{op: "wait", wait: window + time.Second},
				fails(max-1, "101", S), banStep{op: "wait", freeSrc: S, freeAcc: "101"},
				banStep{op: "fail", account: "101", src: S, srcBan: true, accBan: true})},
		{"a success never takes back failures of an older window",
			steps(fails(max-1, "101", S), banStep{op: "wait", wait: window + time.Second},
				fails(max-1, "102", S), banStep{op: "ok", account: "101", src: S},
				banStep{op: "fail", account: "102", src: S, srcBan: true, accBan: true})},
		{"a ban ends after its duration and the count starts afresh",
			steps(fails(max-1, "101", S), banStep{op: "fail", account: "101", src: S, srcBan: true, accBan: true},
				banStep{op: "wait", wait: duration - time.Second - time.Nanosecond, bannedSrc: S, bannedAcc: "101"},
				banStep{op: "wait", wait: time.Nanosecond, freeSrc: S, freeAcc: "101"},
				fails(max-1, "101", S), banStep{op: "fail", account: "101", src: S, srcBan: true, accBan: true})},
		{"long usernames share the key of their first 64 bytes",
			steps(fails(max-1, string(make([]byte, 64))+"a", S2),
				banStep{op: "fail", account: string(make([]byte, 64)) + "b", src: S3, accBan: true})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			b := newBanList(max, window, duration, clk.now)
			addr := func(s string) netip.Addr {
				if s == "" {
					return netip.Addr{}
				}
				return netip.MustParseAddr(s)
			}
			for i, st := range tt.steps {
				switch st.op {
				case "fail":
					s, a, _ := b.fail(st.account, addr(st.src))
					if s != st.srcBan || a != st.accBan {
						t.Fatalf("step %d (fail %s from %s): started source ban %v, account ban %v; want %v, %v", i, st.account, st.src, s, a, st.srcBan, st.accBan)
					}
				case "ok":
					b.succeed(st.account, addr(st.src))
				case "wait":
					clk.advance(st.wait)
				}
				if st.bannedSrc != "" && !b.sourceBanned(addr(st.bannedSrc)) {
					t.Fatalf("step %d: source %s not banned", i, st.bannedSrc)
				}
				if st.freeSrc != "" && b.sourceBanned(addr(st.freeSrc)) {
					t.Fatalf("step %d: source %s banned", i, st.freeSrc)
				}
				if st.bannedAcc != "" && !b.accountBanned(st.bannedAcc) {
					t.Fatalf("step %d: account %s not banned", i, st.bannedAcc)
				}
				if st.freeAcc != "" && b.accountBanned(st.freeAcc) {
					t.Fatalf("step %d: account %s banned", i, st.freeAcc)
				}
				clk.advance(time.Second)
			}
		})
	}
}

func TestBanListMaxFailuresOne(t *testing.T) {
	clk := newClock()
	b := newBanList(1, time.Minute, time.Minute, clk.now)
	src := netip.MustParseAddr("192.0.2.1")
	if s, a, _ := b.fail("101", src); !s || !a || !b.sourceBanned(src) || !b.accountBanned("101") {
		t.Fatal("first failure did not ban")
	}
}

// The invalid address (a trusted proxy itself, or no source) is never banned.
func TestBanListNeverBansNoSource(t *testing.T) {
	clk := newClock()
	b := newBanList(2, time.Minute, time.Minute, clk.now)
	for i := 0; i < 10; i++ {
		b.fail(fmt.Sprint(i), netip.Addr{})
	}
	if b.sourceBanned(netip.Addr{}) {
		t.Fatal("the invalid address is banned")
	}
	if len(b.sources) != 0 || len(b.pairs) != 0 {
		t.Fatalf("%d sources, %d pairs tracked for no source", len(b.sources), len(b.pairs))
	}
}

func TestBanListSweep(t *testing.T) {
	clk := newClock()
	window, duration := time.Minute, 15*time.Minute
	b := newBanList(3, window, duration, clk.now)
	src, other := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.8")
	b.fail("101", other)
	for i := 0; i < 3; i++ {
		b.fail("102", src)
	}
	clk.advance(window + time.Second)
	if s, a := b.sweep(); s != 1 || a != 1 {
		t.Fatalf("sweep = %d sources, %d accounts banned; want 1, 1", s, a)
	}
	b.mu.Lock()
	ns, na, np := len(b.sources), len(b.accounts), len(b.pairs)
	b.mu.Unlock()
	// Kept: the banned source and account; the old failure and every pair
	// (their windows are over) are gone.
	if ns != 1 || na != 1 || np != 0 {
		t.Fatalf("after sweep: %d sources, %d accounts, %d pairs; want 1, 1, 0", ns, na, np)
	}
	clk.advance(duration)
	if s, a := b.sweep(); s != 0 || a != 0 {
		t.Fatalf("after the ban: sweep = %d, %d", s, a)
	}
	if len(b.sources)+len(b.accounts) != 0 {
		t.Fatal("entries kept after the ban")
	}
}

// A flood of random usernames and sources cannot grow the maps past their
// bound, and a banned entry is never evicted to make room.
func TestBanListBounded(t *testing.T) {
	clk := newClock()
	b := newBanList(2, time.Minute, time.Hour, clk.now)
	b.maxTracked = 64
	victim := netip.MustParseAddr("198.51.100.1")
	b.fail("101", victim)
	b.fail("101", victim) // bans both
	for i := 0; i < 10_000; i++ {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b.fail(fmt.Sprintf("u%d", i), src)
	}
	if len(b.sources) > 64 || len(b.accounts) > 64 || len(b.pairs) > 64 {
		t.Fatalf("maps grew past the bound: %d sources, %d accounts, %d pairs", len(b.sources), len(b.accounts), len(b.pairs))
	}
	if !b.sourceBanned(victim) || !b.accountBanned("101") {
		t.Fatal("a ban was evicted by the flood")
	}
	// Filled with bans, the maps cannot count a new failure, and say so
	// (eviction probes are random: fill until it happens, within a bound).
	reported := false
	for i := 0; i < 5000 && !reported; i++ {
		src := netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)})
		b.fail(fmt.Sprintf("b%d", i), src)
		b.fail(fmt.Sprintf("b%d", i), src)
		_, _, reported = b.fail(fmt.Sprintf("n%d", i), netip.AddrFrom4([4]byte{172, 17, byte(i >> 8), byte(i)}))
	}
	if !reported {
		t.Error("maps full of bans never reported an untracked failure")
	}
	if !b.sourceBanned(victim) || !b.accountBanned("101") || len(b.sources) > 64 || len(b.accounts) > 64 {
		t.Fatal("a ban was evicted, or the maps grew, while full of bans")
	}
}

// An IPv6 host holds a whole /64: guesses from fresh addresses of it count
// as one source, and the ban covers the /64, not its neighbours.
func TestBanListIPv6CountsTheHost(t *testing.T) {
	clk := newClock()
	b := newBanList(3, time.Minute, time.Minute, clk.now)
	for i, a := range []string{"2001:db8::1", "2001:db8::2:3", "2001:db8::ffff:1"} {
		srcBanned, _, _ := b.fail(fmt.Sprintf("10%d", i), netip.MustParseAddr(a))
		if want := i == 2; srcBanned != want {
			t.Fatalf("failure %d from %s: source banned = %v, want %v", i+1, a, srcBanned, want)
		}
	}
	for a, want := range map[string]bool{
		"2001:db8::99": true, "2001:db8:0:0:1::1": true, // same /64
		"2001:db8:0:1::1": false, "192.0.2.1": false, "::ffff:192.0.2.1": false,
	} {
		if got := b.sourceBanned(netip.MustParseAddr(a)); got != want {
			t.Errorf("sourceBanned(%s) = %v, want %v", a, got, want)
		}
	}
}
