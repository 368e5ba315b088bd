package siprec

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"plateau/recordings"
)

// rfcMetadata is a metadata document in the form of RFC 7865's and RFC
// 7866's examples (a standard SRC: two participants, two streams, no
// Plateau extension), with a prefixed namespace and a foreign extension.
const rfcMetadata = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>complete</datamode>
  <group group_id="7+OTCyoxTmqmqyA/1weDAg==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
    <!-- Standardized extension -->
    <call-center xmlns='urn:ietf:params:xml:ns:callcenter'>
      <supervisor>sip:alice@atlanta.com</supervisor>
    </call-center>
  </group>
  <session session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
    <group-ref>7+OTCyoxTmqmqyA/1weDAg==</group-ref>
  </session>
  <participant participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <nameID aor="sip:bob@biloxi.com">
      <name xml:lang="it">Bob</name>
    </nameID>
  </participant>
  <participant participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <nameID aor="tel:+33123456789"/>
  </participant>
  <participantsessionassoc participant_id="srfBElmCRp2QB23b7Mpk0w==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
  </participantsessionassoc>
  <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>96</label>
  </stream>
  <stream stream_id="i1Pz3to5hGk8fuXl+PbwCw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>97</label>
  </stream>
  <participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <send>i1Pz3to5hGk8fuXl+PbwCw==</send>
    <recv>UAAMm5GRQKSCMVvLyl4rFw==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <send>UAAMm5GRQKSCMVvLyl4rFw==</send>
    <recv>i1Pz3to5hGk8fuXl+PbwCw==</recv>
  </participantstreamassoc>
