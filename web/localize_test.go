package web

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"plateau/config"
	"plateau/policy"
)

// TestLocalDetails: the English details other packages write are shown in
// French (and English) to people. Where cheap, the English comes from the
// code that writes it, so a change there fails here.
func TestLocalDetails(t *testing.T) {
	a := &App{deps: Deps{Region: "FR"}}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	_, numErr := policy.Normalize("abc", "FR")
	_, dayErr := config.Window{Days: "lun-ven", From: "09:00", To: "12:00"}.Parse()
	_, timeErr := config.Window{Days: "mon", From: "9h", To: "12:00"}.Parse()
	for _, tt := range []struct{ in, fr, en string }{
		{`unknown extension "999"`, "poste « 999 » inconnu", "unknown extension “999”"},
		{"extension 103 is suspended", "le poste 103 est suspendu", ""},
		{"role supervisor may not place outside calls (allowed: operator)", "le rôle superviseur ne passe pas d'appels extérieurs (rôles autorisés : téléopérateur)", ""},
		{"+33240123456 is on the do-not-call list", "le 02 40 12 34 56 est sur la liste d'opposition", "02 40 12 34 56 is on the do-not-call list"},
		{"+33240123456 is not approved on the allowlist", "le 02 40 12 34 56 n'est pas approuvé sur la liste des numéros autorisés", ""},
		{"Sun 2026-12-06 03:00:00 CET is outside the calling hours", "dim. 06/12/2026 à 03:00 : hors des heures d'appel", "Sun 06/12/2026 at 03:00: outside the calling hours"},
		{"2026-12-25 is a holiday", "le 25/12/2026 est un jour férié", ""},
		{"Sun 2026-12-06 03:00:00 CET is outside the calling hours; calling opens " + policy.FormatOpens(time.Date(2026, 12, 7, 7, 30, 0, 0, paris)),
			"dim. 06/12/2026 à 03:00 : hors des heures d'appel ; les appels reprennent le lun. 07/12/2026 à 07:30",
			"Sun 06/12/2026 at 03:00: outside the calling hours; calling opens on Mon 07/12/2026 at 07:30"},
		{"2026-12-25 is a holiday; no calling hours are configured", "le 25/12/2026 est un jour férié ; aucune heure d'appel n'est configurée", ""},
		{"extension 101 has 1 call(s) in progress (limit 1)", "le poste 101 a 1 appel(s) en cours (limite 1)", ""},
		{"site has 40 calls in progress (limit 40)", "le site a 40 appels en cours (limite 40)", ""},
		{"allowlist lookup failed: database is locked", "la vérification « liste autorisée » a échoué : appel refusé par prudence", ""},
		{numErr.Error(), "« abc » n'est pas un numéro de téléphone valide", ""},
		{"+33240000001 is on line 3", "le 02 40 00 00 01 figure déjà ligne 3 du fichier", ""},
		{"+33240000001", "02 40 00 00 01", ""},
		{`invalid: windows line 2 "lun-ven 9h": write e.g. mon-fri 09:00-12:00`, "heures d'appel, ligne 2 (« lun-ven 9h ») : écrivez par exemple lun-ven 07:30-12:00", ""},
		{"invalid: windows[0]: " + dayErr.Error(), "heures d'appel n° 0 : « lun » n'est pas un jour (lun, mar, mer, jeu, ven, sam, dim)", ""},
		{"invalid: windows[1]: " + timeErr.Error(), "heures d'appel n° 1 : début : « 9h » n'est pas une heure HH:MM", ""},
		{"invalid: name: 1 to 100 characters", "le nom doit compter de 1 à 100 caractères", ""},
		{`imported into campaign "archi-44"`, "importé dans la campagne « archi-44 »", ""},
		{`disposition "do not call", campaign "archi-44"`, "issue « ne plus appeler », campagne « archi-44 »", ""},
		{"something nobody taught", "détail technique : something nobody taught", "technical detail: something nobody taught"},
	} {
		if got := a.localDetail("fr", tt.in); got != tt.fr {
			t.Errorf("fr %q:\n got  %q\n want %q", tt.in, got, tt.fr)
		}
		if tt.en != "" {
			if got := a.localDetail("en", tt.in); got != tt.en {
				t.Errorf("en %q:\n got  %q\n want %q", tt.in, got, tt.en)
			}
		}
	}
	if got := a.localNote("fr", "Numéro du standard, vu sur le site"); got != "Numéro du standard, vu sur le site" {
		t.Errorf("a person's note was changed: %q", got)
	}
}

// TestEveryShownStringIsCatalogued walks the handlers and the consoles'
// scripts: every error code a handler answers has its message in both
// languages, every key a script asks for exists, and no script writes a
// literal sentence into the page.
func TestEveryShownStringIsCatalogued(t *testing.T) {
	codeRE := regexp.MustCompile(`(?:WriteError\(w, r, [^,]+, |apiFail\(w, r, [^,]+, |userErr\(http\.Status\w+, |return http\.Status\w+, )"([a-z_]+)"`)
	goFiles, _ := filepath.Glob("*.go")
	codes := 0
	for _, f := range goFiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeRE.FindAllStringSubmatch(string(b), -1) {
			codes++
			for _, lang := range languages {
				if _, ok := catalogue[lang]["err."+m[1]]; !ok {
					t.Errorf("%s: error code %q has no %s message (err.%s)", f, m[1], lang, m[1])
				}
			}
		}
	}
	if codes < 40 {
		t.Fatalf("only %d error codes found: the pattern no longer matches the handlers", codes)
	}
	keyRE := regexp.MustCompile(`(?:\bt\(|L\[)"([a-z_]+\.[a-z_.]*[a-z_])"`)
	literalRE := regexp.MustCompile(`(?:textContent|message)\s*=\s*["'][^"']*\pL{2}`)
	scripts, _ := fs.Glob(assets, "static/*.js")
	for _, n := range scripts {
		b, _ := fs.ReadFile(assets, n)
		src := string(b)
		for _, m := range keyRE.FindAllStringSubmatch(src, -1) {
			for _, lang := range languages {
				if _, ok := catalogue[lang][m[1]]; !ok {
					t.Errorf("%s: key %q missing in %s", n, m[1], lang)
				}
			}
		}
		for _, m := range literalRE.FindAllString(src, -1) {
			t.Errorf("%s: literal text written into the page: %s", n, m)
		}
	}
	// The dialer's error codes the operator console translates.
	for _, code := range []string{"not_found", "exists", "invalid", "forbidden", "not_active", "not_assigned", "outside_window",
		"disposition_required", "not_leased", "unknown_disposition", "callback_outside_hours", "correction_closed",
		"dnc_locked", "bad_answer"} {
		if code == "exists" {
			continue // campaign pages only (camp.err_exists)
		}
		if _, ok := catalogue["fr"]["op.code."+code]; !ok {
			t.Errorf("dialer code %q has no op.code message", code)
		}
	}
	_ = fmt.Sprint
}
