package siprec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"plateau/recordings"
)

// XML namespaces of the metadata.
const (
	// NSRecording is RFC 7865's namespace.
	NSRecording = "urn:ietf:params:xml:ns:recording:1"
	// NSPlateau holds Plateau's extension elements (RFC 7865 §6 lets any
	// element carry elements of other namespaces; a standard SRS ignores
	// them).
	NSPlateau = "urn:x-plateau:siprec:1"
)

// Roles of a participant in Plateau's extension.
const (
	RoleOperator = "operator"
	RoleOutside  = "outside"
)

// Stream labels of Plateau's offer (a=label, RFC 4574), one per leg.
const (
	LabelOperator = "1"
	LabelOutside  = "2"
)

// maxMetadata bounds what ParseMetadata reads, and maxElems the elements
// of each kind it keeps: a recording session has a handful of each.
const (
	maxMetadata = 64 << 10
	maxElems    = 64
)

// Metadata is a recording metadata document (RFC 7865 §6,
// application/rs-metadata+xml) in the "complete" data mode.
type Metadata struct {
	XMLName                  xml.Name                  `xml:"urn:ietf:params:xml:ns:recording:1 recording"`
	DataMode                 string                    `xml:"datamode,omitempty"`
	Groups                   []Group                   `xml:"group"`
	Sessions                 []CommSession             `xml:"session"`
	Participants             []Participant             `xml:"participant"`
	Streams                  []Stream                  `xml:"stream"`
	SessionRecordingAssocs   []SessionRecordingAssoc   `xml:"sessionrecordingassoc"`
	ParticipantSessionAssocs []ParticipantSessionAssoc `xml:"participantsessionassoc"`
	ParticipantStreamAssocs  []ParticipantStreamAssoc  `xml:"participantstreamassoc"`
}

// Group is a communication session group (RFC 7865 §6.2).
type Group struct {
	ID            string `xml:"group_id,attr"`
	AssociateTime string `xml:"associate-time,omitempty"`
}

// CommSession is a communication session (RFC 7865 §6.3): here, the call.
type CommSession struct {
	ID            string   `xml:"session_id,attr"`
	SIPSessionIDs []string `xml:"sipSessionID,omitempty"`
	GroupRef      string   `xml:"group-ref,omitempty"`
	StartTime     string   `xml:"start-time,omitempty"`
	StopTime      string   `xml:"stop-time,omitempty"`
	// Call is Plateau's extension: the call's id and its legs' Call-IDs.
	Call *PlateauCall `xml:"urn:x-plateau:siprec:1 call,omitempty"`
}

// PlateauCall identifies the Plateau call a recording session records.
type PlateauCall struct {
	ID         string   `xml:"id,attr"`
	Campaign   string   `xml:"campaign,attr,omitempty"`
	LegCallIDs []string `xml:"urn:x-plateau:siprec:1 leg-call-id,omitempty"`
}

// Participant is a party of the call (RFC 7865 §6.4).
type Participant struct {
	ID      string   `xml:"participant_id,attr"`
	NameIDs []NameID `xml:"nameID"`
	// Role is Plateau's extension: operator or outside.
	Role string `xml:"urn:x-plateau:siprec:1 role,omitempty"`
}

// NameID is a participant's address of record and display names.
type NameID struct {
	AOR   string `xml:"aor,attr"`
	Names []Name `xml:"name,omitempty"`
}

