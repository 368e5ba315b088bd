package dialer

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzScriptAnswers fuzzes the script's field declarations (a supervisor's
// text) and the answers to them (an operator's, from the browser). Whatever
// the input: fields have a valid name and kind and no name twice; answers
// come back valid UTF-8, trimmed, within MaxAnswerLen and only for declared
// fields, or the error is ErrBadAnswer.
func FuzzScriptAnswers(f *testing.F) {
	f.Add("?[Nom du décideur](decideur)\n?[Courriel](courriel:email)\n", "decideur", "M. Roux")
	f.Add("?[Courriel](courriel:email)", "courriel", "roux@exemple.fr")
	f.Add("?[Courriel](courriel:email)", "courriel", "Roux <roux@exemple.fr>")
	f.Add("?[a](b:phone)\n?[](x)\n?[ok](ok)\n?[ok](ok:email)", "ok", "\xff\xfe")
	f.Add("?[\u00a0](ok)\n?[ ](blank)", "ok", "x")
	f.Fuzz(func(t *testing.T, script, key, value string) {
		fields := ScriptFields(script)
		seen := map[string]bool{}
		for _, fd := range fields {
			if fd.Name == "" || seen[fd.Name] || (fd.Kind != "text" && fd.Kind != "email") || !fieldLine.MatchString("?["+fd.Label+"]("+fd.Name+")") {
				t.Fatalf("field %+v", fd)
			}
			seen[fd.Name] = true
		}
		got, err := checkAnswers(fields, map[string]string{key: value})
		if err != nil {
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("error %v", err)
			}
			return
		}
		for k, v := range got {
			if !seen[k] || !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxAnswerLen || v == "" {
				t.Fatalf("answer %q=%q", k, v)
			}
		}
	})
}
