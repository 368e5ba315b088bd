package siprec

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// Content types of a recording session's body.
const (
	ContentTypeSDP      = "application/sdp"
	ContentTypeMetadata = "application/rs-metadata+xml"
	// DispositionMetadata is the Content-Disposition of the metadata part
	// (RFC 7866 §9.1).
	DispositionMetadata = "recording-session"
)

// maxBody bounds a recording session body, maxParts its parts.
const (
	maxBody  = 128 << 10
	maxParts = 8
)

// Body is a recording session's offer or answer: the SDP and, in an
// INVITE from an SRC, the metadata.
type Body struct {
	SDP      []byte
	Metadata []byte // nil when the message carried none
}

// BuildBody writes the multipart/mixed body of an INVITE (RFC 7866 §9.1)
// and returns it with its Content-Type header value.
func BuildBody(sdp, metadata []byte) (body []byte, contentType string, err error) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	parts := []struct {
		h    textproto.MIMEHeader
		data []byte
	}{
		{textproto.MIMEHeader{"Content-Type": {ContentTypeSDP}}, sdp},
		{textproto.MIMEHeader{"Content-Type": {ContentTypeMetadata}, "Content-Disposition": {DispositionMetadata}}, metadata},
	}
	for _, p := range parts {
		pw, err := w.CreatePart(p.h)
		if err != nil {
			return nil, "", err
		}
		if _, err := pw.Write(p.data); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return b.Bytes(), mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": w.Boundary()}), nil
}

// ParseBody reads a recording session body: multipart/mixed with an SDP
// part and a metadata part, or a bare SDP (an SRC may send the metadata
// later; the recording then has no participants). Parts of other types
// are ignored; a multipart body without SDP is an error.
func ParseBody(contentType string, body []byte) (Body, error) {
	var out Body
	if len(body) > maxBody {
		return out, fmt.Errorf("%w: %d bytes, at most %d", ErrBadBody, len(body), maxBody)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return out, fmt.Errorf("%w: Content-Type %q: %w", ErrBadBody, contentType, err)
	}
	switch {
	case mt == ContentTypeSDP:
		out.SDP = body
		return out, nil
	case mt != "multipart/mixed":
		return out, fmt.Errorf("%w: Content-Type %s, want multipart/mixed or application/sdp", ErrBadBody, mt)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return out, fmt.Errorf("%w: multipart/mixed without boundary", ErrBadBody)
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for n := 0; ; n++ {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("%w: part %d: %w", ErrBadBody, n+1, err)
		}
		if n >= maxParts {
			return out, fmt.Errorf("%w: more than %d parts", ErrBadBody, maxParts)
		}
		pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			// RFC 2046: a part without Content-Type is text/plain.
			pt = "text/plain"
		}
		data, err := io.ReadAll(io.LimitReader(p, maxBody))
		if err != nil {
			return out, fmt.Errorf("%w: part %d: %w", ErrBadBody, n+1, err)
		}
		disp := strings.ToLower(strings.TrimSpace(strings.SplitN(p.Header.Get("Content-Disposition"), ";", 2)[0]))
		switch {
		case pt == ContentTypeSDP && out.SDP == nil:
			out.SDP = data
		case (pt == ContentTypeMetadata || pt == "application/rs-metadata" || disp == DispositionMetadata && strings.HasSuffix(pt, "xml")) && out.Metadata == nil:
			out.Metadata = data
		}
	}
	if out.SDP == nil {
		return out, fmt.Errorf("%w: no application/sdp part", ErrBadBody)
	}
	return out, nil
}
