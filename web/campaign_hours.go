package web

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"plateau/config"
	"plateau/dialer"
)

// Campaign hours as supervisors type them: « lun-ven 07:30-12:00 » (or
// "mon-fri 09:00-12:00", « lundi-vendredi 7h30-12h »), one window a line.
// The dialer stores the English day names config.Window parses; the form
// shows them back in the user's language.

var frDays = map[string]string{
	"lun": "mon", "lundi": "mon", "mar": "tue", "mardi": "tue", "mer": "wed", "mercredi": "wed",
	"jeu": "thu", "jeudi": "thu", "ven": "fri", "vendredi": "fri", "sam": "sat", "samedi": "sat",
	"dim": "sun", "dimanche": "sun",
}

var dayShort = map[string][7]string{
	"fr": {"dim", "lun", "mar", "mer", "jeu", "ven", "sam"},
	"en": {"sun", "mon", "tue", "wed", "thu", "fri", "sat"},
}

// reFrClock is a French time: 7h, 7h30, 07h30.
var reFrClock = regexp.MustCompile(`^(\d{1,2})h(\d{2})?$`)

// englishDays turns « lun-ven,sam » into "mon-fri,sat"; unknown words are
// kept for config.Window to name.
func englishDays(days string) string {
	return regexp.MustCompile(`\p{L}+`).ReplaceAllStringFunc(strings.ToLower(days), func(w string) string {
		if en, ok := frDays[w]; ok {
			return en
		}
		return w
	})
}

// clock turns 7h30 into 07:30 and 7:30 into 07:30; anything else as typed.
func clock(s string) string {
	s = strings.TrimSpace(s)
	if m := reFrClock.FindStringSubmatch(s); m != nil {
		mm := m[2]
		if mm == "" {
			mm = "00"
		}
		return fmt.Sprintf("%02s:%s", m[1], mm)
	}
	if h, m, ok := strings.Cut(s, ":"); ok && len(h) == 1 {
		return "0" + h + ":" + m
	}
	return s
}

// parseWindowLine reads one line of the hours field.
func parseWindowLine(line string) (dialer.Window, bool) {
	line = strings.NewReplacer("–", "-", "—", "-", " à ", "-", " a ", "-").Replace(line)
	days, hours, ok := strings.Cut(line, " ")
	from, to, ok2 := strings.Cut(strings.TrimSpace(hours), "-")
	if !ok || !ok2 {
		return dialer.Window{}, false
	}
	return dialer.Window{Days: englishDays(days), From: clock(from), To: clock(to)}, true
}

// showDays writes stored English days in lang ("mon-fri" → « lun-ven »).
func showDays(days, lang string) string {
	names, ok := dayShort[lang]
	if !ok {
		return days
	}
	en := dayShort["en"]
	return regexp.MustCompile(`[a-z]+`).ReplaceAllStringFunc(days, func(w string) string {
		for i, n := range en {
			if n == w {
				return names[i]
			}
		}
		return w
	})
}

// siteHoursText writes the site's calling hours (policy.windows) as the
// hours field's lines, days in lang: a new campaign starts with them.
func siteHoursText(ws []config.WeeklyWindow, lang string) string {
	names := dayShort[lang]
	if names[0] == "" {
		names = dayShort["en"]
	}
	var lines []string
	for _, w := range ws {
		// Days from Monday, consecutive ones as a range.
		var parts []string
		order := []time.Weekday{1, 2, 3, 4, 5, 6, 0}
		for i := 0; i < len(order); {
			if !w.Days[order[i]] {
				i++
				continue
			}
			j := i
			for j+1 < len(order) && w.Days[order[j+1]] {
				j++
			}
			if j == i {
				parts = append(parts, names[order[i]])
			} else {
				parts = append(parts, names[order[i]]+"-"+names[order[j]])
			}
			i = j + 1
		}
		lines = append(lines, fmt.Sprintf("%s %02d:%02d-%02d:%02d", strings.Join(parts, ","), w.From/60, w.From%60, w.To/60, w.To%60))
	}
	return strings.Join(lines, "\n")
}
