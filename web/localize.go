package web

import (
	"regexp"
	"strings"
	"time"
)

// Details written in English by other packages (policy decisions, the
// dialer's import and campaign checks) reach the consoles as text. They
// stay English in logs and the audit chain (stable, greppable), and are
// translated here for people: each known shape is a pattern with a
// catalogue key under "detail."; numbers are shown the site's way and
// dates on the site's clock. A shape nobody taught this table is shown
// under "detail.technical" so it is at least marked as such
// (TestLocalDetails keeps the table in step with the messages it knows).

type detailPattern struct {
	re  *regexp.Regexp
	key string
	// args picks and reshapes the submatches; nil: all of them as is.
	args func(a *App, lang string, m []string) []any
}

var (
	reMon   = regexp.MustCompile(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}):\d{2} \S+ is outside the calling hours$`)
	details = []detailPattern{
		{re: regexp.MustCompile(`^unknown extension "([^"]*)"$`), key: "detail.unknown_extension"},
		{re: regexp.MustCompile(`^extension (\S+) is suspended$`), key: "detail.suspended"},
		{re: regexp.MustCompile(`^role (\S+) may not place outside calls \(allowed: (.*)\)$`), key: "detail.role_forbidden",
			args: func(a *App, lang string, m []string) []any {
				var rs []string
				for _, r := range strings.Split(m[2], ", ") {
					rs = append(rs, T(lang, "role."+strings.TrimSpace(r)))
				}
				return []any{T(lang, "role."+m[1]), strings.Join(rs, ", ")}
			}},
		{re: regexp.MustCompile(`^(\+\d+) is on the do-not-call list$`), key: "detail.dnc", args: numberArg},
		{re: regexp.MustCompile(`^(\+\d+) is not approved on the allowlist$`), key: "detail.not_allowlisted", args: numberArg},
		{re: reMon, key: "detail.outside_window", args: func(a *App, lang string, m []string) []any {
			d, err := time.Parse(time.DateOnly, m[2])
			if err != nil {
				return []any{m[2], m[3]}
			}
			return []any{T(lang, "wd."+weekday(int(d.Weekday()))) + " " + d.Format("02/01/2006"), m[3]}
		}},
		{re: regexp.MustCompile(`^calling opens (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}) \S+$`), key: "detail.opens",
			args: func(a *App, lang string, m []string) []any {
				d, err := time.Parse(time.DateOnly, m[1])
				if err != nil {
					return []any{m[1], m[2]}
				}
				return []any{T(lang, "wd."+weekday(int(d.Weekday()))) + " " + d.Format("02/01/2006"), m[2]}
			}},
		{re: regexp.MustCompile(`^no calling hours are configured$`), key: "detail.no_hours", args: none},
		{re: regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2}) is a holiday$`), key: "detail.holiday",
			args: func(a *App, lang string, m []string) []any { return []any{m[3] + "/" + m[2] + "/" + m[1]} }},
		{re: regexp.MustCompile(`^extension (\S+) has (\d+) call\(s\) in progress \(limit (\d+)\)$`), key: "detail.limit_operator"},
		{re: regexp.MustCompile(`^site has (\d+) calls in progress \(limit (\d+)\)$`), key: "detail.limit_site"},
		{re: regexp.MustCompile(`^(\w+) lookup failed: `), key: "detail.lookup_failed",
			args: func(a *App, lang string, m []string) []any { return []any{T(lang, "rule."+m[1])} }},
		{re: regexp.MustCompile(`^invalid phone number: (?:"([^"]*)"|empty|longer than)`), key: "detail.invalid_number",
			args: func(a *App, lang string, m []string) []any { return []any{m[1]} }},
		{re: regexp.MustCompile(`^(\+\d+) is on line (\d+)$`), key: "detail.duplicate_line",
			args: func(a *App, lang string, m []string) []any { return []any{a.number(m[1]), m[2]} }},
		{re: regexp.MustCompile(`^\+\d{6,15}$`), key: "detail.number",
			args: func(a *App, lang string, m []string) []any { return []any{a.number(m[0])} }},
		{re: regexp.MustCompile(`^(?:invalid: )?windows line (\d+) "(.*)": write e\.g\. mon-fri 09:00-12:00$`), key: "detail.windows_line"},
		{re: regexp.MustCompile(`^(?:invalid: )?windows\[(\d+)\]: (.*)$`), key: "detail.windows_entry",
			args: func(a *App, lang string, m []string) []any { return []any{m[1], windowProblem(lang, m[2])} }},
		{re: regexp.MustCompile(`^unreadable contact file: (?:not a readable Excel workbook|unreadable Excel workbook|the workbook has no sheet|empty sheet|sheet )`),
			key: "detail.xlsx_unreadable", args: none},
		{re: regexp.MustCompile(`^date "(.*)": want DD/MM/YYYY$`), key: "detail.bad_date"},
		{re: regexp.MustCompile(`^(?:invalid: )?dispositions line (\d+) "(.*)": write e\.g\. `), key: "detail.dispo_line"},
		{re: regexp.MustCompile(`^imported into campaign "(.*)"$`), key: "detail.note_imported"},
		{re: regexp.MustCompile(`^disposition "(.*)", campaign "(.*)"$`), key: "detail.note_disposition",
			args: func(a *App, lang string, m []string) []any { return []any{T(lang, "disp."+m[1]), m[2]} }},
		{re: regexp.MustCompile(`^(?:invalid: )?name: 1 to 100 characters$`), key: "detail.campaign_name", args: none},
		{re: regexp.MustCompile(`^(?:invalid: )?max_attempts must not be negative$`), key: "detail.max_attempts", args: none},
		{re: regexp.MustCompile(`^(?:invalid: )?operators: `), key: "detail.operators", args: none},
		{re: regexp.MustCompile(`^(?:invalid: )?dispositions\[\d+\]`), key: "detail.dispositions", args: none},
		{re: regexp.MustCompile(`recorder`), key: "detail.recorder", args: none},
	}
)

