package siprec

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzParseSession feeds what an SRC controls in a recording session (the
// body's Content-Type and bytes) through everything the recorder parses:
// multipart, metadata, SDP, channel assignment, SDES keys. Seeds: f.Add below and
// testdata/fuzz/FuzzParseSession.
func FuzzParseSession(f *testing.F) {
	ct, body := rfcBody()
	f.Add(ct, []byte(body))
	f.Add("application/sdp", []byte(rfcSDP))
	own, ownCT, _ := BuildBody([]byte(rfcSDP), []byte(rfcMetadata))
	f.Add(ownCT, own)
	f.Fuzz(func(t *testing.T, contentType string, data []byte) {
		b, err := ParseBody(contentType, data)
		if err != nil {
			return
		}
		var md *Metadata
		if b.Metadata != nil {
			if md, err = ParseMetadata(b.Metadata); err != nil {
				md = nil
			} else if _, err := md.Marshal(); err != nil {
				t.Fatalf("parsed metadata does not marshal: %v", err)
			}
		}
		streams, err := parseStreams(b.SDP)
		if err != nil {
			return
		}
		p := assignChannels(streams, md)
		seen := map[int]bool{}
		for _, c := range p.ch {
			if c >= 0 && seen[c] {
				t.Fatalf("channel %d assigned twice: %v", c, p.ch)
			}
			seen[c] = true
		}
		recordingInfo(p, md, "call@host", time.Unix(0, 0))
		ports := make([]int, len(streams))
		for i, c := range p.ch {
			if c >= 0 {
				ports[i] = 40000 + 2*i
			}
		}
		buildAnswer(netip.MustParseAddr("127.0.0.1"), 1, streams, ports, nil) // must not panic
		// SDES keys of SRTP streams (a TLS link): accepted or refused,
		// never a panic, and an accepted one answers.
		cryptos := make([]string, len(streams))
		for i, m := range streams {
			if p.ch[i] >= 0 && m.secure() {
				if _, local, err := answerSRTP(m.Crypto); err == nil {
					cryptos[i] = local
				}
			}
		}
		buildAnswer(netip.MustParseAddr("127.0.0.1"), 1, streams, ports, cryptos)
	})
}
