package web

// Recordings: search, metadata, audio (with Range), waveform and coaching
// comments, for the JSON API and the consoles' pages.
//
// Who reaches what is decided here, in every handler and in the search
// query itself: an operator only their own recordings, supervisors those of
// their site (one site today: all of them), security and admins all of
// them. Only supervisors and admins comment. Every access to a recording,
// refused or not, is chained into the audit log as recording.access
// (action view, play, download or waveform); searches as recording.search;
// comments as recording.comment.

import (
	"context"
	"errors"
	"fmt"
	"github.com/nyaruka/phonenumbers"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"plateau/audit"
	"plateau/recordings"
	"plateau/store"
)

// Actions of a recording.access entry.
const (
	actionView     = "view"
	actionPlay     = "play"
	actionDownload = "download"
	actionWaveform = "waveform"
)

// Outcomes of recording.* entries.
const (
	outcomeOK      = "ok"
	outcomeDenied  = "denied"
	outcomeUnknown = "not_found"
	outcomeGone    = "gone"
	outcomeMissing = "missing"
	outcomeRefused = "refused"
	outcomeError   = "error"
)

// recService holds the recordings handlers and their state (the waveform
// cache, the verify lock); it lives as long as the App.
type recService struct {
	*App
	peaks    *peakCache
	verifyMu sync.Mutex // one verification at a time: it reads every file
}

var (
	recAuditors = []store.Role{store.RoleSecurity, store.RoleAdmin}
)

func (a *App) recordingRoutes() {
	s := &recService{App: a, peaks: newPeakCache(256)}
	page := func(pattern string, roles []store.Role, h http.HandlerFunc) {
		a.mux.Handle(pattern, RequireRole(roles...)(h))
	}
	// Every role reaches the recordings routes; the handlers narrow it down
	// per recording, and audit the refusals a role check would hide.
	page("GET /api/v1/recordings", all, s.apiSearch)
	page("GET /api/v1/recordings/{id}", all, s.apiRecording)
	page("GET /api/v1/recordings/{id}/audio", all, s.apiAudio)
	page("GET /api/v1/recordings/{id}/waveform", all, s.apiWaveform)
	page("GET /api/v1/recordings/{id}/comments", all, s.apiComments)
	page("POST /api/v1/recordings/{id}/comments", all, s.apiAddComment)
	page("POST /api/v1/recordings/verify", recAuditors, s.apiVerify)

	page("GET /recordings", all, s.recordingsPage)
	page("POST /recordings/{id}/comments", all, s.commentForm)
	page("GET /security/recordings", recAuditors, s.securityPage)
	page("POST /security/recordings/verify", recAuditors, s.verifyForm)
}

// recordingsNav is what navFor adds for the recordings pages.
func recordingsNav(role store.Role, path string) []navItem {
	item := func(href, key string) navItem { return navItem{Href: href, Key: key, Active: path == href} }
	switch role {
	case store.RoleOperator:
		return []navItem{item("/recordings", "nav.my_recordings")}
	case store.RoleSupervisor:
		return []navItem{item("/recordings", "nav.recordings")}
	case store.RoleSecurity, store.RoleAdmin:
		// One entry (the header holds one line at 1366 px): the access log
		// and the verify state, which link to the search.
		it := item("/security/recordings", "nav.recordings")
		it.Active = it.Active || path == "/recordings"
		return []navItem{it}
	}
	return nil
}

// mayReach says whether u may read rec. Plateau serves one site, so a
// supervisor's site is every recording; a second site will filter here and
// in scopeFilter.
func mayReach(u User, rec recordings.Record) bool {
	switch u.Role {
	case store.RoleOperator:
		return rec.Operator != "" && rec.Operator == u.Extension
	case store.RoleSupervisor, store.RoleSecurity, store.RoleAdmin:
		return true
	}
	return false
}

func mayComment(u User) bool { return u.Role == store.RoleSupervisor || u.Role == store.RoleAdmin }

// errNotOwn is a search by an operator for another operator's recordings.
var errNotOwn = errors.New("operators search only their own recordings")

