package media

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"
)

// Goertzel returns the power of pcm at freq (8 kHz), normalised by the
// length so it compares across windows.
func Goertzel(pcm []int16, freq float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / SampleRate
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s0 := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	return p / float64(len(pcm)) / float64(len(pcm))
}

// Self-test tones: the operator's and the customer's voices, and the
// supervisor's whisper.
const (
	selfTestOperatorHz   = 440
	selfTestCustomerHz   = 620
	selfTestSupervisorHz = 1750
)

// SelfTestWhisper runs a whisper through a real Relay and Monitor on ip
// (loopback sockets from pool): the operator, the customer and the
// supervisor each send a tone. It fails unless the operator hears the
// supervisor's tone and the customer hears the operator's but not the
// supervisor's. plateau serve runs it at start and refuses to start if
// whisper could reach a customer.
func SelfTestWhisper(ctx context.Context, pool *PortPool, ip netip.Addr) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := NewRelay(pool, ip)
	if err != nil {
		return fmt.Errorf("whisper self-test: %w", err)
	}
	defer r.Close()
	var eps []*Endpoint
	defer func() {
		for _, e := range eps {
			e.Close()
		}
	}()
	newEP := func(c Codec) (*Endpoint, error) {
		e, err := NewEndpoint(nil, ip, c)
		if err == nil {
			eps = append(eps, e)
		}
		return e, err
	}
	op, err1 := newEP(PCMU.Codec())
	cust, err2 := newEP(PCMA.Codec())
	sup, err3 := newEP(PCMU.Codec())
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("whisper self-test: %w", err)
	}
	r.SetRemote(LegOperator, op.LocalAddr(), PCMU.Codec(), 101)
	r.SetRemote(LegOutside, cust.LocalAddr(), PCMA.Codec(), 101)
	m, err := NewMonitor(pool, ip, Whisper)
	if err != nil {
		return fmt.Errorf("whisper self-test: %w", err)
	}
	defer m.Close()
	m.SetRemote(sup.LocalAddr(), PCMU.Codec(), 101)
	if err := m.Attach(r); err != nil {
		return fmt.Errorf("whisper self-test: %w", err)
	}
	op.SetRemote(netip.AddrPortFrom(ip, uint16(r.LocalPort(LegOperator))))
	cust.SetRemote(netip.AddrPortFrom(ip, uint16(r.LocalPort(LegOutside))))
	sup.SetRemote(netip.AddrPortFrom(ip, uint16(m.LocalPort())))

	const dur = 800 * time.Millisecond
	var wg sync.WaitGroup
	for _, p := range []struct {
		e  *Endpoint
		hz float64
	}{{op, selfTestOperatorHz}, {cust, selfTestCustomerHz}, {sup, selfTestSupervisorHz}} {
		wg.Add(1)
		go func() { defer wg.Done(); p.e.Play(ctx, Tone(p.hz, dur)) }()
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // the last packets in flight
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("whisper self-test: %w", err)
	}
	return checkWhisper(op.PCM(), cust.PCM(), sup.PCM())
}

// checkWhisper judges what each party heard during a whisper.
func checkWhisper(opHeard, custHeard, supHeard []int16) error {
	const minFrames = 10
	if len(custHeard) < minFrames*FrameSamples || len(opHeard) < minFrames*FrameSamples || len(supHeard) < minFrames*FrameSamples {
		return fmt.Errorf("whisper self-test: too little audio (operator %d, customer %d, supervisor %d samples)",
			len(opHeard), len(custHeard), len(supHeard))
	}
	custVoice := Goertzel(custHeard, selfTestOperatorHz)
	custLeak := Goertzel(custHeard, selfTestSupervisorHz)
	opWhisper := Goertzel(opHeard, selfTestSupervisorHz)
	switch {
	case custLeak*100 > custVoice:
		return fmt.Errorf("whisper self-test: the supervisor's tone reached the customer leg (%.0f vs voice %.0f)", custLeak, custVoice)
	case opWhisper*10 < Goertzel(opHeard, selfTestCustomerHz):
		return fmt.Errorf("whisper self-test: the operator did not hear the supervisor (%.0f)", opWhisper)
	case Goertzel(supHeard, selfTestOperatorHz) == 0 || Goertzel(supHeard, selfTestCustomerHz) == 0:
		return errors.New("whisper self-test: the supervisor did not hear the call")
	}
	return nil
}
