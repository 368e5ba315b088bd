package auth

import "testing"

func TestHA1(t *testing.T) {
	tests := []struct {
		name, user, realm, pass, want string
		fn                            func(string, string, string) string
	}{
		// RFC 2617 section 3.5: HA1 of Mufasa:testrealm@host.com:Circle Of Life.
		{"rfc2617", "Mufasa", "testrealm@host.com", "Circle Of Life", "939e7578ed9e3c518a452acee763bce9", HA1MD5},
		// RFC 7616 section 3.9.1 (same HA1 construction as RFC 8760): SHA-256
		// of Mufasa:http-auth@example.org:Circle of Life.
		{"rfc7616-sha256", "Mufasa", "http-auth@example.org", "Circle of Life", "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232", HA1SHA256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(tt.user, tt.realm, tt.pass); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPassword(h, "correct horse"); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	for _, bad := range []string{"correct hors", "", "Correct horse"} {
		if CheckPassword(h, bad) == nil {
			t.Fatalf("wrong password %q accepted", bad)
		}
	}
	if CheckPassword("garbage", "x") == nil {
		t.Fatal("malformed hash accepted")
	}
	if _, err := HashPassword("short"); err == nil {
		t.Fatal("short password accepted")
	}
}
