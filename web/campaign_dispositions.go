package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"plateau/dialer"
)

// A campaign's outcomes (dispositions) and their retry rules, edited as
// text by the supervisor, one per line:
//
//	occupé ; nouvel essai ; 15 min ; 3
//	rendez-vous pris ; terminé
//
// The default outcomes are stored under their English names (what the
// catalogue translates); typed in French they map back, so editing a
// campaign does not rename them.

var actionWords = map[string]dialer.Action{
	"terminé": dialer.ActionDone, "termine": dialer.ActionDone, "done": dialer.ActionDone,
	"nouvel essai": dialer.ActionRetry, "réessayer": dialer.ActionRetry, "retry": dialer.ActionRetry,
	"rappel": dialer.ActionCallback, "callback": dialer.ActionCallback,
	"liste rouge": dialer.ActionDNC, "ne plus appeler": dialer.ActionDNC, "dnc": dialer.ActionDNC,
}

var actionShown = map[string]map[dialer.Action]string{
	"fr": {dialer.ActionDone: "terminé", dialer.ActionRetry: "nouvel essai", dialer.ActionCallback: "rappel", dialer.ActionDNC: "liste rouge"},
	"en": {dialer.ActionDone: "done", dialer.ActionRetry: "retry", dialer.ActionCallback: "callback", dialer.ActionDNC: "dnc"},
}

// dispositionsText writes ds as the form's lines, names in lang.
func dispositionsText(ds []dialer.Disposition, lang string) string {
	shown := actionShown[lang]
	if shown == nil {
		shown = actionShown["en"]
	}
	lines := make([]string, 0, len(ds))
	for _, d := range ds {
		name := d.Name
		if s, ok := catalogue[lang]["disp."+d.Name]; ok {
			name = s
		}
		line := name + " ; " + shown[d.Action]
		if d.Action == dialer.ActionRetry {
			line += " ; " + shortDuration(time.Duration(d.RetryAfter)) + " ; " + strconv.Itoa(d.MaxAttempts)
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func shortDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d j", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	return fmt.Sprintf("%d min", d/time.Minute)
}

// parseDelay reads « 15 min », « 2 h », « 1 j », "90m".
func parseDelay(s string) (time.Duration, bool) {
	s = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"min", time.Minute}, {"mn", time.Minute}, {"m", time.Minute}, {"h", time.Hour}, {"jours", 24 * time.Hour},
		{"jour", 24 * time.Hour}, {"j", 24 * time.Hour}, {"d", 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v <= 0 || v > 10000 {
				return 0, false
			}
			return time.Duration(v) * u.unit, true
		}
	}
	return 0, false
}

// parseDispositions reads the form's lines; none means the defaults.
func parseDispositions(text, lang string) ([]dialer.Disposition, error) {
	var out []dialer.Disposition
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		bad := func() error {
			return fmt.Errorf("%w: dispositions line %d %q: write e.g. busy ; retry ; 15 min ; 3", dialer.ErrInvalid, i+1, line)
		}
		parts := strings.Split(line, ";")
		for j := range parts {
			parts[j] = strings.TrimSpace(parts[j])
		}
		if len(parts) < 2 || parts[0] == "" {
			return nil, bad()
		}
		act, ok := actionWords[strings.ToLower(parts[1])]
		if !ok {
			return nil, bad()
		}
		d := dialer.Disposition{Name: defaultName(parts[0], lang), Action: act}
		switch {
		case act == dialer.ActionRetry:
			if len(parts) != 4 {
				return nil, bad()
			}
			delay, ok := parseDelay(parts[2])
			n, err := strconv.Atoi(parts[3])
			if !ok || err != nil || n < 1 || n > 100 {
				return nil, bad()
			}
			d.RetryAfter, d.MaxAttempts = dialer.Duration(delay), n
		case len(parts) != 2:
			return nil, bad()
		}
		out = append(out, d)
	}
	return out, nil
}

// defaultName maps a default outcome's label in lang back to its stored
// name; another name stays as typed.
func defaultName(name, lang string) string {
	for _, d := range dialer.DefaultDispositions() {
		if strings.EqualFold(name, d.Name) || strings.EqualFold(name, catalogue[lang]["disp."+d.Name]) {
			return d.Name
		}
	}
	return name
}
