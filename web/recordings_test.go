package web

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"plateau/audit"
	"plateau/recordings"
	"plateau/store"
)

// recFixture is the web fixture with a recordings directory and index.
type recFixture struct {
	*fixture
	dir   string
	idx   *recordings.DBIndex
	files map[string][]byte // id → WAV bytes
}

func newRecFixture(t *testing.T) *recFixture {
	t.Helper()
	dir := t.TempDir()
	var idx *recordings.DBIndex
	f := newFixture(t, func(d *Deps) {
		idx = recordings.NewDBIndex(d.Store.DB())
		d.Recordings, d.RecordingsDir = idx, dir
	})
	rf := &recFixture{fixture: f, dir: dir, idx: idx, files: map[string][]byte{}}
	// Two seconds each: 101's call has a 440 Hz tone on the left (the
	// operator) and silence on the right; 102's call the other way round.
	rf.addRecording("rec-101", "101", 16000, true, false)
	rf.addRecording("rec-102", "102", 16000, false, true)
	return rf
}

// synthWAV is a canonical 8 kHz 16-bit stereo WAV of frames frames with a
// 440 Hz tone of amplitude 16000 on the chosen channels.
func synthWAV(frames int, left, right bool) []byte {
	b := make([]byte, 44+frames*4)
	le := binary.LittleEndian
	copy(b[0:], "RIFF")
	le.PutUint32(b[4:], uint32(36+frames*4))
	copy(b[8:], "WAVEfmt ")
	le.PutUint32(b[16:], 16)
	le.PutUint16(b[20:], 1)
	le.PutUint16(b[22:], 2)
	le.PutUint32(b[24:], 8000)
	le.PutUint32(b[28:], 32000)
	le.PutUint16(b[32:], 4)
	le.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	le.PutUint32(b[40:], uint32(frames*4))
	for i := range frames {
		v := int16(16000 * math.Sin(2*math.Pi*440*float64(i)/8000))
		if left {
			le.PutUint16(b[44+i*4:], uint16(v))
		}
		if right {
			le.PutUint16(b[46+i*4:], uint16(v))
		}
	}
	return b
}

// addRecording writes a closed recording as the recorder leaves it: the
// WAV at its place, the sidecar, and the index row with its hash.
func (rf *recFixture) addRecording(id, op string, frames int, left, right bool) {
	t := rf.t
	t.Helper()
	ctx := context.Background()
	start := rf.clock.Now().Add(-time.Hour)
	end := start.Add(time.Duration(frames) * time.Second / 8000)
	path := recordings.Path(rf.dir, id, start)
	wav := synthWAV(frames, left, right)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, wav, 0o640); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(rf.dir, path)
	sum := sha256.Sum256(wav)
	hexSum := hex.EncodeToString(sum[:])
	dur := int64(frames) * 1000 / 8000
	rec := recordings.Record{ID: id, CallIDs: []string{"call-" + id}, Operator: op, Number: "+33240123456",
		Campaign: "archi", Start: start, Path: filepath.ToSlash(rel)}
	if err := rf.idx.Begin(ctx, rec, start, audit.Entry{Kind: "recording.started", Actor: "system", Subject: id}); err != nil {
		t.Fatal(err)
	}
	err := rf.idx.Finish(ctx, id, end, recordings.Final{State: recordings.StateClosed, End: end, DurationMS: dur,
		SHA256: hexSum, Audit: audit.Entry{Kind: "recording.closed", Actor: "system", Subject: id}})
	if err != nil {
		t.Fatal(err)
	}
	sc := &recordings.Sidecar{ID: id, CallIDs: rec.CallIDs, Operator: op, Number: rec.Number, Campaign: rec.Campaign,
		Start: start, End: end, DurationMS: dur, SHA256: hexSum}
	if err := recordings.WriteSidecar(recordings.SidecarPath(rf.dir, id, start), sc); err != nil {
		t.Fatal(err)
	}
	rf.files[id] = wav
}

// accesses returns the recording.access entries about id, newest first.
func (rf *recFixture) accesses(id string) []audit.Record {
	rf.t.Helper()
	recs, err := rf.audit.List(context.Background(), audit.Filter{Kind: "recording.access", Subject: id, Limit: 1000})
	if err != nil {
		rf.t.Fatal(err)
	}
	return recs
}

