package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Role of a user.
type Role string

const (
	RoleOperator   Role = "operator"
	RoleSupervisor Role = "supervisor"
	RoleSecurity   Role = "security"
	RoleAdmin      Role = "admin"
)

// Status of a user.
type Status string

const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// User is a person who registers a softphone or logs into a console.
type User struct {
	Extension   string
	DisplayName string
	Role        Role
	HA1MD5      string
	HA1SHA256   string
	WebPassword string // argon2id hash
	Status      Status
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// ValidRole reports whether r is one of the four roles.
func ValidRole(r Role) bool {
	switch r {
	case RoleOperator, RoleSupervisor, RoleSecurity, RoleAdmin:
		return true
	}
	return false
}

// AddUser inserts a user; ErrExists if the extension is taken.
func (s *Store) AddUser(ctx context.Context, u User, now time.Time) error {
	if !ValidRole(u.Role) {
		return fmt.Errorf("role %q is not operator, supervisor, security or admin", u.Role)
	}
	if u.Status == "" {
		u.Status = StatusActive
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO users
		(extension, display_name, role, ha1_md5, ha1_sha256, web_password, status, created_at, updated_at)
		VALUES (?,?,?,?,?,?,?,?,?)`,
		u.Extension, u.DisplayName, string(u.Role), u.HA1MD5, u.HA1SHA256, u.WebPassword, string(u.Status),
		formatTime(now), formatTime(now))
	if err != nil {
		if isConstraint(err) {
			return fmt.Errorf("user %s: %w", u.Extension, ErrExists)
		}
		return fmt.Errorf("add user %s: %w", u.Extension, err)
	}
	return nil
}

const userCols = `extension, display_name, role, ha1_md5, ha1_sha256, web_password, status, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var role, status, created, updated string
	err := row.Scan(&u.Extension, &u.DisplayName, &role, &u.HA1MD5, &u.HA1SHA256, &u.WebPassword, &status, &created, &updated)
	u.Role, u.Status = Role(role), Status(status)
	u.CreatedAt, u.UpdatedAt = parseTime(created), parseTime(updated)
	return u, err
}

// User returns one user; ErrNotFound if there is none. It runs on every
// authenticated SIP request, so its statement is prepared once.
func (s *Store) User(ctx context.Context, ext string) (User, error) {
	st, err := s.prepared(ctx, `SELECT `+userCols+` FROM users WHERE extension = ?`)
	if err != nil {
		return User{}, err
	}
	u, err := scanUser(st.QueryRowContext(ctx, ext))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", ext, ErrNotFound)
	}
	return u, err
}

// SIPUser returns what SIP needs of a user — extension, role, digest HA1
// values and status — and leaves the other fields empty; ErrNotFound if
// there is none. It is User for the registrar's hot path: every
// authenticated request reads it, and scanning the names, web password and
// timestamps cost about a fifth of the lookup.
func (s *Store) SIPUser(ctx context.Context, ext string) (User, error) {
	st, err := s.prepared(ctx, `SELECT extension, role, ha1_md5, ha1_sha256, status FROM users WHERE extension = ?`)
	if err != nil {
		return User{}, err
	}
	var u User
	var role, status string
	err = st.QueryRowContext(ctx, ext).Scan(&u.Extension, &role, &u.HA1MD5, &u.HA1SHA256, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", ext, ErrNotFound)
	}
	u.Role, u.Status = Role(role), Status(status)
	return u, err
}

// Users lists all users by extension.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY extension`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var us []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		us = append(us, u)
	}
	return us, rows.Err()
}

// SetUserStatus suspends or reactivates a user.
func (s *Store) SetUserStatus(ctx context.Context, ext string, st Status, now time.Time) error {
	if st != StatusActive && st != StatusSuspended {
		return fmt.Errorf("status %q is not active or suspended", st)
	}
	return s.updateUser(ctx, ext, `status = ?`, now, string(st))
}

// SetSIPSecret replaces a user's digest HA1 values.
func (s *Store) SetSIPSecret(ctx context.Context, ext, ha1md5, ha1sha256 string, now time.Time) error {
	return s.updateUser(ctx, ext, `ha1_md5 = ?, ha1_sha256 = ?`, now, ha1md5, ha1sha256)
}

// SetSecrets writes the new secrets of a user in one statement: the digest
// HA1 pair and/or the web password hash; empty fields are left as they are.
func (s *Store) SetSecrets(ctx context.Context, ext, ha1md5, ha1sha256, webHash string, now time.Time) error {
	var sets []string
	var args []any
	if ha1md5 != "" || ha1sha256 != "" {
		sets, args = append(sets, "ha1_md5 = ?", "ha1_sha256 = ?"), append(args, ha1md5, ha1sha256)
	}
	if webHash != "" {
		sets, args = append(sets, "web_password = ?"), append(args, webHash)
	}
	if len(sets) == 0 {
		return fmt.Errorf("user %s: no new secret", ext)
	}
	return s.updateUser(ctx, ext, strings.Join(sets, ", "), now, args...)
}

// SetUserRole changes a user's role.
func (s *Store) SetUserRole(ctx context.Context, ext string, r Role, now time.Time) error {
	if !ValidRole(r) {
		return fmt.Errorf("role %q is not operator, supervisor, security or admin", r)
	}
	return s.updateUser(ctx, ext, `role = ?`, now, string(r))
}

// ValidExtension reports whether ext is an extension: 2 to 8 digits.
func ValidExtension(ext string) bool {
	if len(ext) < 2 || len(ext) > 8 {
		return false
	}
	for _, c := range ext {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// SetWebPassword replaces a user's web password hash.
func (s *Store) SetWebPassword(ctx context.Context, ext, hash string, now time.Time) error {
	return s.updateUser(ctx, ext, `web_password = ?`, now, hash)
}

func (s *Store) updateUser(ctx context.Context, ext, set string, now time.Time, args ...any) error {
	args = append(args, formatTime(now), ext)
	res, err := s.db.ExecContext(ctx, `UPDATE users SET `+set+`, updated_at = ? WHERE extension = ?`, args...)
	if err != nil {
		return fmt.Errorf("update user %s: %w", ext, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %s: %w", ext, ErrNotFound)
	}
	return nil
}

func isConstraint(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint") || strings.Contains(err.Error(), "PRIMARY KEY"))
}
