package web

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"plateau/audit"
	"plateau/recordings"
	"plateau/store"
)

// maxCommentRunes bounds a coaching comment (migration 0008 checks it too).
const maxCommentRunes = 2000

// comment is a supervisor's coaching note at a moment of a recording.
type comment struct {
	ID         int64     `json:"id"`
	AtMS       int64     `json:"at_ms"`
	Author     string    `json:"author"`
	AuthorName string    `json:"author_name,omitempty"`
	Text       string    `json:"text"`
	CreatedAt  time.Time `json:"created_at"`
}

// listComments returns a recording's comments in the order of the call.
func listComments(ctx context.Context, db *sql.DB, id string) ([]comment, error) {
	rows, err := db.QueryContext(ctx, `SELECT c.id, c.at_ms, c.author, COALESCE(u.display_name, ''), c.text, c.created_at
		FROM recording_comments c LEFT JOIN users u ON u.extension = c.author
		WHERE c.recording_id = ? ORDER BY c.at_ms, c.id`, id)
	if err != nil {
		return nil, fmt.Errorf("comments of %s: %w", id, err)
	}
	defer rows.Close()
	out := []comment{}
	for rows.Next() {
		var c comment
		var at string
		if err := rows.Scan(&c.ID, &c.AtMS, &c.Author, &c.AuthorName, &c.Text, &at); err != nil {
			return nil, fmt.Errorf("comments of %s: %w", id, err)
		}
		c.CreatedAt = store.ParseTime(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// countComments returns how many comments each of ids has (absent: none).
func countComments(ctx context.Context, db *sql.DB, ids []string) (map[string]int, error) {
	out := map[string]int{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := `SELECT recording_id, count(*) FROM recording_comments WHERE recording_id IN (?` +
		strings.Repeat(",?", len(ids)-1) + `) GROUP BY recording_id`
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("count comments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count comments: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// errBadComment is a comment that cannot be stored as given.
var errBadComment = errors.New("bad comment")

// checkComment validates a comment against its recording.
func checkComment(rec recordings.Record, atMS int64, text string) (string, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return "", fmt.Errorf("%w: the text is empty", errBadComment)
	case utf8.RuneCountInString(text) > maxCommentRunes:
		return "", fmt.Errorf("%w: %d characters, at most %d", errBadComment, utf8.RuneCountInString(text), maxCommentRunes)
	case atMS < 0:
		return "", fmt.Errorf("%w: at_ms %d is negative", errBadComment, atMS)
	case rec.DurationMS > 0 && atMS > rec.DurationMS:
		return "", fmt.Errorf("%w: at_ms %d is after the end of the recording (%d ms)", errBadComment, atMS, rec.DurationMS)
	}
	return text, nil
}

// addComment stores a comment and its recording.comment audit entry in
// one transaction: a comment the chain does not know cannot exist.
func (s *recService) addComment(ctx context.Context, r *http.Request, rec recordings.Record, atMS int64, text string) (comment, error) {
	u, _ := CurrentUser(r)
	now := s.now()
	c := comment{AtMS: atMS, Author: u.Extension, AuthorName: u.DisplayName, Text: text, CreatedAt: now}
	tx, err := s.deps.Store.DB().BeginTx(ctx, nil)
	if err != nil {
		return c, fmt.Errorf("comment on %s: %w", rec.ID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO recording_comments (recording_id, at_ms, author, text, created_at)
		VALUES (?,?,?,?,?)`, rec.ID, atMS, u.Extension, text, store.FormatTime(now))
	if err != nil {
		return c, fmt.Errorf("comment on %s: %w", rec.ID, err)
	}
	if c.ID, err = res.LastInsertId(); err != nil {
		return c, fmt.Errorf("comment on %s: %w", rec.ID, err)
	}
	_, err = audit.AppendTx(ctx, tx, now, audit.Entry{Kind: "recording.comment", Actor: u.Extension, Subject: rec.ID,
		Outcome: outcomeOK, Source: "web " + clientIP(r), Details: map[string]any{"comment": c.ID, "at_ms": atMS,
			"operator": rec.Operator, "text": text}})
	if err != nil {
		return c, fmt.Errorf("comment on %s: %w", rec.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return c, fmt.Errorf("comment on %s: %w", rec.ID, err)
	}
	return c, nil
}

// commentTarget checks that the current user may comment on recording id:
// a supervisor or an admin, on a recording they reach, finished and not
// deleted. Refusals are audited as recording.comment.
func (s *recService) commentTarget(r *http.Request, id string) (recordings.Record, int, string) {
	u, _ := CurrentUser(r)
	refuse := func(outcome, reason string) {
		s.audit(r.Context(), audit.Entry{Kind: "recording.comment", Actor: u.Extension, Subject: id, Outcome: outcome,
			Reason: reason, Source: "web " + clientIP(r), Details: map[string]any{"role": string(u.Role)}})
	}
	if !mayComment(u) {
		refuse(outcomeDenied, "not_commenter")
		return recordings.Record{}, http.StatusForbidden, "not_commenter"
	}
	if s.deps.Recordings == nil {
		return recordings.Record{}, http.StatusServiceUnavailable, "recordings_unavailable"
	}
	if recordings.ValidateID(id) != nil {
		refuse(outcomeUnknown, "not_found")
		return recordings.Record{}, http.StatusNotFound, "not_found"
	}
	rec, err := s.deps.Recordings.Get(r.Context(), id)
	switch {
	case errors.Is(err, recordings.ErrUnknown):
		refuse(outcomeUnknown, "not_found")
		return rec, http.StatusNotFound, "not_found"
	case err != nil:
		s.log.Error("recording lookup", "id", id, "err", err)
		return rec, http.StatusInternalServerError, "internal"
	case !mayReach(u, rec):
		refuse(outcomeDenied, "not_own_recording")
		return rec, http.StatusForbidden, "recording_forbidden"
	case rec.State == recordings.StateDeleted:
		refuse(outcomeGone, "deleted")
		return rec, http.StatusGone, "recording_gone"
	case rec.State == recordings.StateOpen:
		refuse(outcomeRefused, "recording_open")
		return rec, http.StatusConflict, "recording_open"
	}
	return rec, 0, ""
}

// apiAddComment: POST {"at_ms": 12345, "text": "..."} → 201 and the comment.
func (s *recService) apiAddComment(w http.ResponseWriter, r *http.Request) {
	rec, status, code := s.commentTarget(r, r.PathValue("id"))
	if status != 0 {
		WriteError(w, r, status, code, nil)
		return
	}
	var body struct {
		AtMS *int64 `json:"at_ms"`
		Text string `json:"text"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_comment", err)
		return
	}
	if body.AtMS == nil {
		WriteError(w, r, http.StatusBadRequest, "bad_comment", errors.New("at_ms is required"))
		return
	}
	text, err := checkComment(rec, *body.AtMS, body.Text)
	if err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_comment", err)
		return
	}
	c, err := s.addComment(r.Context(), r, rec, *body.AtMS, text)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

// parseMoment reads a moment typed in the comment form: "m:ss", "h:mm:ss"
// or seconds, with optional decimals ("83.5", "1:23.5").
func parseMoment(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: the moment is empty", errBadComment)
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return 0, fmt.Errorf("%w: moment %q: write m:ss or h:mm:ss", errBadComment, s)
	}
	var ms int64
	for i, p := range parts {
		last := i == len(parts)-1
		if last {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || f < 0 || (len(parts) > 1 && f >= 60) || f > 1e7 {
				return 0, fmt.Errorf("%w: moment %q: write m:ss or h:mm:ss", errBadComment, s)
			}
			ms = ms*60 + int64(f*1000+0.5)
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (i > 0 && n >= 60) || n > 1000 {
			return 0, fmt.Errorf("%w: moment %q: write m:ss or h:mm:ss", errBadComment, s)
		}
		ms = ms*60 + int64(n)*1000
	}
	return ms, nil
}

// formatMoment shows ms as m:ss (h:mm:ss past an hour).
func formatMoment(ms int64) string {
	sec := ms / 1000
	if sec >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}
