package sip

import "testing"

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want credentials
		bad  bool
	}{
		{name: "sipp", in: `Digest username="101",realm="plateau",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:5060",nonce="abc",response="983f",algorithm=MD5`,
			want: credentials{Username: "101", Realm: "plateau", Cnonce: "6b8b4567", Nc: 1, QOP: "auth", URI: "sip:127.0.0.1:5060", Nonce: "abc", Response: "983f", Algorithm: "MD5"}},
		{name: "spaces and case", in: `digest  Username = "a b" , REALM="r", nc=0000000a, qop="auth"`,
			want: credentials{Username: "a b", Realm: "r", Nc: 10, QOP: "auth"}},
		{name: "escaped quote", in: `Digest username="a\"b", realm="x"`, want: credentials{Username: `a"b`, Realm: "x"}},
		{name: "not digest", in: `Basic dXNlcg==`, bad: true},
		{name: "no username", in: `Digest realm="x"`, bad: true},
		{name: "unterminated", in: `Digest username="abc`, bad: true},
		{name: "bad nc", in: `Digest username="a", nc=zz`, bad: true},
		{name: "no equals", in: `Digest username`, bad: true},
		{name: "empty", in: ``, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCredentials(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted %q: %+v", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add(`Digest username="101",realm="plateau",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:5060",nonce="abc",response="983f",algorithm=MD5`)
	f.Add(`Digest username="a\"b"`)
	f.Add(`Digest ,,,=`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCredentials(s)
		if err == nil && c.Username == "" {
			t.Fatalf("accepted credentials without a username: %q", s)
		}
	})
}
