package policy

import (
	"fmt"
	"slices"
	"time"

	"plateau/config"
)

// Windows are the weekly hours during which outside calls may be placed, read
// on the wall clock of the site's time zone, with holidays closed all day.
//
// Wall-clock reading is what makes DST harmless: on 2026-03-29 and 2026-10-25
// in Europe/Paris a window written "07:30" still opens at 07:30 local time,
// because we compare the local hour/minute/second, never durations since
// midnight (which are 23 or 25 hours long on those days).
type Windows struct {
	loc      *time.Location
	weekly   []config.WeeklyWindow
	holidays []int // dates in loc as YYYYMMDD, sorted
}

// NewWindows validates the windows and holidays (dates YYYY-MM-DD in loc).
func NewWindows(loc *time.Location, weekly []config.WeeklyWindow, holidays []string) (Windows, error) {
	if loc == nil {
		return Windows{}, fmt.Errorf("%w: no time zone", ErrInvalidConfig)
	}
	for i, w := range weekly {
		if w.From < 0 || w.To > 24*60 || w.From >= w.To {
			return Windows{}, fmt.Errorf("%w: window %d: from %d must be before to %d, within 0..1440 minutes", ErrInvalidConfig, i, w.From, w.To)
		}
	}
	hs := make([]int, 0, len(holidays))
	for _, h := range holidays {
		d, err := time.Parse(time.DateOnly, h)
		if err != nil {
			return Windows{}, fmt.Errorf("%w: holiday %q is not a date YYYY-MM-DD", ErrInvalidConfig, h)
		}
		hs = append(hs, dayKey(d))
	}
	slices.Sort(hs)
	return Windows{loc: loc, weekly: slices.Clone(weekly), holidays: hs}, nil
}

// Location is the site's time zone.
func (w Windows) Location() *time.Location { return w.loc }

// Weekly returns a copy of the weekly windows (the consoles show them).
func (w Windows) Weekly() []config.WeeklyWindow {
	return append([]config.WeeklyWindow(nil), w.weekly...)
}

// IsHoliday reports whether t falls on a holiday in the site's zone.
func (w Windows) IsHoliday(t time.Time) bool {
	if w.loc == nil {
		return false
	}
	return w.holidayOn(t.In(w.loc))
}

// holidayOn reports whether the local time lt (in w.loc) is on a holiday,
// without formatting or allocating: NextClose asks once per day it follows
// (hundreds of times for every call when windows run round the clock).
func (w Windows) holidayOn(lt time.Time) bool {
	if len(w.holidays) == 0 {
		return false
	}
	_, found := slices.BinarySearch(w.holidays, dayKey(lt))
	return found
}

// dayKey is t's date on its own clock as YYYYMMDD, ordered as dates are.
func dayKey(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// Contains reports whether t is inside a window. A zero Windows contains
// nothing: with no hours configured no call is allowed (fail closed).
func (w Windows) Contains(t time.Time) bool {
	_, ok := w.closeOf(t)
	return ok
}

// NextClose returns when the window containing t ends, following windows
// that touch or overlap (12:00-13:00 right after 07:30-12:00, or a 24:00 end
// followed by a 00:00 start) so that a call is not cut at a seam. ok is false
// when t is outside every window.
func (w Windows) NextClose(t time.Time) (end time.Time, ok bool) {
	end, ok = w.closeOf(t)
	if !ok {
		return time.Time{}, false
	}
	// Bounded: a week of back-to-back windows is at most a few hundred seams.
	for range 7 * 24 * 4 {
		next, ok := w.closeOf(end)
		if !ok || !next.After(end) {
			break
		}
		end = next
	}
	return end, true
}

// NextOpen returns the first instant at or after t inside a window: t
// itself when a window contains it, else the next window's start (holidays
// skipped). ok is false when no window ever opens. A refusal tells the
// caller this, so nobody has to read the configuration to know when to
// call back.
func (w Windows) NextOpen(t time.Time) (open time.Time, ok bool) {
	if w.Contains(t) {
		return t, true
	}
	if w.loc == nil || len(w.weekly) == 0 {
		return time.Time{}, false
	}
	lt := t.In(w.loc)
	y, m, d := lt.Date()
	// Each holiday closes at most one day, so among 7*(holidays+1) days
	// every weekday is open at least once.
	for i := 0; i <= 7*(len(w.holidays)+1); i++ {
		day := time.Date(y, m, d+i, 12, 0, 0, 0, w.loc) // noon: never a DST gap
		if w.holidayOn(day) {
			continue
		}
		dy, dm, dd := day.Date()
		var best time.Time
		for _, ww := range w.weekly {
			if !ww.Days[day.Weekday()] {
				continue
			}
			start := time.Date(dy, dm, dd, ww.From/60, ww.From%60, 0, 0, w.loc)
			if start.After(t) && (best.IsZero() || start.Before(best)) {
				best = start
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}

// closeOf returns the latest end among the windows containing t on t's
// local day.
func (w Windows) closeOf(t time.Time) (time.Time, bool) {
	if w.loc == nil || len(w.weekly) == 0 {
		return time.Time{}, false
	}
	lt := t.In(w.loc)
	if w.holidayOn(lt) {
		return time.Time{}, false
	}
	// Seconds since local midnight on the wall clock, nanoseconds kept so
	// that 11:59:59.999 is still inside a window ending at 12:00.
	clock := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute +
		time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	best := -1
	for _, ww := range w.weekly {
		if !ww.Days[lt.Weekday()] {
			continue
		}
		from, to := time.Duration(ww.From)*time.Minute, time.Duration(ww.To)*time.Minute
		if clock >= from && clock < to && ww.To > best {
			best = ww.To
		}
	}
	if best < 0 {
		return time.Time{}, false
	}
	y, m, d := lt.Date()
	// time.Date normalises 24:00 to the next midnight, and resolves a wall
	// time that DST skips to a real instant.
	return time.Date(y, m, d, best/60, best%60, 0, 0, w.loc), true
}
