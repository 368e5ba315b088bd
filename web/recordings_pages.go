package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"plateau/audit"
	"plateau/dialer"
	"plateau/recordings"
	"plateau/store"
)

// recPageData is the recordings page: a search (an operator's own
// recordings only) and, with ?id=, one recording with its player, its
// waveform and its coaching comments.
type recPageData struct {
	Own         bool // an operator's "my recordings": no operator filter
	CanComment  bool
	Operator    string
	Number      string
	Campaign    string
	Disposition string
	Since       string
	Until       string
	Operators   []store.User
	All         bool     // calls without conversation shown too
	Campaigns   []string // the campaign select's choices
	Dispos      []string // the outcome select's choices (disposition names)

	Results    []recordings.Record
	Comments   map[string]int
	Offset     int
	NextOffset int
	PrevOffset int
	HasNext    bool
	Searched   bool

	Selected *recSelected
}

// recSelected is the recording open in the player.
type recSelected struct {
	Rec         recordings.Record
	Comments    []comment
	Playable    bool
	AudioURL    string
	DownloadURL string
	WaveURL     string
	CommentURL  string
	Back        string // the page's query, for the comment form to come back to
	At          string // the comment form's moment, kept after an error
	Text        string
}

// Moment shows a position in a recording (m:ss).
func (d *recPageData) Moment(ms int64) string { return formatMoment(ms) }

// Select is the page's URL opening recording id, keeping the search.
func (d *recPageData) Select(v *view, id string) string { return v.Query("id", id) }

func (s *recService) recordingsPage(w http.ResponseWriter, r *http.Request) {
	s.showRecordings(w, r, http.StatusOK, r.URL.Query().Get("id"), nil, "")
}

// showRecordings renders the page; sel is the recording to open ("" for
// none), form the comment form to show again with errMsg after an error.
func (s *recService) showRecordings(w http.ResponseWriter, r *http.Request, status int, sel string, form *recSelected, errMsg string) {
	u, _ := CurrentUser(r)
	q := r.URL.Query()
	d := &recPageData{Own: u.Role == store.RoleOperator, CanComment: mayComment(u), Operator: q.Get("operator"),
		Number: q.Get("number"), Campaign: q.Get("campaign"), Disposition: q.Get("disposition"),
		Since: q.Get("since"), Until: q.Get("until"), All: q.Get("all") != ""}
	title := "rec.title"
	if d.Own {
		title = "rec.title_own"
	}
	v := s.newView(r, title, d)
	v.Error = errMsg
	fail := func(st int, msg string) {
		status = max(status, st)
		v.Error = strings.TrimSpace(v.Error + " " + msg)
	}
	if !d.Own {
		if users, err := s.deps.Store.Users(r.Context()); err == nil {
			for _, us := range users {
				if us.Role == store.RoleOperator {
					d.Operators = append(d.Operators, us)
				}
			}
		}
	}
	if !d.Own {
		d.Campaigns, d.Dispos = s.recordingChoices(r)
	}
	f, err := s.recordingFilter(r)
	switch {
	case errors.Is(err, errBadNumber):
		fail(http.StatusBadRequest, v.T("rec.err_number"))
	case err != nil:
		fail(http.StatusBadRequest, v.T("err.bad_filter")+" "+v.LocalDetail(err.Error()))
	default:
		if q.Get("limit") == "" {
			f.Limit = 25
		}
		if !d.All {
			// Every call is recorded from its INVITE ("no recording, no
			// call"), so a busy or refused call leaves a recording without
			// conversation: the page hides them unless asked (the API
			// lists everything).
			f.MinDurationMS = minConversationMS
		}
		res, st, code, err := s.search(r.Context(), r, f)
		if st == http.StatusInternalServerError {
			s.internal(w, r, err)
			return
		}
		if st != 0 {
			fail(st, v.T("err."+code))
			break
		}
		d.Searched, d.Results, d.Comments, d.HasNext = true, res.Records, res.Comments, res.HasNext
		d.Offset, d.NextOffset, d.PrevOffset = f.Offset, f.Offset+f.Limit, max(f.Offset-f.Limit, 0)
	}
	if sel != "" {
		x, st, code := s.reach(r, sel, actionView, false)
		if st != 0 {
			fail(st, v.T("err."+code))
		} else {
			cs, err := listComments(r.Context(), s.deps.Store.DB(), x.rec.ID)
			if err != nil {
				x.done(outcomeError, "internal")
				s.internal(w, r, err)
				return
			}
			x.done(outcomeOK, "")
			one := &recSelected{Rec: x.rec, Comments: cs, AudioURL: audioURL(x.rec.ID, false),
				DownloadURL: audioURL(x.rec.ID, true), WaveURL: "/api/v1/recordings/" + pathEscape(x.rec.ID) + "/waveform",
				CommentURL: "/recordings/" + pathEscape(x.rec.ID) + "/comments", Back: r.URL.RawQuery,
				Playable: x.rec.State != recordings.StateOpen && x.rec.State != recordings.StateDeleted}
			if form != nil {
				one.At, one.Text = form.At, form.Text
			}
			d.Selected = one
		}
	}
	s.render(w, r, status, "recordings", v)
}

