package web

import (
	"fmt"
	"slices"
	"time"

	"plateau/audit"
)

// A listening is many HTTP requests: the page, the waveform, and the
// audio in Range requests as the player seeks and buffers, each audited
// (recording.access). The security page groups them into listening
// sessions: the same person, recording, source and outcome, with no more
// than sessionGap between two requests. Every request stays in the audit
// log and the raw rows are one click away (?group=0).

const sessionGap = 10 * time.Minute

// accessSession is one listening session, from the audit entries.
type accessSession struct {
	First, Last time.Time
	Actor       string
	Subject     string
	Source      string
	Outcome     string
	Reason      string
	Actions     []string // in the order first seen: view, waveform, play, download
	Requests    int
	Ranges      int // audio requests with a Range header (seeks, buffering)
	FirstSeq    int64
	LastSeq     int64
}

// Span is how long the session lasted, m:ss.
func (s accessSession) Span() string {
	d := s.Last.Sub(s.First).Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// groupAccesses groups recording.access entries, newest first as listed,
// into sessions, newest first.
func groupAccesses(recs []audit.Record) []accessSession {
	var out []accessSession
	open := map[string]int{} // key → index in out of the session still open
	for _, r := range recs {
		e := r.Entry
		key := e.Actor + "\x00" + e.Subject + "\x00" + e.Source + "\x00" + e.Outcome
		i, ok := open[key]
		if ok && out[i].First.Sub(r.Time) > sessionGap {
			ok = false
		}
		if !ok {
			out = append(out, accessSession{First: r.Time, Last: r.Time, Actor: e.Actor, Subject: e.Subject, Source: e.Source,
				Outcome: e.Outcome, Reason: e.Reason, FirstSeq: r.Seq, LastSeq: r.Seq})
			i = len(out) - 1
			open[key] = i
		}
		s := &out[i]
		s.First, s.FirstSeq = r.Time, r.Seq // going back in time
		s.Requests++
		if a, _ := e.Details["action"].(string); a != "" && !slices.Contains(s.Actions, a) {
			s.Actions = append([]string{a}, s.Actions...)
		}
		if _, has := e.Details["range"]; has {
			s.Ranges++
		}
	}
	return out
}
