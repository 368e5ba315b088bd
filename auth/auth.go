// Package auth derives the stored forms of users' secrets: digest HA1
// values for SIP (RFC 2617, RFC 8760) and argon2id hashes for the web. The
// plain passwords are never stored.
package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// HA1MD5 is MD5(username:realm:password).
func HA1MD5(user, realm, password string) string {
	h := md5.Sum([]byte(user + ":" + realm + ":" + password))
	return hex.EncodeToString(h[:])
}

// HA1SHA256 is SHA-256(username:realm:password) (RFC 8760).
func HA1SHA256(user, realm, password string) string {
	h := sha256.Sum256([]byte(user + ":" + realm + ":" + password))
	return hex.EncodeToString(h[:])
}

// argon2id parameters: OWASP's second recommended set (19 MiB, 2 passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// ErrBadPassword is returned by CheckPassword on a mismatch.
var ErrBadPassword = errors.New("wrong password")

// MinPasswordLength is enforced for web passwords.
const MinPasswordLength = 8

// HashPassword returns an argon2id hash in PHC string format.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", fmt.Errorf("password too short: at least %d characters", MinPasswordLength)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword compares a password with a hash from HashPassword in
// constant time.
func CheckPassword(hash, password string) error {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return ErrBadPassword
	}
	var mem, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil {
		return ErrBadPassword
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return ErrBadPassword
	}
	got := argon2.IDKey([]byte(password), salt, t, mem, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrBadPassword
	}
	return nil
}

// Secrets are the stored forms of a user's new passwords; an empty field
// means that password is left as it is.
type Secrets struct {
	HA1MD5, HA1SHA256 string // SIP digest (RFC 2617, RFC 8760)
	WebHash           string // argon2id (HashPassword)
}

// NewSecrets derives what to store for ext in realm from the plain
// passwords ("" = unchanged). Every check runs before anything is
// returned, so a bad password changes nothing. The CLI (plateau user
// add|passwd) and the admin console both go through it.
func NewSecrets(ext, realm, sipPassword, webPassword string) (Secrets, error) {
	var s Secrets
	if sipPassword != "" {
		if realm == "" {
			return s, errors.New("sip password: no SIP realm configured")
		}
		s.HA1MD5, s.HA1SHA256 = HA1MD5(ext, realm, sipPassword), HA1SHA256(ext, realm, sipPassword)
	}
	if webPassword != "" {
		h, err := HashPassword(webPassword)
		if err != nil {
			return s, fmt.Errorf("web password: %w", err)
		}
		s.WebHash = h
	}
	return s, nil
}
