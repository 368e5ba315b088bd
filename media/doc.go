// Package media anchors every call's audio: a Relay per two-leg call (RTP
// and RTCP ports per leg, G.711 µ-law/A-law, transcoding, prompts, RFC 4733
// events), a Monitor per supervisor (listen, whisper, barge), SDP parsing
// and building, and the port pool.
//
// # The invariant: record what you send
//
// Every frame of audio that leaves the relay toward a party goes through
// one gate (admitLocked) and one send (send), which gives the recording
// tap exactly the payload bytes it sends, under the static payload type of
// their encoding, with the sequence number, timestamp and SSRC of the
// stream toward that party, before it writes them to the socket. So, by
// construction:
//
//   - the recording's left channel (Tap leg LegOperator) is, frame by
//     frame, what the outside party was sent: the operator's voice, the
//     notice, tones, a barging supervisor; the right channel (LegOutside)
//     is what the operator was sent: the outside party's voice, a
//     whispering supervisor, tones. A frame not sent (hold, early media,
//     notice pending) is not recorded, and a frame the tap refuses is not
//     sent: the relay ends with ErrTapFailed.
//   - nothing else leaves toward a party: a received packet is forwarded
//     only if its payload type is one negotiated on that leg (per-leg map,
//     static or dynamic, e.g. a=rtpmap:96 PCMU/8000), as a new packet
//     (fresh 12-byte header: the sender's extensions, CSRCs, padding and
//     marker bit stay behind) with the audio re-encoded in the
//     destination's codec; or if it is one valid RFC 4733 DTMF event,
//     rebuilt from its fields. Comfort noise (PT 13), unknown payload
//     types and malformed events are dropped. RTCP is terminated per leg:
//     read, never relayed; Plateau answers each leg that sends RTCP with
//     its own SR/RR + CNAME.
//     Every drop is counted in plateau_rtp_dropped_packets_total{reason}.
//   - a monitor (AttachMonitor) gets each party's decoded audio; toward a
//     party that hears the supervisor (MixMatrix: the operator in whisper
//     and barge, the outside party in barge), the monitor's 20 ms clock
//     produces the whole frame (the other party's audio mixed with the
//     supervisor's) and sends it through the same gate and tap, whether or
//     not the other party's phone sends RTP. Each input's jitter buffer
//     follows its phone's clock: a stream that lags, runs slow or fast is
//     re-anchored (a short gap or skip), never dropped as late for good.
//
// # Media addresses
//
// Ports are drawn at random from the pool's free pairs. A leg accepts RTP
// only after SetRemote, and only from the host its SDP signalled
// (LatchHost: any port of that host, the first packet latches the exact
// address) or, for a carrier behind NAT (LatchAny, config
// trunks[].media_latch: any), from a first source anywhere within the
// latch window. A stream that keeps its SSRC but restarts its sequence
// numbers is a new segment, forwarded with continuous numbering.
//
// # SRTP
//
// A leg may run SRTP (SetRemoteSRTP, keys from package srtp; srtp.go).
// Protection sits at the relay's two edges only: what comes from an SRTP
// leg is authenticated and decrypted before anything else reads it (a
// packet that fails is dropped, counted srtp_auth or srtp_replay, and
// never latches the leg), and what goes to it is protected after the tap,
// in the one write function, with the session the gate admitted it under:
// the recording holds exactly the plaintext that was encrypted and sent.
//
// # How the call layer drives a Relay
//
//	r, _ := media.NewRelay(pool, ip, media.WithTap(rec), media.WithDetention(), ...)
//	r.SetRemoteSDP(media.LegOperator, offer, codec)   // the operator's INVITE
//	r.SetLatch(media.LegOutside, trunkLatch)          // per trunk, before its SDP
//	r.SetEarly(true)                                  // before applying a 183's SDP
//	r.SetRemoteSDP(media.LegOutside, answer, codec)   // 183 or 200
//	r.SetEarly(false)                                 // at the 200 (answer)
//	err := r.PlayNotice(ctx, notice)                  // opens the notice gate
//	...
//	r.NewOutsideParty()                               // REFER target, failover: gate closes
//	r.SetRemoteSDP(media.LegOutside, newAnswer, codec)
//	err = r.PlayNotice(ctx, notice)                   // and opens again
//
// With WithDetention the outside direction stays closed until PlayNotice
// has sent every frame of the notice to the current outside party (an
// interrupted notice, or one played on hold, returns ErrNoticeIncomplete
// and leaves the gate closed): a caller that forgets PlayNotice fails
// closed. Play(ctx, leg, pcm) plays tones, mixed into the flowing stream;
// Play with Muted is a prompt heard alone.
package media