// Name is a display name in a language.
type Name struct {
	Lang  string `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Value string `xml:",chardata"`
}

// Stream is a media stream of the recording session (RFC 7865 §6.5); its
// label matches the SDP's a=label.
type Stream struct {
	ID        string `xml:"stream_id,attr"`
	SessionID string `xml:"session_id,attr"`
	Label     string `xml:"label"`
}

// SessionRecordingAssoc says when a session joined the recording.
type SessionRecordingAssoc struct {
	SessionID     string `xml:"session_id,attr"`
	AssociateTime string `xml:"associate-time,omitempty"`
}

// ParticipantSessionAssoc says when a participant joined a session.
type ParticipantSessionAssoc struct {
	ParticipantID string `xml:"participant_id,attr"`
	SessionID     string `xml:"session_id,attr"`
	AssociateTime string `xml:"associate-time,omitempty"`
}

// ParticipantStreamAssoc lists the streams a participant sends and receives.
type ParticipantStreamAssoc struct {
	ParticipantID string   `xml:"participant_id,attr"`
	Send          []string `xml:"send,omitempty"`
	Recv          []string `xml:"recv,omitempty"`
}

// newID is an RFC 7865 identifier: a UUID's 16 bytes in base64.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant
	return base64.StdEncoding.EncodeToString(b[:])
}

// NewMetadata describes the recording of a Plateau call: one session, the
// operator (sip:EXT@domain) sending the stream labelled 1 and the outside
// party (tel:E164) sending the stream labelled 2, each receiving the other.
func NewMetadata(info recordings.Info, domain string) *Metadata {
	at := info.Start.UTC().Format(time.RFC3339Nano)
	group, sess := newID(), newID()
	op, out := newID(), newID()
	opStream, outStream := newID(), newID()
	if domain == "" {
		domain = "plateau.invalid"
	}
	number := info.Number
	outAOR := "tel:" + number
	if number == "" {
		outAOR = "sip:anonymous@anonymous.invalid"
	}
	return &Metadata{
		DataMode: "complete",
		Groups:   []Group{{ID: group, AssociateTime: at}},
		Sessions: []CommSession{{ID: sess, GroupRef: group, StartTime: at,
			Call: &PlateauCall{ID: info.ID, Campaign: info.Campaign, LegCallIDs: info.CallIDs}}},
		Participants: []Participant{
			{ID: op, NameIDs: []NameID{{AOR: "sip:" + info.Operator + "@" + domain}}, Role: RoleOperator},
			{ID: out, NameIDs: []NameID{{AOR: outAOR}}, Role: RoleOutside},
		},
		Streams: []Stream{
			{ID: opStream, SessionID: sess, Label: LabelOperator},
			{ID: outStream, SessionID: sess, Label: LabelOutside},
		},
		SessionRecordingAssocs: []SessionRecordingAssoc{{SessionID: sess, AssociateTime: at}},
		ParticipantSessionAssocs: []ParticipantSessionAssoc{
			{ParticipantID: op, SessionID: sess, AssociateTime: at},
			{ParticipantID: out, SessionID: sess, AssociateTime: at},
		},
		ParticipantStreamAssocs: []ParticipantStreamAssoc{
			{ParticipantID: op, Send: []string{opStream}, Recv: []string{outStream}},
			{ParticipantID: out, Send: []string{outStream}, Recv: []string{opStream}},
		},
	}
}

// Marshal writes the document with its XML declaration.
func (m *Metadata) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMetadata, err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// ParseMetadata reads a metadata document, from Plateau or any SRC. It
// checks that every association refers to a participant, session or
// stream the document defines.
func ParseMetadata(b []byte) (*Metadata, error) {
	if len(b) > maxMetadata {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBadMetadata, len(b), maxMetadata)
	}
	var m Metadata
	dec := xml.NewDecoder(bytes.NewReader(b))
	// Only UTF-8 (and its ASCII subset): an SRC sending another charset
	// is rare, and decoding it is not worth a dependency.
	dec.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		if l := strings.ToLower(label); l == "utf-8" || l == "us-ascii" {
			return input, nil
		}
		return nil, fmt.Errorf("charset %q not supported", label)
	}
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMetadata, err)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Metadata) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadMetadata}, args...)...)
	}
	if n := max(len(m.Groups), len(m.Sessions), len(m.Participants), len(m.Streams), len(m.SessionRecordingAssocs),
		len(m.ParticipantSessionAssocs), len(m.ParticipantStreamAssocs)); n > maxElems {
		return bad("%d elements of one kind, at most %d", n, maxElems)
	}
	sessions := map[string]bool{}
	for _, s := range m.Sessions {
		if s.ID == "" {
			return bad("session without session_id")
		}
		sessions[s.ID] = true
	}
	parts := map[string]bool{}
	for _, p := range m.Participants {
		if p.ID == "" {
			return bad("participant without participant_id")
		}
		parts[p.ID] = true
	}
	streams := map[string]bool{}
	for _, s := range m.Streams {
		if s.ID == "" {
			return bad("stream without stream_id")
		}
		if s.SessionID != "" && !sessions[s.SessionID] {
			return bad("stream %s refers to unknown session %s", s.ID, s.SessionID)
		}
		streams[s.ID] = true
	}
	for _, a := range m.ParticipantStreamAssocs {
		if !parts[a.ParticipantID] {
			return bad("participantstreamassoc refers to unknown participant %s", a.ParticipantID)
		}
		for _, id := range append(a.Send[:len(a.Send):len(a.Send)], a.Recv...) {
			if !streams[strings.TrimSpace(id)] {
				return bad("participant %s refers to unknown stream %s", a.ParticipantID, id)
			}
		}
	}
	for _, a := range m.ParticipantSessionAssocs {
		if !parts[a.ParticipantID] || !sessions[a.SessionID] {
			return bad("participantsessionassoc refers to unknown participant %s or session %s", a.ParticipantID, a.SessionID)
		}
	}
	return nil
}

// StreamByLabel returns the stream with an SDP label, or nil.
func (m *Metadata) StreamByLabel(label string) *Stream {
	for i := range m.Streams {
		if strings.TrimSpace(m.Streams[i].Label) == label {
			return &m.Streams[i]
		}
	}
	return nil
}

// Sender returns the participant that sends a stream, or nil.
func (m *Metadata) Sender(streamID string) *Participant {
	for _, a := range m.ParticipantStreamAssocs {
		for _, s := range a.Send {
			if strings.TrimSpace(s) == streamID {
				return m.Participant(a.ParticipantID)
			}
		}
	}
	return nil
}

// Participant returns a participant by id, or nil.
func (m *Metadata) Participant(id string) *Participant {
	for i := range m.Participants {
		if m.Participants[i].ID == id {
			return &m.Participants[i]
		}
	}
	return nil
}

// Call returns Plateau's call extension of the first session that has
// one, or nil (a standard SRC).
func (m *Metadata) Call() *PlateauCall {
	for _, s := range m.Sessions {
		if s.Call != nil {
			return s.Call
		}
	}
	return nil
}

// AOR is the participant's first address of record.
func (p *Participant) AOR() string {
	for _, n := range p.NameIDs {
		if a := strings.TrimSpace(n.AOR); a != "" {
			return a
		}
	}
	return ""
}

// User is the user part of the participant's address of record: the
// extension of sip:101@site, the number of tel:+33... or sip:+33...@trunk.
func (p *Participant) User() string {
	a := p.AOR()
	if i := strings.IndexByte(a, ':'); i >= 0 {
		a = a[i+1:]
	}
	if i := strings.IndexAny(a, "@;?"); i >= 0 {
		a = a[:i]
	}
	return a
}