// lastAccess checks the newest recording.access entry about id.
func (rf *recFixture) lastAccess(id, actor, action, outcome string) audit.Record {
	rf.t.Helper()
	recs := rf.accesses(id)
	if len(recs) == 0 {
		rf.t.Fatalf("no recording.access entry for %s", id)
	}
	e := recs[0].Entry
	if e.Actor != actor || e.Details["action"] != action || e.Outcome != outcome || !strings.HasPrefix(e.Source, "web 127.0.0.1") {
		rf.t.Fatalf("last access to %s: %+v, want actor %s action %s outcome %s from web 127.0.0.1", id, e, actor, action, outcome)
	}
	return recs[0]
}

func TestRecordingsAuthorisationMatrix(t *testing.T) {
	rf := newRecFixture(t)
	cases := []struct {
		who, id string
		status  int
		outcome string
	}{
		{"101", "rec-101", http.StatusOK, "ok"},
		{"101", "rec-102", http.StatusForbidden, "denied"}, // another operator's call
		{"102", "rec-101", http.StatusForbidden, "denied"},
		{"201", "rec-102", http.StatusOK, "ok"}, // supervisor: the site's calls
		{"301", "rec-101", http.StatusOK, "ok"}, // security: all
		{"401", "rec-102", http.StatusOK, "ok"}, // admin: all
		{"201", "rec-nope", http.StatusNotFound, "not_found"},
	}
	for _, tc := range cases {
		c := rf.as(tc.who)
		for _, suffix := range []string{"", "/audio", "/waveform", "/comments", "/audio?download=1"} {
			res, body := c.get("/api/v1/recordings/" + tc.id + suffix)
			if res.StatusCode != tc.status {
				t.Fatalf("%s GET %s%s: %d %s, want %d", tc.who, tc.id, suffix, res.StatusCode, body, tc.status)
			}
			action := map[string]string{"": "view", "/audio": "play", "/waveform": "waveform", "/comments": "view",
				"/audio?download=1": "download"}[suffix]
			rf.lastAccess(tc.id, tc.who, action, tc.outcome)
			if tc.status == http.StatusForbidden {
				var e struct{ Error, Message string }
				decode(t, body, &e)
				if e.Error != "recording_forbidden" || !strings.Contains(e.Message, "journalisé") {
					t.Fatalf("403 body %s", body)
				}
			}
		}
	}
}

func TestRecordingsSearchScope(t *testing.T) {
	rf := newRecFixture(t)
	type page struct {
		Recordings []recordingJSON `json:"recordings"`
		NextOffset *int            `json:"next_offset"`
	}
	ids := func(p page) string {
		var s []string
		for _, r := range p.Recordings {
			s = append(s, r.ID)
		}
		return strings.Join(s, ",")
	}
	op := rf.as("101")
	res, body := op.get("/api/v1/recordings")
	var p page
	decode(t, body, &p)
	if res.StatusCode != http.StatusOK || ids(p) != "rec-101" {
		t.Fatalf("operator's search: %d %s", res.StatusCode, body)
	}
	// Asking for someone else's is refused, and audited.
	if res, body := op.get("/api/v1/recordings?operator=102"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator=102 by 101: %d %s", res.StatusCode, body)
	}
	if recs := rf.audited("recording.search"); recs[0].Entry.Outcome != "denied" || recs[0].Entry.Actor != "101" {
		t.Fatalf("refused search not audited: %+v", recs[0].Entry)
	}
	sup := rf.as("201")
	_, body = sup.get("/api/v1/recordings")
	p = page{}
	decode(t, body, &p)
	if ids(p) != "rec-102,rec-101" && ids(p) != "rec-101,rec-102" {
		t.Fatalf("supervisor's search: %s", body)
	}
	_, body = sup.get("/api/v1/recordings?operator=102&number=%2B33%202%2040%2012%2034%2056&campaign=archi")
	p = page{}
	decode(t, body, &p)
	if ids(p) != "rec-102" {
		t.Fatalf("filtered search: %s", body)
	}
	if recs := rf.audited("recording.search"); recs[0].Entry.Outcome != "ok" || recs[0].Entry.Details["results"] != float64(1) {
		t.Fatalf("search not audited: %+v", recs[0].Entry)
	}
	_, body = sup.get("/api/v1/recordings?limit=1")
	p = page{}
	decode(t, body, &p)
	if len(p.Recordings) != 1 || p.NextOffset == nil || *p.NextOffset != 1 {
		t.Fatalf("page of 1: %s", body)
	}
	today := rf.clock.Now().Format("2006-01-02")
	_, body = sup.get("/api/v1/recordings?since=" + today + "&until=" + today)
	p = page{}
	decode(t, body, &p)
	if len(p.Recordings) != 2 {
		t.Fatalf("today's recordings: %s", body)
	}
	for _, bad := range []string{"since=yesterday", "number=02 40 12 ab", "limit=0", "state=lost"} {
		if res, body := sup.get("/api/v1/recordings?" + bad); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", bad, res.StatusCode, body)
		}
	}
}