// commentForm is the supervisor's comment form (POST, CSRF field): back to
// the recording at the new comment, or the page again with the error.
func (s *recService) commentForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, status, code := s.commentTarget(r, id)
	if status == http.StatusInternalServerError {
		s.internal(w, r, errors.New("comment target lookup failed"))
		return
	}
	if status != 0 {
		WriteError(w, r, status, code, nil)
		return
	}
	at, text := r.PostFormValue("at"), r.PostFormValue("text")
	back, _ := url.ParseQuery(r.PostFormValue("back"))
	back.Set("id", id)
	ms, err := parseMoment(at)
	if err == nil {
		text, err = checkComment(rec, ms, text)
	}
	if err != nil {
		// The page again, as it was, with what was typed.
		r2 := r.Clone(r.Context())
		u2 := *r.URL
		u2.Path, u2.RawQuery = "/recordings", back.Encode()
		r2.URL, r2.Method = &u2, http.MethodGet
		msg := T(langOf(r), "err.bad_comment") + " " + strings.TrimPrefix(err.Error(), errBadComment.Error()+": ")
		s.showRecordings(w, r2, http.StatusBadRequest, id, &recSelected{At: at, Text: text}, msg)
		return
	}
	c, err := s.addComment(r.Context(), r, rec, ms, text)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/recordings?%s#c%d", back.Encode(), c.ID), http.StatusSeeOther)
}

// securityData is the security console's recordings page: the last
// verification of the recordings and the access log.
type securityData struct {
	Grouped    bool // recording.access shown as listening sessions
	Sessions   []accessSession
	Verify     *verifyState
	Running    bool
	Kind       string
	Kinds      []string
	Actor      string
	Subject    string
	Since      string
	Until      string
	Records    []audit.Record
	Offset     int
	PrevOffset int
	NextOffset int
	HasNext    bool
}

// verifyState is the last recordings.verified entry (the CLI's or the
// console's).
type verifyState struct {
	At       time.Time
	By       string
	Source   string
	OK       bool
	Verified int
	Open     int
	Problems int
	Since    string
	Found    []string
}

// Str reads a detail of an audit entry as text (the access log's action).
func (d *securityData) Str(m map[string]any, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprint(v)
	}
	return ""
}

var recordingKinds = []string{"recording.access", "recording.search", "recording.comment", "recordings.verified",
	"recording.hold", "recording.unhold", "recording.deleted"}

func (s *recService) securityPage(w http.ResponseWriter, r *http.Request) {
	s.showSecurity(w, r, http.StatusOK, "", "")
}

func (s *recService) showSecurity(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string) {
	q := r.URL.Query()
	d := &securityData{Kind: q.Get("kind"), Kinds: recordingKinds, Actor: q.Get("actor"), Subject: q.Get("subject"),
		Since: q.Get("since"), Until: q.Get("until")}
	known := false
	for _, k := range recordingKinds {
		known = known || k == d.Kind
	}
	if !known {
		d.Kind = "recording.access"
	}
	v := s.newView(r, "rec.security_title", d)
	v.Flash, v.Error = flash, errMsg
	ctx := r.Context()
	last, err := s.deps.Audit.List(ctx, audit.Filter{Kind: "recordings.verified", Limit: 1})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if len(last) == 1 {
		d.Verify = toVerifyState(last[0])
	}
	f, err := s.auditFilter(r)
	if err != nil {
		v.Error = strings.TrimSpace(v.Error + " " + v.T("err.bad_filter") + " " + err.Error())
		status = http.StatusBadRequest
	} else {
		f.Kind = d.Kind
		f.Limit = min(f.Limit, 100)
		d.Grouped = d.Kind == "recording.access" && q.Get("group") != "0"
		if d.Grouped {
			// A page of sessions is read from up to 500 requests; a session
			// cut by the page's edge continues on the next.
			f.Limit = 500
		}
		limit := f.Limit
		f.Limit++
		if d.Records, err = s.deps.Audit.List(ctx, f); err != nil {
			s.internal(w, r, err)
			return
		}
		if len(d.Records) > limit {
			d.Records, d.HasNext = d.Records[:limit], true
		}
		d.Offset, d.NextOffset, d.PrevOffset = f.Offset, f.Offset+limit, max(f.Offset-limit, 0)
		if d.Grouped {
			d.Sessions = groupAccesses(d.Records)
		}
	}
	s.render(w, r, status, "recordings_security", v)
}

