package sip

import (
	"errors"
	"strconv"
	"strings"
)

// credentials are the fields of a Digest Authorization header we use.
type credentials struct {
	Username, Realm, Nonce, URI, Response, Algorithm, Cnonce, QOP string
	Nc                                                            uint32
}

var errMalformedCredentials = errors.New("malformed digest credentials")

// parseCredentials reads `Digest k=v, k="v", ...` (RFC 3261 §25.1). It is
// hand-written because it runs on every authenticated request and must
// neither allocate much nor trust its input (it is fuzzed).
func parseCredentials(h string) (credentials, error) {
	var c credentials
	s := strings.TrimSpace(h)
	if len(s) < 7 || !strings.EqualFold(s[:6], "digest") || (s[6] != ' ' && s[6] != '\t') {
		return c, errMalformedCredentials
	}
	s = s[7:]
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return c, errMalformedCredentials
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			end, unescaped := -1, false
			for i := 1; i < len(s); i++ {
				if s[i] == '\\' {
					unescaped = true
					i++
					continue
				}
				if s[i] == '"' {
					end = i
					break
				}
			}
			if end < 0 {
				return c, errMalformedCredentials
			}
			val = s[1:end]
			if unescaped {
				var b strings.Builder
				for i := 0; i < len(val); i++ {
					if val[i] == '\\' && i+1 < len(val) {
						i++
					}
					b.WriteByte(val[i])
				}
				val = b.String()
			}
			s = s[end+1:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		switch strings.ToLower(key) {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = val
		case "algorithm":
			c.Algorithm = val
		case "cnonce":
			c.Cnonce = val
		case "qop":
			c.QOP = val
		case "nc":
			n, err := strconv.ParseUint(val, 16, 32)
			if err != nil {
				return c, errMalformedCredentials
			}
			c.Nc = uint32(n)
		}
	}
	if c.Username == "" {
		return c, errMalformedCredentials
	}
	return c, nil
}
