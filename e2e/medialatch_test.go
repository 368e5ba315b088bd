package e2e

import (
	"testing"
	"time"
)

// A carrier behind NAT answers with an SDP naming one host (127.0.0.3)
// and sends its RTP from another (127.0.0.1). With the default
// trunks[].media_latch: host every packet is dropped as unknown_source;
// with any the relay latches the real source and the operator hears the
// carrier. The config key goes through the real binary's wiring.
func TestCarrierBehindNATMediaLatch(t *testing.T) {
	n := pcapPackets(t, pcapFile)
	for _, mode := range []string{"host", "any"} {
		t.Run(mode, func(t *testing.T) {
			carrierPort := freePort(t)
			p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}, trunkYAML: "media_latch: " + mode})
			in0, drop0 := p.metricOf(mIn), p.metricOf(mUnknown)
			carrier := startCarrier(t, carrierPort, "uas_answer_nat.xml")
			op := startOperator(t, p, "uac_talk.xml", approved, "-d", "8000")
			op.mustSucceed(45 * time.Second)
			carrier.mustSucceed(15 * time.Second)
			waitMetric(t, p, mActive, 0)
			in, dropped := p.metricOf(mIn)-in0, p.metricOf(mUnknown)-drop0
			t.Logf("media_latch %s: pcap %d packets per side; relay accepted %v, dropped %v as unknown_source", mode, n, in, dropped)
			switch mode {
			case "host":
				// Only the operator's side gets in; the carrier's is dropped.
				if dropped < 0.9*float64(n) {
					t.Errorf("unknown_source drops %v, want about %d (the carrier's whole stream)", dropped, n)
				}
				if in > float64(n)+10 {
					t.Errorf("RTP in = %v, want only the operator's %d", in, n)
				}
			case "any":
				if dropped > 10 {
					t.Errorf("unknown_source drops %v, want none: the carrier's source is latched", dropped)
				}
				if in < 0.9*float64(2*n) {
					t.Errorf("RTP in = %v, want about %d (both sides)", in, 2*n)
				}
			}
		})
	}
}
