// Package siprec carries Plateau's recordings to a remote recorder with
// SIPREC (RFC 7866): Client is the recording client (SRC) that the B2BUA
// uses in place of the local recorder, Server the recording server (SRS)
// that `plateau recorder` runs on another host.
//
// A recording session is an INVITE whose body is multipart/mixed: an SDP
// offer with two sendonly audio streams (a=label:1 for the operator's leg,
// a=label:2 for the outside party's) and the recording metadata (RFC 7865,
// application/rs-metadata+xml) naming the participants, which stream each
// sends, and the call. The client then forwards a copy of every RTP packet
// of each leg to the stream's port in the server's answer, and ends the
// session with BYE. The server writes the two streams into the usual
// stereo WAV (operator left, outside right) with its sidecar and index.
//
// How the server decides the channels (Server, assignChannels): the
// participant that sends a stream (participantstreamassoc/send) carries
// Plateau's role extension (<role xmlns="urn:x-plateau:siprec:1">operator</role>
// or outside): operator → left, outside → right. A standard SRC sends no
// role, so the first audio stream of the offer (in SDP order) goes left
// and the second right, which is the convention of most SRCs (the first
// stream is the call's originating side). Further audio streams are
// refused (port 0) rather than mixed into a channel.
//
// The link can be locked down (gate.go): the server takes connections and
// requests only from AllowedSources, and with the tls transport it
// speaks TLS alone, handing sipgo only connections whose client presented
// a certificate of the client CA (certs.ServerConfig). Every refusal is
// counted (metrics.go), logged and audited "recorder.refused", the last
// two once per source and reason per minute. Over TLS the recording
// streams are SRTP (RTP/SAVP, one SDES a=crypto per stream, package srtp):
// the client never sends audio in clear there, the server answers 488 to
// plain RTP over TLS and to SDES keys over a plain link, and drops
// packets that fail authentication or replay before the WAV. The TLS
// client does not listen: its Contact is its connection's own address,
// and the server's BYE goes back on that connection.
package siprec