// scopeFilter narrows f to what u may see: an operator's searches are
// always of their own recordings.
func scopeFilter(u User, f *recordings.Filter) error {
	switch u.Role {
	case store.RoleOperator:
		if f.Operator != "" && f.Operator != u.Extension {
			return errNotOwn
		}
		f.Operator = u.Extension
		return nil
	case store.RoleSupervisor, store.RoleSecurity, store.RoleAdmin:
		return nil
	}
	return errNotOwn
}

// access is one audited access to one recording: reach checks it, the
// handler ends it with done or fail, which write the audit entry.
type access struct {
	s   *recService
	r   *http.Request
	u   User
	rec recordings.Record
	e   audit.Entry
}

func (x *access) done(outcome, reason string) {
	x.e.Outcome, x.e.Reason = outcome, reason
	x.s.audit(x.r.Context(), x.e)
}

// reach looks recording id up for the current user and checks that action
// may proceed. On refusal it audits and returns the status and the error
// code to answer (x is non-nil with the record when it was found); on
// success the caller ends the access with x.done or x.fail.
func (s *recService) reach(r *http.Request, id, action string, needAudio bool) (x *access, status int, code string) {
	u, _ := CurrentUser(r)
	details := map[string]any{"action": action, "role": string(u.Role)}
	if rg := r.Header.Get("Range"); rg != "" && needAudio {
		details["range"] = rg
	}
	x = &access{s: s, r: r, u: u, e: audit.Entry{Kind: "recording.access", Actor: u.Extension, Subject: id,
		Source: "web " + clientIP(r), Details: details}}
	if s.deps.Recordings == nil {
		x.done(outcomeError, "recordings_unavailable")
		return x, http.StatusServiceUnavailable, "recordings_unavailable"
	}
	if err := recordings.ValidateID(id); err != nil {
		x.done(outcomeUnknown, "not_found")
		return x, http.StatusNotFound, "not_found"
	}
	rec, err := s.deps.Recordings.Get(r.Context(), id)
	if errors.Is(err, recordings.ErrUnknown) {
		x.done(outcomeUnknown, "not_found")
		return x, http.StatusNotFound, "not_found"
	}
	if err != nil {
		s.log.Error("recording lookup", "id", id, "err", err)
		x.done(outcomeError, "internal")
		return x, http.StatusInternalServerError, "internal"
	}
	x.rec = rec
	details["operator"] = rec.Operator
	if !mayReach(u, rec) {
		x.done(outcomeDenied, "not_own_recording")
		return x, http.StatusForbidden, "recording_forbidden"
	}
	if rec.State == recordings.StateDeleted {
		x.done(outcomeGone, "deleted")
		return x, http.StatusGone, "recording_gone"
	}
	if needAudio && rec.State == recordings.StateOpen {
		x.done(outcomeRefused, "recording_open")
		return x, http.StatusConflict, "recording_open"
	}
	return x, 0, ""
}

// openAudio opens the recording's WAV inside the recordings directory
// (os.OpenInRoot: an index path cannot lead outside it).
func (s *recService) openAudio(rec recordings.Record) (*os.File, error) {
	if s.deps.RecordingsDir == "" {
		return nil, fmt.Errorf("recordings directory not configured: %w", fs.ErrNotExist)
	}
	return os.OpenInRoot(s.deps.RecordingsDir, filepath.FromSlash(rec.Path))
}

// recordingJSON is a recording as the API shows it.
type recordingJSON struct {
	ID           string     `json:"id"`
	CallIDs      []string   `json:"call_ids"`
	Operator     string     `json:"operator"`
	Number       string     `json:"number"`
	Campaign     string     `json:"campaign,omitempty"`
	Start        time.Time  `json:"start"`
	End          *time.Time `json:"end,omitempty"`
	DurationMS   int64      `json:"duration_ms"`
	State        string     `json:"state"`
	Disposition  string     `json:"disposition,omitempty"`
	LegalHold    bool       `json:"legal_hold"`
	SHA256       string     `json:"sha256,omitempty"`
	DeletedAt    *time.Time `json:"deleted_at,omitempty"`
	DeletedBy    string     `json:"deleted_by,omitempty"`
	CommentCount int        `json:"comment_count"`
	AudioURL     string     `json:"audio_url,omitempty"`
	WaveformURL  string     `json:"waveform_url,omitempty"`
}