</recording>
`

// rfcSDP is an SRC offer in the form of RFC 7866 §8.1.1's example.
const rfcSDP = "v=0\r\no=SRC 2890844526 2890844526 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n" +
	"m=audio 12240 RTP/AVP 0 4 8\r\na=sendonly\r\na=label:96\r\n" +
	"m=audio 12242 RTP/AVP 0 4 8\r\na=sendonly\r\na=label:97\r\n"

func TestMetadataRoundTrip(t *testing.T) {
	info := recordings.Info{ID: "0f8c2a44-5f6e-4d5e-9a1b-2c3d4e5f6a7b", CallIDs: []string{"a@b", "c@d"}, Operator: "101",
		Number: "+33123456789", Campaign: "archi", Start: time.Date(2026, 5, 4, 7, 30, 0, 0, time.UTC)}
	b, err := NewMetadata(info, "site.example").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `xmlns="urn:ietf:params:xml:ns:recording:1"`) {
		t.Errorf("no RFC 7865 namespace:\n%s", b)
	}
	m, err := ParseMetadata(b)
	if err != nil {
		t.Fatalf("parse own metadata: %v\n%s", err, b)
	}
	c := m.Call()
	if c == nil || c.ID != info.ID || c.Campaign != "archi" || len(c.LegCallIDs) != 2 {
		t.Fatalf("call = %+v", c)
	}
	for label, want := range map[string]struct{ role, user, aor string }{
		LabelOperator: {RoleOperator, "101", "sip:101@site.example"},
		LabelOutside:  {RoleOutside, "+33123456789", "tel:+33123456789"},
	} {
		st := m.StreamByLabel(label)
		if st == nil {
			t.Fatalf("no stream labelled %s", label)
		}
		p := m.Sender(st.ID)
		if p == nil || p.Role != want.role || p.User() != want.user || p.AOR() != want.aor {
			t.Errorf("label %s sent by %+v, want %+v", label, p, want)
		}
	}
}

func TestParseRFCMetadata(t *testing.T) {
	m, err := ParseMetadata([]byte(rfcMetadata))
	if err != nil {
		t.Fatal(err)
	}
	if m.Call() != nil {
		t.Error("a standard SRC has no Plateau call")
	}
	if len(m.Sessions) != 1 || len(m.Sessions[0].SIPSessionIDs) != 1 || len(m.Participants) != 2 {
		t.Fatalf("parsed %+v", m)
	}
	bob := m.Sender(m.StreamByLabel("97").ID)
	if bob == nil || bob.User() != "bob" || bob.NameIDs[0].Names[0].Lang != "it" || bob.NameIDs[0].Names[0].Value != "Bob" {
		t.Errorf("sender of label 97 = %+v", bob)
	}
	// The recorder: label 96 first in the SDP → left, as no role is given.
	streams, err := parseStreams([]byte(rfcSDP))
	if err != nil {
		t.Fatal(err)
	}
	if streams[0].Addr != netip.MustParseAddrPort("198.51.100.1:12240") || streams[1].Label != "97" || streams[0].Dir != "sendonly" {
		t.Errorf("streams = %+v", streams)
	}
	p := assignChannels(streams, m)
	info := recordingInfo(p, m, "x@y", time.Now())
	if info.Operator != "+33123456789" || info.Number != "bob" || !strings.HasPrefix(info.ID, "siprec-") {
		t.Errorf("info = %+v (SDP order: label 96, sent by tel:+33123456789, goes left)", info)
	}
}

func TestParseMetadataErrors(t *testing.T) {
	cases := map[string]string{
		"not xml":             "hello",
		"unknown participant": `<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participantstreamassoc participant_id="x"/></recording>`,
		"unknown stream": `<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant participant_id="p"/>` +
			`<participantstreamassoc participant_id="p"><send>s</send></participantstreamassoc></recording>`,
		"stream of unknown session": `<recording xmlns="urn:ietf:params:xml:ns:recording:1"><stream stream_id="s" session_id="nope"/></recording>`,
		"wrong namespace":           `<recording xmlns="urn:example"></recording>`,
		"other charset":             `<?xml version="1.0" encoding="ISO-8859-1"?><recording xmlns="urn:ietf:params:xml:ns:recording:1"/>`,
		"too large":                 "<recording>" + strings.Repeat(" ", maxMetadata) + "</recording>",
	}
	for name, doc := range cases {
		if _, err := ParseMetadata([]byte(doc)); !errors.Is(err, ErrBadMetadata) {
			t.Errorf("%s: err = %v, want ErrBadMetadata", name, err)
		}
	}
}

func TestBodyRoundTrip(t *testing.T) {
	md := []byte(rfcMetadata)
	body, ct, err := BuildBody([]byte(rfcSDP), md)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ct, "multipart/mixed;") || !strings.Contains(string(body), "Content-Disposition: recording-session") {
		t.Fatalf("Content-Type %q, body:\n%s", ct, body)
	}
	b, err := ParseBody(ct, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.SDP) != rfcSDP || string(b.Metadata) != rfcMetadata {
		t.Errorf("round trip changed the parts:\n%q\n%q", b.SDP, b.Metadata)
	}
}

// rfcBody is an INVITE body written as in RFC 7866 §8.1.1 (CRLF, a
// quoted boundary, the parts in the other order, a preamble).
func rfcBody() (string, string) {
	body := "This is a multi-part message in MIME format.\r\n" +
		"--foobar\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n" +
		strings.ReplaceAll(rfcMetadata, "\n", "\r\n") + "\r\n" +
		"--foobar\r\nContent-Type: application/sdp\r\n\r\n" + rfcSDP + "\r\n--foobar--\r\n"
	return `multipart/mixed;boundary="foobar"`, body
}

func TestParseRFCBody(t *testing.T) {
	ct, body := rfcBody()
	b, err := ParseBody(ct, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if string(b.SDP) != rfcSDP {
		t.Errorf("sdp = %q", b.SDP)
	}
	if _, err := ParseMetadata(b.Metadata); err != nil {
		t.Errorf("metadata: %v", err)
	}
	// A bare SDP is a session without metadata.
	if b, err := ParseBody("application/sdp", []byte(rfcSDP)); err != nil || b.Metadata != nil {
		t.Errorf("bare SDP: %v %v", b, err)
	}
	for name, c := range map[string][2]string{
		"no sdp part":  {`multipart/mixed;boundary=x`, "--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n"},
		"no boundary":  {`multipart/mixed`, body},
		"other type":   {`text/plain`, "hi"},
		"bad type":     {`;;`, "hi"},
		"unterminated": {`multipart/mixed;boundary=x`, "--x\r\nContent-Type: application/sdp\r\n\r\nv=0"},
	} {
		if _, err := ParseBody(c[0], []byte(c[1])); !errors.Is(err, ErrBadBody) {
			t.Errorf("%s: err = %v, want ErrBadBody", name, err)
		}
	}
}

func TestOfferAnswer(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	offer, err := buildOffer(ip, 42, []string{LabelOperator, LabelOutside}, []int{40000, 40002}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m=audio 40000 RTP/AVP 0 8", "a=label:1", "a=label:2", "a=sendonly", "a=rtpmap:8 PCMA/8000"} {
		if !strings.Contains(string(offer), want) {
			t.Errorf("offer lacks %q:\n%s", want, offer)
		}
	}
	streams, err := parseStreams(append(offer, "m=video 40004 RTP/AVP 96\r\n"...))
	if err != nil {
		t.Fatal(err)
	}
	ans, err := buildAnswer(netip.MustParseAddr("192.0.2.20"), 7, streams, []int{50000, 50002, 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseStreams(ans)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Addr.String() != "192.0.2.20:50000" || got[0].Dir != "recvonly" || got[1].Label != "2" ||
		got[2].Addr.Port() != 0 || got[2].Media != "video" {
		t.Errorf("answer streams = %+v\n%s", got, ans)
	}
}
