package web

import "fmt"

// everyoneCatalogue holds the strings every role meets (issue 14): the
// error pages, session expiry, the admin's user management. init merges it
// into catalogue, refusing a key that is already there.
var everyoneCatalogue = map[string]map[string]string{
	"fr": {
		"errpage.title":     "Erreur",
		"errpage.title_404": "Page introuvable",
		"errpage.title_403": "Accès refusé",
		"errpage.help":      "Réessayez ; si le problème persiste, prévenez l'administrateur.",
		"errpage.help_404":  "L'adresse n'existe pas ou plus : revenez à votre page et reprenez depuis les menus.",
		"errpage.help_403":  "Cette page n'est pas destinée à votre rôle. Si vous en avez besoin, voyez avec l'administrateur.",
		"errpage.to_home":   "Retour à ma page",
		"errpage.to_login":  "Aller à la page de connexion",
		"session.expired":   "Votre session a expiré : reconnectez-vous, vous reviendrez où vous étiez. Ce que vous aviez tapé est gardé.",
	},
	"en": {
		"errpage.title":     "Error",
		"errpage.title_404": "Page not found",
		"errpage.title_403": "Access denied",
		"errpage.help":      "Try again; if the problem persists, tell the administrator.",
		"errpage.help_404":  "This address does not exist (any more): go back to your page and use the menus.",
		"errpage.help_403":  "This page is not meant for your role. If you need it, ask the administrator.",
		"errpage.to_home":   "Back to my page",
		"errpage.to_login":  "Go to the login page",
		"session.expired":   "Your session expired: log in again and you will be back where you were. What you had typed is kept.",
	},
}

func init() {
	for lang, msgs := range everyoneCatalogue {
		for k, v := range msgs {
			if _, dup := catalogue[lang][k]; dup {
				panic(fmt.Sprintf("web: catalogue key %q (%s) defined twice", k, lang))
			}
			catalogue[lang][k] = v
		}
	}
}