func toRecordingJSON(r recordings.Record, comments int) recordingJSON {
	j := recordingJSON{ID: r.ID, CallIDs: r.CallIDs, Operator: r.Operator, Number: r.Number, Campaign: r.Campaign,
		Start: r.Start, DurationMS: r.DurationMS, State: string(r.State), Disposition: r.Disposition,
		LegalHold: r.LegalHold, SHA256: r.SHA256, DeletedBy: r.DeletedBy, CommentCount: comments}
	if j.CallIDs == nil {
		j.CallIDs = []string{}
	}
	if !r.End.IsZero() {
		t := r.End
		j.End = &t
	}
	if !r.DeletedAt.IsZero() {
		t := r.DeletedAt
		j.DeletedAt = &t
	}
	if r.State != recordings.StateDeleted && r.State != recordings.StateOpen {
		j.AudioURL = audioURL(r.ID, false)
		j.WaveformURL = "/api/v1/recordings/" + pathEscape(r.ID) + "/waveform"
	}
	return j
}

func audioURL(id string, download bool) string {
	u := "/api/v1/recordings/" + pathEscape(id) + "/audio"
	if download {
		u += "?download=1"
	}
	return u
}

// pathEscape keeps ids readable: ValidateID allows only [A-Za-z0-9._-].
func pathEscape(id string) string { return strings.ReplaceAll(id, "/", "%2F") }

// recordingDetail is GET /api/v1/recordings/{id}: the metadata and the
// coaching comments, oldest moment first.
type recordingDetail struct {
	recordingJSON
	Comments []comment `json:"comments"`
}

// recordingFilter reads a search: operator, number (E.164), campaign,
// disposition, state, since and until (dates in the site's time zone, until
// inclusive), limit (1 to 200, default 50) and offset.
func (s *recService) recordingFilter(r *http.Request) (recordings.Filter, error) {
	q := r.URL.Query()
	f := recordings.Filter{Operator: strings.TrimSpace(q.Get("operator")), Campaign: strings.TrimSpace(q.Get("campaign")),
		Disposition: strings.TrimSpace(q.Get("disposition")), State: recordings.State(strings.TrimSpace(q.Get("state"))), Limit: 50}
	switch f.State {
	case "", recordings.StateOpen, recordings.StateClosed, recordings.StateRepaired, recordings.StateFailed, recordings.StateDeleted:
	default:
		return f, fmt.Errorf("state %q: want open, closed, repaired, failed or deleted", f.State)
	}
	if n := compactNumber(q.Get("number")); n != "" {
		if n = searchNumber(n, s.region()); !store.ValidE164(n) {
			return f, errBadNumber
		}
		f.Number = n
	}

	var err error
	if f.Since, err = s.parseDay(q.Get("since")); err != nil {
		return f, err
	}
	if f.Until, err = s.parseDay(q.Get("until")); err != nil {
		return f, err
	}
	if !f.Until.IsZero() {
		f.Until = f.Until.AddDate(0, 0, 1)
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 200 {
			return f, fmt.Errorf("limit %q: want 1 to 200", v)
		}
	}
	if v := q.Get("offset"); v != "" {
		if f.Offset, err = strconv.Atoi(v); err != nil || f.Offset < 0 {
			return f, fmt.Errorf("offset %q: want 0 or more", v)
		}
	}
	return f, nil
}

var errBadNumber = errors.New("number: write it in international form, e.g. +33240123456")

// compactNumber drops the separators people type in a number.
// minConversationMS is the shortest finished recording the search shows
// by default: under it (shown 0:00) nobody spoke.
const minConversationMS = 1000

// searchNumber reads a number typed the way people write it: E.164, 00
// and the country code, or national in the site's region ("0240123456"
// in France); anything else is returned as typed, to fail validation.
func searchNumber(n, region string) string {
	if strings.HasPrefix(n, "+") {
		return n
	}
	if strings.HasPrefix(n, "00") {
		return "+" + n[2:]
	}
	if len(n) > 20 || strings.Trim(n, "0123456789") != "" {
		return n // letters would be read as a vanity number
	}
	pn, err := phonenumbers.Parse(n, region)
	if err != nil {
		return n
	}
	return phonenumbers.Format(pn, phonenumbers.E164)
}