func TestRecordingComments(t *testing.T) {
	rf := newRecFixture(t)
	add := func(c *client, id string, body any) (*http.Response, string) {
		return c.api(http.MethodPost, "/api/v1/recordings/"+id+"/comments", body)
	}
	op := rf.as("101")
	if res, body := add(op, "rec-101", map[string]any{"at_ms": 500, "text": "Moi-même"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator commented: %d %s", res.StatusCode, body)
	}
	if e := rf.audited("recording.comment")[0].Entry; e.Actor != "101" || e.Outcome != "denied" || e.Reason != "not_commenter" {
		t.Fatalf("operator's attempt not audited: %+v", e)
	}
	if res, _ := add(rf.as("301"), "rec-101", map[string]any{"at_ms": 500, "text": "x"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("security commented: %d", res.StatusCode)
	}
	sup := rf.as("201")
	noCSRF := &client{f: rf.fixture, hc: sup.hc}
	if res, _ := add(noCSRF, "rec-101", map[string]any{"at_ms": 500, "text": "x"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("comment without CSRF token: %d", res.StatusCode)
	}
	for _, bad := range []map[string]any{{"at_ms": 2500, "text": "après la fin"}, {"at_ms": 100, "text": "   "},
		{"text": "sans moment"}, {"at_ms": -1, "text": "x"}, {"at_ms": 1, "text": strings.Repeat("é", 2001)},
		{"at_ms": 1, "text": "x", "extra": true}} {
		if res, body := add(sup, "rec-101", bad); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("%v: %d %s", bad, res.StatusCode, body)
		}
	}
	res, body := add(sup, "rec-101", map[string]any{"at_ms": 1500, "text": "Bonne reformulation ici."})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("supervisor's comment: %d %s", res.StatusCode, body)
	}
	add(sup, "rec-101", map[string]any{"at_ms": 200, "text": "Présentation claire."})
	if e := rf.audited("recording.comment")[0].Entry; e.Actor != "201" || e.Outcome != "ok" || e.Subject != "rec-101" ||
		e.Details["at_ms"] != float64(200) {
		t.Fatalf("comment not audited: %+v", e)
	}
	// The operator sees them on their own recording, in the call's order.
	res, body = op.get("/api/v1/recordings/rec-101")
	var d recordingDetail
	decode(t, body, &d)
	if res.StatusCode != http.StatusOK || len(d.Comments) != 2 || d.Comments[0].AtMS != 200 ||
		d.Comments[1].Text != "Bonne reformulation ici." || d.Comments[1].AuthorName != "Superviseure" || d.CommentCount != 2 {
		t.Fatalf("operator's view: %d %s", res.StatusCode, body)
	}
	// The other operator does not.
	if res, _ := rf.as("102").get("/api/v1/recordings/rec-101/comments"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("102 read 101's comments: %d", res.StatusCode)
	}
	// The search counts them.
	_, body = op.get("/api/v1/recordings")
	if !strings.Contains(body, `"comment_count": 2`) {
		t.Fatalf("search without the count: %s", body)
	}
}

func TestRecordingAudioRange(t *testing.T) {
	rf := newRecFixture(t)
	sup := rf.as("201")
	wav := rf.files["rec-102"]
	req, _ := http.NewRequest(http.MethodGet, rf.srv.URL+"/api/v1/recordings/rec-102/audio", nil)
	req.Header.Set("Range", "bytes=100-199")
	res, body := sup.do(req)
	if res.StatusCode != http.StatusPartialContent || body != string(wav[100:200]) {
		t.Fatalf("range: %d, %d bytes", res.StatusCode, len(body))
	}
	if cr := res.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 100-199/%d", len(wav)) {
		t.Fatalf("Content-Range %q", cr)
	}
	if res.Header.Get("Accept-Ranges") != "bytes" || res.Header.Get("Content-Type") != "audio/wav" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "inline") || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", res.Header)
	}
	if e := rf.lastAccess("rec-102", "201", "play", "ok").Entry; e.Details["range"] != "bytes=100-199" {
		t.Fatalf("range not audited: %+v", e)
	}
	// The tail, as a browser seeking near the end asks it.
	req.Header.Set("Range", "bytes=-4")
	if res, body := sup.do(req); res.StatusCode != http.StatusPartialContent || body != string(wav[len(wav)-4:]) {
		t.Fatalf("suffix range: %d %q", res.StatusCode, body)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", len(wav)+10))
	if res, _ := sup.do(req); res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range past the end: %d", res.StatusCode)
	}
	res, body = sup.get("/api/v1/recordings/rec-102/audio")
	if res.StatusCode != http.StatusOK || body != string(wav) {
		t.Fatalf("whole file: %d, %d bytes", res.StatusCode, len(body))
	}
	res, body = sup.get("/api/v1/recordings/rec-102/audio?download=1")
	if res.StatusCode != http.StatusOK || body != string(wav) ||
		res.Header.Get("Content-Disposition") != `attachment; filename=rec-102.wav` {
		t.Fatalf("download: %d %v", res.StatusCode, res.Header)
	}
	rf.lastAccess("rec-102", "201", "download", "ok")
	if n := len(rf.accesses("rec-102")); n != 5 {
		t.Fatalf("%d access entries for 5 requests", n)
	}
	// A file gone from the disk while indexed: 404, audited as missing.
	os.Remove(filepath.Join(rf.dir, filepath.FromSlash(mustGet(t, rf, "rec-102").Path)))
	if res, _ := sup.get("/api/v1/recordings/rec-102/audio"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("missing file: %d", res.StatusCode)
	}
	rf.lastAccess("rec-102", "201", "play", "missing")
}

