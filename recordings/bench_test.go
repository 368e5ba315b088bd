package recordings

import (
	"testing"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkRecorderWriteRTP measures the steady per-packet path of a
// two-party call: decode, place, commit 20 ms per packet pair, and the
// header rewrite every 5 s, on a file that stores nothing.
func BenchmarkRecorderWriteRTP(b *testing.B) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewWriter(&discardFile{}, WithMetrics(m))
	if err != nil {
		b.Fatal(err)
	}
	var pkts [2]rtp.Packet
	for ch := range pkts {
		pkts[ch] = rtp.Packet{
			Header:  rtp.Header{PayloadType: []uint8{ptPCMU, ptPCMA}[ch], SSRC: uint32(ch + 1), Timestamp: uint32(ch * 1000)},
			Payload: make([]byte, pktLen),
		}
		for i := range pkts[ch].Payload {
			pkts[ch].Payload[i] = byte(i * (ch + 3))
		}
	}
	arrival := t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ch := i & 1
		if err := w.WriteRTP(Channel(ch), &pkts[ch], arrival); err != nil {
			b.Fatal(err)
		}
		pkts[ch].Timestamp += pktLen
		if ch == 1 {
			arrival = arrival.Add(pktDur)
		}
	}
}
