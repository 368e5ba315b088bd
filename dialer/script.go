package dialer

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ScriptField is an answer the campaign's script asks the operator to
// capture during the call (the decision-maker's name, an e-mail…). It is
// declared in the script's Markdown on a line of its own:
//
//	?[Nom du décideur](decideur)
//	?[Courriel du décideur](courriel:email)
//
// The answers are saved with the disposition and go into the client export,
// one column per field.
type ScriptField struct {
	Name  string `json:"name"`  // column name: a-z, 0-9, _ and -
	Label string `json:"label"` // shown to the operator
	Kind  string `json:"kind"`  // text or email
}

// MaxAnswerLen bounds one answer (runes).
const MaxAnswerLen = 500

var fieldLine = regexp.MustCompile(`^\?\[([^\[\]]{1,80})\]\(([a-z0-9_-]{1,40})(?::(text|email))?\)$`)

// ScriptFields lists the capture fields a script declares, in order; a
// name declared twice keeps its first declaration.
func ScriptFields(script string) []ScriptField {
	out := []ScriptField{}
	seen := map[string]bool{}
	for _, line := range strings.Split(script, "\n") {
		f, ok := ParseFieldLine(line)
		if !ok || seen[f.Name] {
			continue
		}
		seen[f.Name] = true
		out = append(out, f)
	}
	return out
}

// ParseFieldLine reads one field declaration line (see ScriptField).
func ParseFieldLine(line string) (ScriptField, bool) {
	m := fieldLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil || strings.TrimSpace(m[1]) == "" {
		// A blank label would show the operator an unnamed input box.
		return ScriptField{}, false
	}
	kind := m[3]
	if kind == "" {
		kind = "text"
	}
	return ScriptField{Name: m[2], Label: strings.TrimSpace(m[1]), Kind: kind}, true
}

// checkAnswers validates answers against the script's fields and returns
// them trimmed, empty ones left out.
func checkAnswers(fields []ScriptField, answers map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range answers {
		var f *ScriptField
		for i := range fields {
			if fields[i].Name == k {
				f = &fields[i]
			}
		}
		if f == nil {
			return nil, fmt.Errorf("%w: %q is not a field of the campaign's script", ErrBadAnswer, k)
		}
		v = strings.TrimSpace(v)
		switch {
		case v == "":
			continue
		case !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxAnswerLen:
			return nil, fmt.Errorf("%w: %s: at most %d characters", ErrBadAnswer, k, MaxAnswerLen)
		case f.Kind == "email" && !isEmail(v):
			return nil, fmt.Errorf("%w: %s: %q is not an e-mail address", ErrBadAnswer, k, v)
		}
		out[k] = v
	}
	return out, nil
}

func isEmail(v string) bool {
	a, err := mail.ParseAddress(v)
	return err == nil && a.Address == v && a.Name == "" && strings.Contains(v[strings.LastIndexByte(v, '@'):], ".")
}
