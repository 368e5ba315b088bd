package sip

import (
	"net/netip"
	"sync"
	"time"
)

// banList counts failed authentications per source address and per
// account. A source that fails maxFailures times inside window (whatever
// the accounts tried) is ignored for duration; an account that fails
// maxFailures times inside window (from whatever sources) is refused for
// duration, exactly as a wrong password is (no enumeration).
//
// Each failure is also remembered per (account, source) pair, so that a
// success for account A from source S takes back only the failures A had
// from S: neither S's failures on other accounts nor A's failures from
// other sources. Logging in as oneself therefore never resets a brute force
// on someone else, and spreading guesses over sources still bans the
// account.
//
// Memory is bounded: each map holds at most maxTracked entries. When one
// is full, a few entries are probed and one that is not banned is evicted
// (its count is lost, which only delays a ban); when every probed entry is
// banned, the new failure is not tracked on that map.
type banList struct {
	maxFailures int
	window      time.Duration
	duration    time.Duration
	now         func() time.Time
	maxTracked  int

	mu       sync.Mutex
	gens     uint64 // window generations, unique across the maps (never reused)
	sources  map[netip.Addr]*banState
	accounts map[string]*banState
	pairs    map[banPair]*pairState
}

type banState struct {
	failures    int
	windowStart time.Time
	bannedUntil time.Time
	gen         uint64 // which window: grows at each new window and ban
}

// banPair is one account tried from one source.
type banPair struct {
	account string
	src     netip.Addr
}

// pairState is how many of the failures counted in the source's and the
// account's current windows came from this pair; a window is identified by
// its generation, so counts from an older window are never taken back.
type pairState struct {
	srcFailures, accFailures int
	srcGen, accGen           uint64
}

// maxBanTracked bounds each of the ban list's maps: a flood of random
// usernames or sources cannot grow memory past it (about 10 MB each).
const maxBanTracked = 100_000

// maxAccountKey bounds the length of an account key: usernames come from
// outside and longer ones are cut (two long names sharing a prefix then
// share a count, which only bans sooner).
const maxAccountKey = 64

// banEvictProbes is how many entries a full map probes for one to evict.
const banEvictProbes = 8

func newBanList(maxFailures int, window, duration time.Duration, now func() time.Time) *banList {
	return &banList{
		maxFailures: maxFailures, window: window, duration: duration, now: now, maxTracked: maxBanTracked,
		sources: map[netip.Addr]*banState{}, accounts: map[string]*banState{}, pairs: map[banPair]*pairState{},
	}
}

// sourceKey is the host a source address is counted on: the address
// itself for IPv4, its /64 for IPv6, since one host holds a whole /64 and
// could otherwise give each guess a fresh address.
func sourceKey(src netip.Addr) netip.Addr {
	src = src.Unmap()
	if !src.Is6() {
		return src
	}
	p, _ := src.Prefix(64)
	return p.Addr()
}

func accountKey(account string) string {
	if len(account) > maxAccountKey {
		return account[:maxAccountKey]
	}
	return account
}

// sourceBanned reports whether src is currently banned.
func (b *banList) sourceBanned(src netip.Addr) bool {
	src = sourceKey(src)
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sources[src]
	return ok && b.now().Before(s.bannedUntil)
}

// accountBanned reports whether account is currently banned.
func (b *banList) accountBanned(account string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.accounts[accountKey(account)]
	return ok && b.now().Before(s.bannedUntil)
}

