package srtp

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/replaydetector"
)

// DefaultReplayWindow is the SRTP replay window in packets: RFC 3711 asks
// for at least 64; 1024 (20 s of 20 ms audio) keeps packets reordered on
// a long internet path while still refusing every replay. (A peer's WSH
// hint is parsed but not applied: 1024 is above what anyone asks.)
const DefaultReplayWindow = 1024

// srtcpReplayWindow: RTCP is a few packets per call-minute.
const srtcpReplayWindow = 64

// Index limits from RFC 3711: 48-bit SRTP index, 31-bit SRTCP index.
const (
	maxSRTPIndex  = 1<<48 - 1
	maxSRTCPIndex = 1<<31 - 1
)

// Session protects one media stream: what Plateau sends with its own
// master key (local), what it receives with the peer's (remote). It is
// safe for concurrent use; sends and receives have separate locks, so a
// receive never waits for a send.
type Session struct {
	txMu    sync.Mutex
	tx      *pion.Context
	txLimit uint64 // packets the local key may still protect
	txUsed  uint64
	txHdr   rtp.Header // reused: a header per call would escape to the heap
	txRTCP  rtcp.Header

	rxMu     sync.Mutex
	suite    Suite
	rx       *pion.Context
	rxLimit  uint64
	rxUsed   uint64
	rxHdr    rtp.Header
	rxRTCP   rtcp.Header
	replayed bool // set by the replay detector during one unprotect
}

// NewSession keys a Session: local is the attribute Plateau signalled
// (its key protects what Plateau sends), remote the peer's (its key
// unprotects what Plateau receives). Both must be of the same suite, as
// RFC 4568 7.1.2 requires of an answer. Replay protection is always on.
func NewSession(local, remote Crypto) (*Session, error) {
	if err := local.Validate(); err != nil {
		return nil, fmt.Errorf("local key: %w", err)
	}
	if err := remote.Validate(); err != nil {
		return nil, fmt.Errorf("remote key: %w", err)
	}
	if local.Suite != remote.Suite {
		return nil, fmt.Errorf("%w: %s and %s", ErrSuiteMismatch, local.Suite, remote.Suite)
	}
	s := &Session{txLimit: lifetime(local), rxLimit: lifetime(remote), suite: local.Suite}
	var err error
	if s.tx, err = newContext(local, nil); err != nil {
		return nil, fmt.Errorf("local key: %w", err)
	}
	if s.rx, err = newContext(remote, &s.replayed); err != nil {
		return nil, fmt.Errorf("remote key: %w", err)
	}
	return s, nil
}

// SetRemote re-keys the receive side with the peer's new attribute (a
// re-INVITE with a new key): packets under the old key fail
// authentication from now on, and the replay window starts afresh with
// the new key. The send side keeps its key and its packet index, so no
// keystream is ever reused. The suite must not change.
func (s *Session) SetRemote(remote Crypto) error {
	if err := remote.Validate(); err != nil {
		return fmt.Errorf("remote key: %w", err)
	}
	if remote.Suite != s.suite {
		return fmt.Errorf("%w: %s and %s", ErrSuiteMismatch, s.suite, remote.Suite)
	}
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	rx, err := newContext(remote, &s.replayed)
	if err != nil {
		return fmt.Errorf("remote key: %w", err)
	}
	s.rx, s.rxLimit, s.rxUsed = rx, lifetime(remote), 0
	return nil
}

func lifetime(c Crypto) uint64 {
	if c.Lifetime == 0 {
		return maxSRTPIndex + 1
	}
	return c.Lifetime
}

// newContext builds a pion context; with flag set, replay protection is on
// and the detector raises *flag when it refuses an index, so Unprotect
// can tell a replay from a forgery.
func newContext(c Crypto, flag *bool) (*pion.Context, error) {
	var opts []pion.ContextOption
	if len(c.MKI) > 0 {
		opts = append(opts, pion.MasterKeyIndicator(c.MKI))
	}
	if flag != nil {
		opts = append(opts,
			pion.SRTPReplayDetectorFactory(func() replaydetector.ReplayDetector {
				return newFlagDetector(replaydetector.New(DefaultReplayWindow, maxSRTPIndex), flag)
			}),
			pion.SRTCPReplayDetectorFactory(func() replaydetector.ReplayDetector {
				return newFlagDetector(replaydetector.New(srtcpReplayWindow, maxSRTCPIndex), flag)
			}))
	}
	return pion.CreateContext(c.Key, c.Salt, suites[c.Suite].profile, opts...)
}