func toVerifyState(rec audit.Record) *verifyState {
	num := func(k string) int {
		f, _ := rec.Entry.Details[k].(float64) // JSON numbers
		return int(f)
	}
	vs := &verifyState{At: rec.Time, By: rec.Entry.Actor, Source: rec.Entry.Source, OK: rec.Entry.Outcome == "ok",
		Verified: num("verified"), Open: num("open"), Problems: num("problems")}
	vs.Since, _ = rec.Entry.Details["since"].(string)
	if found, ok := rec.Entry.Details["found"].([]any); ok {
		for _, p := range found {
			vs.Found = append(vs.Found, fmt.Sprint(p))
		}
	}
	return vs
}

// errVerifyRunning: someone else's verification is in progress.
var errVerifyRunning = errors.New("a verification is already running")

// runVerify verifies the recordings that started since (zero: all) and
// audits the run as recordings.verified, as `plateau recordings verify`
// does, so the security page shows the last run whoever made it.
func (s *recService) runVerify(r *http.Request, since time.Time, sinceText string) (recordings.VerifyReport, error) {
	if s.deps.Recordings == nil {
		return recordings.VerifyReport{}, errors.New("recordings index not configured")
	}
	if !s.verifyMu.TryLock() {
		return recordings.VerifyReport{}, errVerifyRunning
	}
	defer s.verifyMu.Unlock()
	u, _ := CurrentUser(r)
	rep, err := recordings.Verify(r.Context(), s.deps.RecordingsDir, s.deps.Recordings, since)
	if err != nil {
		s.audit(r.Context(), audit.Entry{Kind: "recordings.verified", Actor: u.Extension, Outcome: outcomeError,
			Source: "web " + clientIP(r), Details: map[string]any{"error": err.Error()}})
		return rep, err
	}
	s.audit(r.Context(), rep.AuditEntry(u.Extension, "web "+clientIP(r), sinceText))
	return rep, nil
}

func (s *recService) verifyForm(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	sinceText := strings.TrimSpace(r.PostFormValue("since"))
	since, err := s.parseDay(sinceText)
	if err != nil {
		s.showSecurity(w, r, http.StatusBadRequest, "", T(lang, "err.bad_filter")+" "+err.Error())
		return
	}
	rep, err := s.runVerify(r, since, sinceText)
	switch {
	case errors.Is(err, errVerifyRunning):
		s.showSecurity(w, r, http.StatusConflict, "", T(lang, "err.verify_running"))
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	key := "rec.verify_done_ok"
	if !rep.OK() {
		key = "rec.verify_done_problems"
	}
	s.showSecurity(w, r, http.StatusOK, T(lang, key, rep.Verified, len(rep.Problems)), "")
}

// apiVerify: POST /api/v1/recordings/verify[?since=YYYY-MM-DD] → the report.
func (s *recService) apiVerify(w http.ResponseWriter, r *http.Request) {
	sinceText := strings.TrimSpace(r.URL.Query().Get("since"))
	since, err := s.parseDay(sinceText)
	if err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_filter", err)
		return
	}
	rep, err := s.runVerify(r, since, sinceText)
	switch {
	case errors.Is(err, errVerifyRunning):
		WriteError(w, r, http.StatusConflict, "verify_running", nil)
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	problems := make([]map[string]string, 0, len(rep.Problems))
	for _, p := range rep.Problems {
		problems = append(problems, map[string]string{"kind": p.Kind, "id": p.ID, "path": p.Path, "detail": p.Detail})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": rep.OK(), "verified": rep.Verified, "open": rep.Open, "problems": problems})
}

// Label localises a code under prefix ("recout.denied"); an unknown code
// shows as is.
func (d *securityData) Label(v *view, prefix, code string) string {
	if _, ok := catalogue[v.Lang][prefix+"."+code]; ok {
		return v.T(prefix + "." + code)
	}
	return code
}

// recordingChoices lists the campaigns (by name, as recordings are
// labelled) and every outcome name they use, for the search's selects:
// nobody has to type a campaign's exact name. Without campaigns, the
// default outcomes.
func (s *recService) recordingChoices(r *http.Request) (campaigns, dispos []string) {
	var cs []dialer.Campaign
	if s.deps.Dialer != nil {
		var err error
		if cs, err = s.deps.Dialer.Campaigns(r.Context()); err != nil {
			s.log.Warn("recordings: campaign list", "err", err)
		}
	}
	seen := map[string]bool{}
	for _, c := range cs {
		campaigns = append(campaigns, c.Name)
		for _, d := range c.Dispositions {
			if !seen[d.Name] {
				seen[d.Name] = true
				dispos = append(dispos, d.Name)
			}
		}
	}
	if len(dispos) == 0 {
		for _, d := range dialer.DefaultDispositions() {
			dispos = append(dispos, d.Name)
		}
	}
	return campaigns, dispos
}