// fail records a failure of account (empty when the credentials named
// none) from src (invalid when the source must not be counted: unknown, or
// a trusted proxy itself) and reports which bans it started. untracked is
// set when a full map could not count it (a flood of names or sources).
func (b *banList) fail(account string, src netip.Addr) (srcBanned, accBanned, untracked bool) {
	now := b.now()
	account = accountKey(account)
	if src.IsValid() {
		src = sourceKey(src)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var ps *pairState
	if src.IsValid() && account != "" {
		ps = getOrAdd(b, b.pairs, banPair{account, src}, func() *pairState { return &pairState{} }, nil)
	}
	if src.IsValid() {
		if s := getOrAdd(b, b.sources, src, b.newState(now), bannedNow(now)); s == nil {
			untracked = true
		} else {
			var counted bool
			srcBanned, counted = b.count(s, now)
			if counted && ps != nil {
				if ps.srcGen != s.gen {
					ps.srcFailures, ps.srcGen = 0, s.gen
				}
				ps.srcFailures++
			}
		}
	}
	if account != "" {
		if s := getOrAdd(b, b.accounts, account, b.newState(now), bannedNow(now)); s == nil {
			untracked = true
		} else {
			var counted bool
			accBanned, counted = b.count(s, now)
			if counted && ps != nil {
				if ps.accGen != s.gen {
					ps.accFailures, ps.accGen = 0, s.gen
				}
				ps.accFailures++
			}
		}
	}
	return srcBanned, accBanned, untracked
}

// count adds a failure to s; it reports whether that started a ban, and
// whether the failure stays counted (a success may take it back): not
// during a ban, nor the failure that starts one. A ban clears the count
// and starts a new window, so no failure from before it is taken back.
func (b *banList) count(s *banState, now time.Time) (banned, counted bool) {
	if now.Before(s.bannedUntil) {
		return false, false
	}
	if now.Sub(s.windowStart) > b.window {
		s.failures, s.windowStart = 0, now
		s.gen = b.nextGen()
	}
	s.failures++
	if s.failures >= b.maxFailures {
		s.bannedUntil = now.Add(b.duration)
		s.failures = 0
		s.windowStart = now
		s.gen = b.nextGen()
		return true, false
	}
	return false, true
}

func (b *banList) nextGen() uint64 {
	b.gens++
	return b.gens
}

func (b *banList) newState(now time.Time) func() *banState {
	return func() *banState { return &banState{windowStart: now, gen: b.nextGen()} }
}

// succeed takes back the failures account had from src in the current
// windows, after account authenticated from src. It lifts no ban and
// touches no other pair.
func (b *banList) succeed(account string, src netip.Addr) {
	if !src.IsValid() || account == "" {
		return
	}
	account, src = accountKey(account), sourceKey(src)
	b.mu.Lock()
	defer b.mu.Unlock()
	key := banPair{account, src}
	ps, ok := b.pairs[key]
	if !ok {
		return
	}
	delete(b.pairs, key)
	now := b.now()
	if s, ok := b.sources[src]; ok && ps.srcGen == s.gen && !now.Before(s.bannedUntil) {
		s.failures = max(0, s.failures-ps.srcFailures)
	}
	if s, ok := b.accounts[account]; ok && ps.accGen == s.gen && !now.Before(s.bannedUntil) {
		s.failures = max(0, s.failures-ps.accFailures)
	}
}

// sweep drops entries whose window and ban are over, and pairs whose
// counts belong to no current window; it returns the banned counts.
func (b *banList) sweep() (sources, accounts int) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	sources = sweepStates(b.sources, now, b.window)
	accounts = sweepStates(b.accounts, now, b.window)
	for k, ps := range b.pairs {
		s, sok := b.sources[k.src]
		a, aok := b.accounts[k.account]
		live := (sok && ps.srcGen == s.gen) || (aok && ps.accGen == a.gen)
		if !live {
			delete(b.pairs, k)
		}
	}
	return sources, accounts
}

func sweepStates[K comparable](m map[K]*banState, now time.Time, window time.Duration) int {
	n := 0
	for k, s := range m {
		switch {
		case now.Before(s.bannedUntil):
			n++
		case now.Sub(s.windowStart) > window:
			delete(m, k)
		}
	}
	return n
}

func bannedNow(now time.Time) func(*banState) bool {
	return func(s *banState) bool { return now.Before(s.bannedUntil) }
}

// getOrAdd returns m[k], adding a new entry when there is room (evicting
// an entry that keep does not protect when the map is full); nil when the
// map is full of protected entries.
func getOrAdd[K comparable, V any](b *banList, m map[K]*V, k K, mk func() *V, keep func(*V) bool) *V {
	if v, ok := m[k]; ok {
		return v
	}
	if len(m) >= b.maxTracked {
		probes := 0
		for ek, ev := range m { // map order is random: a random probe
			if keep == nil || !keep(ev) {
				delete(m, ek)
				break
			}
			if probes++; probes >= banEvictProbes {
				return nil
			}
		}
		if len(m) >= b.maxTracked {
			return nil
		}
	}
	v := mk()
	m[k] = v
	return v
}