func mustGet(t *testing.T, rf *recFixture, id string) recordings.Record {
	t.Helper()
	r, err := rf.idx.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRecordingDeletedIsGone(t *testing.T) {
	rf := newRecFixture(t)
	rec := mustGet(t, rf, "rec-101")
	// As retention leaves it: files removed, row kept and marked.
	os.Remove(filepath.Join(rf.dir, filepath.FromSlash(rec.Path)))
	if _, err := rf.st.DB().Exec(`UPDATE recordings SET state = 'deleted', deleted_at = ?, deleted_by = 'retention' WHERE id = ?`,
		store.FormatTime(rf.clock.Now()), rec.ID); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"101", "201", "301"} {
		c := rf.as(who)
		res, body := c.get("/api/v1/recordings/rec-101")
		var g struct {
			Error     string
			Recording recordingJSON
		}
		decode(t, body, &g)
		if res.StatusCode != http.StatusGone || g.Error != "recording_gone" || g.Recording.State != "deleted" || g.Recording.AudioURL != "" {
			t.Fatalf("%s metadata of a deleted recording: %d %s", who, res.StatusCode, body)
		}
		rf.lastAccess("rec-101", who, "view", "gone")
		for _, p := range []string{"/audio", "/audio?download=1", "/waveform"} {
			if res, body := c.get("/api/v1/recordings/rec-101" + p); res.StatusCode != http.StatusGone {
				t.Fatalf("%s %s: %d %s", who, p, res.StatusCode, body)
			}
		}
	}
	// The other operator still gets 403: the deletion says nothing to them.
	if res, _ := rf.as("102").get("/api/v1/recordings/rec-101"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("102: %d", res.StatusCode)
	}
	if res, _ := rf.as("201").api(http.MethodPost, "/api/v1/recordings/rec-101/comments",
		map[string]any{"at_ms": 1, "text": "x"}); res.StatusCode != http.StatusGone {
		t.Fatalf("comment on a deleted recording: %d", res.StatusCode)
	}
}