// flagDetector wraps pion's sliding window and records a refusal. It keeps
// the two-phase CheckAccepter path (no allocation per packet).
type flagDetector struct {
	d    replaydetector.CheckAccepter
	flag *bool
}

func newFlagDetector(d replaydetector.ReplayDetector, flag *bool) *flagDetector {
	return &flagDetector{d: d.(replaydetector.CheckAccepter), flag: flag}
}

func (f *flagDetector) Check(seq uint64) (func() bool, bool) {
	tok := f.CheckSeq(seq)
	return func() bool { return f.d.Accept(tok) }, tok.Passed()
}

func (f *flagDetector) CheckSeq(seq uint64) replaydetector.Token {
	tok := f.d.CheckSeq(seq)
	if !tok.Passed() {
		*f.flag = true
	}
	return tok
}

func (f *flagDetector) Accept(tok replaydetector.Token) bool { return f.d.Accept(tok) }

// ProtectRTP encrypts and authenticates one RTP packet, appending the
// result to dst[:0] (give a buffer with room for the packet plus 16 bytes
// and nothing is allocated). The packet must not be used for anything
// else afterwards than what was just protected: the caller hands its
// plaintext to the recording tap before calling this.
func (s *Session) ProtectRTP(dst, pkt []byte) ([]byte, error) {
	return s.protect(func() ([]byte, error) { return s.tx.EncryptRTP(dst[:0], pkt, &s.txHdr) })
}

// UnprotectRTP authenticates and decrypts one SRTP packet into dst[:0]
// (pkt[:0] decrypts in place).
// On error the packet must be dropped; the error wraps ErrAuth (forged,
// tampered or wrong key), ErrReplay (index already seen or too old),
// ErrMalformed or ErrKeyExhausted.
func (s *Session) UnprotectRTP(dst, pkt []byte) ([]byte, error) {
	return s.unprotect(func() ([]byte, error) { return s.rx.DecryptRTP(dst[:0], pkt, &s.rxHdr) })
}

// ProtectRTCP encrypts (SRTCP E flag set) and authenticates one compound
// RTCP packet into dst[:0].
func (s *Session) ProtectRTCP(dst, pkt []byte) ([]byte, error) {
	return s.protect(func() ([]byte, error) { return s.tx.EncryptRTCP(dst[:0], pkt, &s.txRTCP) })
}

// UnprotectRTCP authenticates and decrypts one SRTCP packet into dst[:0];
// errors as UnprotectRTP.
func (s *Session) UnprotectRTCP(dst, pkt []byte) ([]byte, error) {
	return s.unprotect(func() ([]byte, error) { return s.rx.DecryptRTCP(dst[:0], pkt, &s.rxRTCP) })
}

// protect runs one encryption under the send lock, within the local
// key's lifetime, which SRTP and SRTCP packets count against alike.
func (s *Session) protect(encrypt func() ([]byte, error)) ([]byte, error) {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	if s.txUsed >= s.txLimit {
		return nil, ErrKeyExhausted
	}
	out, err := encrypt()
	if err != nil {
		return nil, fmt.Errorf("%w: protect: %v", ErrMalformed, err)
	}
	s.txUsed++
	return out, nil
}

// unprotect runs one decryption under the receive lock, within the
// remote key's lifetime, and classifies a refusal.
func (s *Session) unprotect(decrypt func() ([]byte, error)) ([]byte, error) {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	if s.rxUsed >= s.rxLimit {
		return nil, ErrKeyExhausted
	}
	s.replayed = false
	out, err := decrypt()
	if err != nil {
		return nil, s.classify(err)
	}
	s.rxUsed++
	return out, nil
}

// classify maps a pion decrypt error to this package's reasons. Only a
// verified authentication failure is ErrAuth; a replay is what the
// detector refused; anything else (short packet, unknown MKI, a header
// pion cannot take) is malformed. All three mean: drop the packet. A
// forgery or a replay is returned as the bare sentinel: an attacker's
// flood of them must not allocate an error per packet, and pion's detail
// (the index) tells the caller nothing it acts on.
func (s *Session) classify(err error) error {
	switch {
	case s.replayed:
		return ErrReplay
	case errors.Is(err, pion.ErrFailedToVerifyAuthTag):
		return ErrAuth
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

// Reason names an Unprotect error for a metric label: "auth", "replay",
// "malformed", "key_exhausted", or "other".
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrAuth):
		return "auth"
	case errors.Is(err, ErrReplay):
		return "replay"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrKeyExhausted):
		return "key_exhausted"
	default:
		return "other"
	}
}