func numberArg(a *App, lang string, m []string) []any { return []any{a.number(m[1])} }
func none(*App, string, []string) []any               { return nil }

// weekday is a weekday number (0-6) as text, for the "wd." keys.
func weekday(i int) string { return string(rune('0' + i)) }

// number shows an E.164 number the site's way.
func (a *App) number(e164 string) string { return displayNumber(e164, a.region()) }

var (
	reWinDay   = regexp.MustCompile(`^days: "(.*)" is not a day`)
	reWinTime  = regexp.MustCompile(`^(from|to): "(.*)" is not a time HH:MM$`)
	reWinOrder = regexp.MustCompile(`^from (\S+) must be before to (\S+)$`)
)

// windowProblem translates config.Window.Parse's errors.
func windowProblem(lang, s string) string {
	if m := reWinDay.FindStringSubmatch(s); m != nil {
		return T(lang, "detail.win_day", m[1])
	}
	if m := reWinTime.FindStringSubmatch(s); m != nil {
		return T(lang, "detail.win_time", T(lang, "detail.win_"+m[1]), m[2])
	}
	if m := reWinOrder.FindStringSubmatch(s); m != nil {
		return T(lang, "detail.win_order", m[1], m[2])
	}
	if strings.HasPrefix(s, "days is required") {
		return T(lang, "detail.win_days_required")
	}
	return s
}

// localNote translates a note the software wrote (an import's proposal,
// a do-not-call disposition); a person's own note is shown as written.
func (a *App) localNote(lang, note string) string {
	for _, p := range details {
		if p.key == "detail.note_imported" || p.key == "detail.note_disposition" {
			if p.re.MatchString(note) {
				return a.localDetail(lang, note)
			}
		}
	}
	return note
}

// localDetail translates an English detail for lang.
func (a *App) localDetail(lang, detail string) string {
	detail = strings.TrimSpace(detail)
	if detail == "" {
		return ""
	}
	for _, p := range details {
		m := p.re.FindStringSubmatch(detail)
		if m == nil {
			continue
		}
		var args []any
		if p.args != nil {
			args = p.args(a, lang, m)
		} else {
			for _, s := range m[1:] {
				args = append(args, s)
			}
		}
		return T(lang, p.key, args...)
	}
	// Policy joins facts with "; " (e.g. the refusal, then when calling
	// opens): translate each.
	if parts := strings.Split(detail, "; "); len(parts) > 1 {
		for i, p := range parts {
			parts[i] = a.localDetail(lang, p)
		}
		return strings.Join(parts, T(lang, "detail.join"))
	}
	return T(lang, "detail.technical", detail)
}