func compactNumber(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '.', '-', '(', ')', '/':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

// searchResult is one page of a search.
type searchResult struct {
	Records  []recordings.Record
	Comments map[string]int
	HasNext  bool
}

// search runs f for the current user, scoped, and audits it
// (recording.search, with the filter and the number of results).
func (s *recService) search(ctx context.Context, r *http.Request, f recordings.Filter) (searchResult, int, string, error) {
	u, _ := CurrentUser(r)
	e := audit.Entry{Kind: "recording.search", Actor: u.Extension, Source: "web " + clientIP(r),
		Details: map[string]any{"role": string(u.Role)}}
	if s.deps.Recordings == nil {
		return searchResult{}, http.StatusServiceUnavailable, "recordings_unavailable", nil
	}
	asked := f.Operator
	if err := scopeFilter(u, &f); err != nil {
		e.Outcome, e.Reason, e.Subject = outcomeDenied, "not_own_recording", asked
		e.Details["operator"] = asked
		s.audit(ctx, e)
		return searchResult{}, http.StatusForbidden, "recording_forbidden", err
	}
	for k, v := range map[string]string{"operator": f.Operator, "number": f.Number, "campaign": f.Campaign,
		"disposition": f.Disposition, "state": string(f.State)} {
		if v != "" {
			e.Details[k] = v
		}
	}
	if !f.Since.IsZero() {
		e.Details["since"] = f.Since.UTC().Format(time.RFC3339)
	}
	if !f.Until.IsZero() {
		e.Details["until"] = f.Until.UTC().Format(time.RFC3339)
	}
	e.Details["offset"] = f.Offset
	limit := f.Limit
	f.Limit++ // one more says whether there is a next page
	recs, err := s.deps.Recordings.Search(ctx, f)
	if err != nil {
		return searchResult{}, http.StatusInternalServerError, "internal", err
	}
	res := searchResult{Records: recs}
	if len(recs) > limit {
		res.Records, res.HasNext = recs[:limit], true
	}
	ids := make([]string, len(res.Records))
	for i, rec := range res.Records {
		ids[i] = rec.ID
	}
	if res.Comments, err = countComments(ctx, s.deps.Store.DB(), ids); err != nil {
		return searchResult{}, http.StatusInternalServerError, "internal", err
	}
	e.Outcome = outcomeOK
	e.Details["results"] = len(res.Records)
	s.audit(ctx, e)
	return res, 0, "", nil
}

func (s *recService) apiSearch(w http.ResponseWriter, r *http.Request) {
	f, err := s.recordingFilter(r)
	if errors.Is(err, errBadNumber) {
		WriteError(w, r, http.StatusBadRequest, "invalid_e164", err)
		return
	}
	if err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_filter", err)
		return
	}
	res, status, code, err := s.search(r.Context(), r, f)
	if status == http.StatusInternalServerError {
		s.internal(w, r, err)
		return
	}
	if status != 0 {
		WriteError(w, r, status, code, err)
		return
	}
	out := make([]recordingJSON, 0, len(res.Records))
	for _, rec := range res.Records {
		out = append(out, toRecordingJSON(rec, res.Comments[rec.ID]))
	}
	body := map[string]any{"recordings": out, "limit": f.Limit, "offset": f.Offset, "next_offset": nil}
	if res.HasNext {
		body["next_offset"] = f.Offset + f.Limit
	}
	writeJSON(w, http.StatusOK, body)
}

// apiRecording answers the metadata and the comments; a deleted recording
// answers 410 with its metadata (the row is kept as evidence).
func (s *recService) apiRecording(w http.ResponseWriter, r *http.Request) {
	x, status, code := s.reach(r, r.PathValue("id"), actionView, false)
	if status == http.StatusGone {
		writeJSON(w, status, map[string]any{"error": code, "message": T(langOf(r), "err."+code),
			"recording": toRecordingJSON(x.rec, 0)})
		return
	}
	if status != 0 {
		WriteError(w, r, status, code, nil)
		return
	}
	cs, err := listComments(r.Context(), s.deps.Store.DB(), x.rec.ID)
	if err != nil {
		x.done(outcomeError, "internal")
		s.internal(w, r, err)
		return
	}
	x.done(outcomeOK, "")
	writeJSON(w, http.StatusOK, recordingDetail{recordingJSON: toRecordingJSON(x.rec, len(cs)), Comments: cs})
}