func TestRecordingWaveform(t *testing.T) {
	rf := newRecFixture(t)
	for _, id := range []string{"rec-101", "rec-101"} { // the second from the cache
		res, body := rf.as("101").get("/api/v1/recordings/" + id + "/waveform")
		var wf waveform
		decode(t, body, &wf)
		if res.StatusCode != http.StatusOK || len(wf.Left) != 800 || len(wf.Right) != 800 || wf.DurationMS != 2000 ||
			wf.SampleRate != 8000 || wf.Channels != 2 {
			t.Fatalf("waveform: %d %.200s", res.StatusCode, body)
		}
		for i := range 800 {
			// 20 frames a slice, 440 Hz: every slice holds a crest near 16000.
			if wf.Left[i] < 0.45 || wf.Left[i] > 0.49 {
				t.Fatalf("left peak %d = %v, want ~0.488", i, wf.Left[i])
			}
			if wf.Right[i] > 0.001 {
				t.Fatalf("right peak %d = %v, want ~0 (tone on the left only)", i, wf.Right[i])
			}
		}
	}
	if res, _ := rf.as("201").get("/api/v1/recordings/rec-101/waveform?n=10"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("n=10: %d", res.StatusCode)
	}
	_, body := rf.as("201").get("/api/v1/recordings/rec-102/waveform?n=100")
	var wf waveform
	decode(t, body, &wf)
	if len(wf.Left) != 100 || wf.Left[50] != 0 || wf.Right[50] < 0.45 {
		t.Fatalf("right-only waveform: %.300s", body)
	}
}

