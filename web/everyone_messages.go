package web

import "fmt"

// everyoneCatalogue holds the strings every role meets (issue 14): the
// error pages, session expiry, the admin's user management. init merges it
// into catalogue, refusing a key that is already there.
var everyoneCatalogue = map[string]map[string]string{
	"fr": {
		"errpage.title":            "Erreur",
		"errpage.title_404":        "Page introuvable",
		"errpage.title_403":        "Accès refusé",
		"errpage.help":             "Réessayez ; si le problème persiste, prévenez l'administrateur.",
		"errpage.help_404":         "L'adresse n'existe pas ou plus : revenez à votre page et reprenez depuis les menus.",
		"errpage.help_403":         "Cette page n'est pas destinée à votre rôle. Si vous en avez besoin, voyez avec l'administrateur.",
		"errpage.to_home":          "Retour à ma page",
		"errpage.to_login":         "Aller à la page de connexion",
		"users.add":                "Ajouter un utilisateur",
		"users.extension":          "Poste (identifiant)",
		"users.extension_hint":     "2 à 8 chiffres.",
		"users.web_password":       "Mot de passe web",
		"users.sip_password":       "Mot de passe du téléphone (SIP)",
		"users.password_hint":      "Au moins un des deux. Mot de passe web : 8 caractères au moins. Le mot de passe du téléphone n'est jamais gardé en clair.",
		"users.no_realm_hint":      "Le mot de passe du téléphone se règle ici seulement si le domaine SIP est configuré ; sinon : plateau user passwd.",
		"users.add_submit":         "Ajouter",
		"users.manage":             "Rôle et mots de passe",
		"users.role_of":            "Rôle du poste %s",
		"users.role_submit":        "Changer le rôle",
		"users.web_password_of":    "Nouveau mot de passe web du poste %s",
		"users.sip_password_of":    "Nouveau mot de passe téléphone du poste %s",
		"users.reset_submit":       "Réinitialiser",
		"users.suspend_reason":     "Motif de la suspension",
		"users.suspend_reason_one": "Motif de la suspension du poste %s",
		"users.done_add":           "Poste %s ajouté.",
		"users.done_password":      "Mot de passe du poste %s réinitialisé.",
		"users.done_role":          "Rôle du poste %s modifié ; ses sessions ont été fermées.",
		"err.bad_extension":        "Poste invalide : 2 à 8 chiffres.",
		"err.bad_role":             "Rôle invalide : téléopérateur, superviseur, sécurité ou administrateur.",
		"err.bad_name":             "Nom trop long : 100 caractères au plus.",
		"err.no_password":          "Indiquez au moins un mot de passe (web ou téléphone).",
		"err.no_realm":             "Le domaine SIP n'est pas configuré : réglez le mot de passe du téléphone avec plateau user passwd.",
		"err.bad_password":         "Mot de passe refusé : 8 caractères au moins pour le web.",
		"err.user_exists":          "Ce poste existe déjà.",
		"err.self_role":            "Vous ne pouvez pas changer votre propre rôle : demandez à un autre administrateur.",
		"err.reason_required":      "Indiquez le motif de la suspension : il est gardé dans le journal d'audit.",
		"err.reason_too_long":      "Motif trop long : 500 caractères au plus.",
		"session.expired":          "Votre session a expiré : reconnectez-vous, vous reviendrez où vous étiez. Ce que vous aviez tapé est gardé.",
	},
	"en": {
		"errpage.title":            "Error",
		"errpage.title_404":        "Page not found",
		"errpage.title_403":        "Access denied",
		"errpage.help":             "Try again; if the problem persists, tell the administrator.",
		"errpage.help_404":         "This address does not exist (any more): go back to your page and use the menus.",
		"errpage.help_403":         "This page is not meant for your role. If you need it, ask the administrator.",
		"errpage.to_home":          "Back to my page",
		"errpage.to_login":         "Go to the login page",
		"users.add":                "Add a user",
		"users.extension":          "Extension (username)",
		"users.extension_hint":     "2 to 8 digits.",
		"users.web_password":       "Web password",
		"users.sip_password":       "Phone (SIP) password",
		"users.password_hint":      "At least one of the two. Web password: 8 characters at least. The phone password is never stored in clear.",
		"users.no_realm_hint":      "The phone password can be set here only when the SIP realm is configured; otherwise: plateau user passwd.",
		"users.add_submit":         "Add",
		"users.manage":             "Role and passwords",
		"users.role_of":            "Role of extension %s",
		"users.role_submit":        "Change the role",
		"users.web_password_of":    "New web password of extension %s",
		"users.sip_password_of":    "New phone password of extension %s",
		"users.reset_submit":       "Reset",
		"users.suspend_reason":     "Reason for the suspension",
		"users.suspend_reason_one": "Reason for suspending extension %s",
		"users.done_add":           "Extension %s added.",
		"users.done_password":      "Extension %s's password reset.",
		"users.done_role":          "Extension %s's role changed; their sessions were closed.",
		"err.bad_extension":        "Invalid extension: 2 to 8 digits.",
		"err.bad_role":             "Invalid role: operator, supervisor, security or admin.",
		"err.bad_name":             "Name too long: 100 characters at most.",
		"err.no_password":          "Give at least one password (web or phone).",
		"err.no_realm":             "The SIP realm is not configured: set the phone password with plateau user passwd.",
		"err.bad_password":         "Password refused: 8 characters at least for the web.",
		"err.user_exists":          "This extension already exists.",
		"err.self_role":            "You cannot change your own role: ask another admin.",
		"err.reason_required":      "Give the reason for the suspension: it is kept in the audit log.",
		"err.reason_too_long":      "Reason too long: 500 characters at most.",
		"session.expired":          "Your session expired: log in again and you will be back where you were. What you had typed is kept.",
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