// apiAudio serves the WAV with Range support (http.ServeContent), inline
// for the player or as an attachment with ?download=1. Each request is
// audited, with its Range: a browser that seeks asks again.
func (s *recService) apiAudio(w http.ResponseWriter, r *http.Request) {
	download := r.URL.Query().Get("download") == "1"
	action := actionPlay
	if download {
		action = actionDownload
	}
	x, status, code := s.reach(r, r.PathValue("id"), action, true)
	if status != 0 {
		WriteError(w, r, status, code, nil)
		return
	}
	f, err := s.openAudio(x.rec)
	if err != nil {
		s.audioError(w, x, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.audioError(w, x, err)
		return
	}
	x.done(outcomeOK, "")
	disp := "inline"
	if download {
		disp = "attachment"
	}
	h := w.Header()
	h.Set("Content-Type", "audio/wav")
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": x.rec.ID + ".wav"}))
	// Recordings stay off the shared PCs' disks.
	h.Set("Cache-Control", "no-store")
	if x.rec.SHA256 != "" {
		h.Set("ETag", `"`+x.rec.SHA256+`"`) // lets If-Range resume safely
	}
	http.ServeContent(w, r, x.rec.ID+".wav", st.ModTime(), f)
}

// audioError answers a recording whose file cannot be read: missing is an
// integrity problem (recordings verify reports it too), anything else an
// internal error.
func (s *recService) audioError(w http.ResponseWriter, x *access, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		s.log.Error("recording file missing", "id", x.rec.ID, "path", x.rec.Path, "state", x.rec.State, "err", err)
		x.done(outcomeMissing, "audio_missing")
		WriteError(w, x.r, http.StatusNotFound, "audio_missing", nil)
		return
	}
	x.done(outcomeError, "internal")
	s.internal(w, x.r, err)
}

// apiWaveform answers the peaks of each channel (left: operator, right:
// outside party), n slices (?n=, 50 to 4000, default 800), each the largest
// absolute sample of its slice scaled to 0..1.
func (s *recService) apiWaveform(w http.ResponseWriter, r *http.Request) {
	n := defaultPeaks
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 50 || n > 4000 {
			WriteError(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("n %q: want 50 to 4000", v))
			return
		}
	}
	x, status, code := s.reach(r, r.PathValue("id"), actionWaveform, true)
	if status != 0 {
		WriteError(w, r, status, code, nil)
		return
	}
	wf, err := s.waveform(x.rec, n)
	if err != nil {
		if errors.Is(err, errNotWAV) {
			x.done(outcomeError, "not_wav")
			s.internal(w, r, err)
			return
		}
		s.audioError(w, x, err)
		return
	}
	x.done(outcomeOK, "")
	writeJSON(w, http.StatusOK, wf)
}

func (s *recService) waveform(rec recordings.Record, n int) (waveform, error) {
	key := ""
	if rec.SHA256 != "" {
		// The hash of a recording never changes (migration 0004's
		// trigger), so it keys the cache safely.
		key = fmt.Sprintf("%s/%s/%d", rec.ID, rec.SHA256, n)
		if wf, ok := s.peaks.get(key); ok {
			return wf, nil
		}
	}
	f, err := s.openAudio(rec)
	if err != nil {
		return waveform{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return waveform{}, err
	}
	wf, err := wavPeaks(f, st.Size(), n)
	if err != nil {
		return waveform{}, fmt.Errorf("waveform %s: %w", rec.ID, err)
	}
	wf.ID = rec.ID
	if key != "" {
		s.peaks.put(key, wf)
	}
	return wf, nil
}

func (s *recService) apiComments(w http.ResponseWriter, r *http.Request) {
	x, status, code := s.reach(r, r.PathValue("id"), actionView, false)
	if status != 0 {
		WriteError(w, r, status, code, nil)
		return
	}
	cs, err := listComments(r.Context(), s.deps.Store.DB(), x.rec.ID)
	if err != nil {
		x.done(outcomeError, "internal")
		s.internal(w, r, err)
		return
	}
	x.done(outcomeOK, "")
	writeJSON(w, http.StatusOK, map[string]any{"comments": cs})
}