func TestWavPeaksStaleHeader(t *testing.T) {
	// A crash leaves a data size of 0 (or too large): read to the end.
	wav := synthWAV(8000, true, true)
	binary.LittleEndian.PutUint32(wav[40:], 0)
	wf, err := wavPeaks(strings.NewReader(string(wav)), int64(len(wav)), 50)
	if err != nil || wf.DurationMS != 1000 || wf.Left[49] < 0.45 || wf.Right[0] < 0.45 {
		t.Fatalf("%v %+v", err, wf)
	}
	binary.LittleEndian.PutUint32(wav[40:], 1<<30)
	if wf, err := wavPeaks(strings.NewReader(string(wav)), int64(len(wav)), 50); err != nil || wf.DurationMS != 1000 {
		t.Fatalf("%v %+v", err, wf)
	}
	for _, bad := range [][]byte{nil, []byte("RIFF0000WAVX"), wav[:30]} {
		if _, err := wavPeaks(strings.NewReader(string(bad)), int64(len(bad)), 50); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
	// No audio at all: zeros, no division by zero.
	empty := synthWAV(0, false, false)
	if wf, err := wavPeaks(strings.NewReader(string(empty)), int64(len(empty)), 50); err != nil || len(wf.Left) != 50 || wf.DurationMS != 0 {
		t.Fatalf("empty: %v %+v", err, wf)
	}
}

func TestParseMoment(t *testing.T) {
	for in, want := range map[string]int64{"0:00": 0, "1:23": 83000, "83": 83000, "1:23.5": 83500, "1:02:03": 3723000, " 0:07 ": 7000} {
		if got, err := parseMoment(in); err != nil || got != want {
			t.Errorf("parseMoment(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "1:60", "-3", "1:2:3:4", "1:-1"} {
		if _, err := parseMoment(in); err == nil {
			t.Errorf("parseMoment(%q) accepted", in)
		}
	}
	if formatMoment(83500) != "1:23" || formatMoment(3723000) != "1:02:03" {
		t.Fatal("formatMoment")
	}
}

func TestRecordingsPages(t *testing.T) {
	rf := newRecFixture(t)
	op := rf.as("101")
	// The operator's nav leads to their recordings.
	if _, body := op.get("/operator"); !strings.Contains(body, `href="/recordings"`) || !strings.Contains(body, "Mes enregistrements") {
		t.Fatal("no link to the operator's recordings")
	}
	res, body := op.get("/recordings")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "rec-101") || strings.Contains(body, "rec-102") ||
		strings.Contains(body, `name="operator"`) {
		t.Fatalf("operator's list: %d", res.StatusCode)
	}
	// A supervisor comments through the form; the operator reads it.
	sup := rf.as("201")
	_, body = sup.get("/recordings?operator=101&id=rec-101")
	for _, want := range []string{`<audio id="rec-audio" controls preload="none" src="/api/v1/recordings/rec-101/audio"`,
		`data-src="/api/v1/recordings/rec-101/waveform"`, `action="/recordings/rec-101/comments"`, `<label for="c-at">`,
		`<label for="c-text">`, `src="/static/recordings.js"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("supervisor's page lacks %s", want)
		}
	}
	rf.lastAccess("rec-101", "201", "view", "ok")
	res, body = sup.form("/recordings/rec-101/comments", url.Values{"at": {"0:01"}, "text": {"Très bien, le rappel du nom."},
		"back": {"operator=101&id=rec-101"}})
	if res.StatusCode != http.StatusSeeOther || !regexp.MustCompile(`^/recordings\?id=rec-101&operator=101#c\d+$`).MatchString(res.Header.Get("Location")) {
		t.Fatalf("comment form: %d %s %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	res, body = sup.form("/recordings/rec-101/comments", url.Values{"at": {"9:99"}, "text": {"Gardé"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Commentaire invalide") || !strings.Contains(body, "Gardé") {
		t.Fatalf("bad moment: %d", res.StatusCode)
	}
	if res, _ := op.form("/recordings/rec-101/comments", url.Values{"at": {"0:01"}, "text": {"x"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator's comment form: %d", res.StatusCode)
	}
	_, body = op.get("/recordings?id=rec-101")
	if !strings.Contains(body, "Très bien, le rappel du nom.") || !strings.Contains(body, `data-at-ms="1000"`) ||
		strings.Contains(body, `id="comment-form"`) {
		t.Fatal("operator's page: no comment, or a comment form")
	}
	// Someone else's recording: the page says why, the access is audited.
	res, body = op.get("/recordings?id=rec-102")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "pas le vôtre") || strings.Contains(body, "rec-audio") {
		t.Fatalf("operator opening 102's: %d", res.StatusCode)
	}
	rf.lastAccess("rec-102", "101", "view", "denied")
	// English on request.
	if _, body := op.get("/recordings?lang=en&id=rec-101"); !strings.Contains(body, "My recordings") || !strings.Contains(body, "Comments") {
		t.Fatal("no English page")
	}
	if res, _ := op.get("/static/recordings.js"); res.StatusCode != http.StatusOK {
		t.Fatal("recordings.js not served")
	}
	if res, _ := op.get("/security/recordings"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator reached the security page: %d", res.StatusCode)
	}
}

func TestRecordingsSecurityPage(t *testing.T) {
	rf := newRecFixture(t)
	rf.as("102").get("/api/v1/recordings/rec-101") // refused, audited
	sec := rf.as("301")
	res, body := sec.get("/security/recordings")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Aucune vérification") ||
		!strings.Contains(body, `class="out-denied"`) || !strings.Contains(body, "pas son propre enregistrement") {
		t.Fatalf("security page: %d %s", res.StatusCode, body)
	}
	if _, body := sec.get("/security/recordings?actor=999"); strings.Contains(body, "pas son propre enregistrement") {
		t.Fatal("actor filter ignored")
	}
	if _, body := sec.get("/security/recordings?kind=recording.search"); !strings.Contains(body, "Recherches") {
		t.Fatal("kind filter")
	}
	// Verify without the token is refused; with it, runs and is audited.
	if res, _ := sec.postForm("/security/recordings/verify", url.Values{}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("verify without CSRF: %d", res.StatusCode)
	}
	res, body = sec.form("/security/recordings/verify", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "2 enregistrements intacts") {
		t.Fatalf("verify: %d %s", res.StatusCode, body)
	}
	e := rf.audited("recordings.verified")[0].Entry
	if e.Actor != "301" || e.Outcome != "ok" || e.Details["verified"] != float64(2) || !strings.HasPrefix(e.Source, "web ") {
		t.Fatalf("verify not audited: %+v", e)
	}
	// One byte flipped: the next run names the file.
	rec := mustGet(t, rf, "rec-102")
	p := filepath.Join(rf.dir, filepath.FromSlash(rec.Path))
	b, _ := os.ReadFile(p)
	b[1000] ^= 0xFF
	os.WriteFile(p, b, 0o640)
	_, body = sec.form("/security/recordings/verify", nil)
	if !strings.Contains(body, "1 problèmes") || !strings.Contains(body, "modified "+rec.Path) {
		t.Fatalf("verify after a flipped byte: %s", body)
	}
	// The API runs it too, for security and admins only.
	res, body = rf.as("401").api(http.MethodPost, "/api/v1/recordings/verify", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"ok": false`) || !strings.Contains(body, `"kind": "modified"`) {
		t.Fatalf("API verify: %d %s", res.StatusCode, body)
	}
	if res, _ := rf.as("201").api(http.MethodPost, "/api/v1/recordings/verify", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("supervisor ran verify: %d", res.StatusCode)
	}
}

func TestRecordingsNav(t *testing.T) {
	has := func(role store.Role, href string) bool {
		for _, it := range navFor(role, "/") {
			if it.Href == href {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		role           store.Role
		list, security bool
	}{
		{store.RoleOperator, true, false}, {store.RoleSupervisor, true, false},
		{store.RoleSecurity, false, true}, {store.RoleAdmin, false, true},
	} {
		if has(tc.role, "/recordings") != tc.list || has(tc.role, "/security/recordings") != tc.security {
			t.Errorf("%s nav: %+v", tc.role, navFor(tc.role, "/"))
		}
	}
}

// TestRecordingsCatalogue: every recordings string in both languages, the
// codes the handlers localise, and templates that keep to the CSP (no
// inline script or style).
func TestRecordingsCatalogue(t *testing.T) {
	for k := range recordingsCatalogue["fr"] {
		if _, ok := recordingsCatalogue["en"][k]; !ok {
			t.Errorf("%q missing in English", k)
		}
	}
	for k := range recordingsCatalogue["en"] {
		if _, ok := recordingsCatalogue["fr"][k]; !ok {
			t.Errorf("%q missing in French", k)
		}
	}
	var keys []string
	for _, c := range []string{"recording_forbidden", "recording_gone", "recording_open", "recordings_unavailable",
		"audio_missing", "not_commenter", "bad_comment", "verify_running", "invalid_e164", "not_found", "bad_filter"} {
		keys = append(keys, "err."+c)
	}
	for _, s := range []recordings.State{recordings.StateOpen, recordings.StateClosed, recordings.StateRepaired,
		recordings.StateFailed, recordings.StateDeleted} {
		keys = append(keys, "recstate."+string(s))
	}
	for _, a := range []string{actionView, actionPlay, actionDownload, actionWaveform} {
		keys = append(keys, "recaction."+a)
	}
	for _, o := range []string{outcomeOK, outcomeDenied, outcomeUnknown, outcomeGone, outcomeMissing, outcomeRefused, outcomeError} {
		keys = append(keys, "recout."+o)
	}
	for _, k := range recordingKinds {
		keys = append(keys, "reckind."+k)
	}
	for _, k := range keys {
		for _, lang := range languages {
			if _, ok := catalogue[lang][k]; !ok {
				t.Errorf("%q missing in %s", k, lang)
			}
		}
	}
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]|<script>|\sstyle=|\son[a-z]+=`)
	names, _ := fs.Glob(assets, "templates/recordings*.html")
	if len(names) != 2 {
		t.Fatalf("templates %v", names)
	}
	for _, n := range names {
		b, _ := fs.ReadFile(assets, n)
		if m := inline.FindString(string(b)); m != "" {
			t.Errorf("%s: inline script or style %q breaks the CSP", n, m)
		}
	}
}
