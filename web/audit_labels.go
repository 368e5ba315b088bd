package web

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The audit log as security reads it: kinds, outcomes and detail keys in
// the user's language (the raw code stays in a title and in the filter's
// value, it is what `plateau audit` prints), details one per line.

var auditCatalogue = map[string]map[string]string{
	"fr": {
		"kind.allowlist.approve": "liste blanche : approbation", "kind.allowlist.export": "liste blanche : export",
		"kind.allowlist.propose": "liste blanche : proposition", "kind.allowlist.propose.bulk": "liste blanche : propositions (import)",
		"kind.allowlist.reject": "liste blanche : refus", "kind.allowlist.revoke": "liste blanche : révocation",
		"kind.allowlist.validity": "liste blanche : fin de validité",
		"kind.auth.ban":           "téléphone banni (échecs d'authentification)", "kind.call.dial": "appel composé",
		"kind.call.dtmf": "touches composées pendant un appel", "kind.call.ended": "fin d'appel",
		"kind.call.hijack_attempt": "tentative de détournement d'appel", "kind.call.late_answer": "réponse tardive",
		"kind.call.leg_leaked": "branche d'appel restée ouverte", "kind.call.media": "flux audio",
		"kind.call.media_refused": "flux audio refusé", "kind.call.transferred": "appel transféré",
		"kind.campaign.create": "campagne créée", "kind.campaign.export": "campagne : export client",
		"kind.campaign.import": "campagne : import de contacts", "kind.campaign.status": "campagne : changement d'état",
		"kind.campaign.update": "campagne modifiée", "kind.dialer.callback_reassigned": "rappel réattribué",
		"kind.dialer.dispose": "issue d'appel saisie", "kind.dialer.outcome_corrected": "issue d'appel corrigée",
		"kind.dialer.skip": "contact passé", "kind.dnc.add": "liste rouge : ajout", "kind.dnc.remove": "liste rouge : retrait",
		"kind.monitor.coaching": "coaching", "kind.monitor.end": "écoute terminée", "kind.monitor.join": "écoute : entrée",
		"kind.monitor.mode": "écoute : changement de mode", "kind.monitor.refused": "écoute refusée",
		"kind.monitor.selftest": "autotest de l'écoute", "kind.monitor.start": "écoute demandée",
		"kind.policy.decision": "décision de la politique d'appel", "kind.policy.simulate": "simulation de la politique",
		"kind.recording.access": "enregistrement : accès", "kind.recording.closed": "enregistrement terminé",
		"kind.recording.comment": "enregistrement : commentaire", "kind.recording.deleted": "enregistrement supprimé",
		"kind.recording.failed": "enregistrement en échec", "kind.recording.hold": "enregistrement : conservation légale",
		"kind.recording.repaired": "enregistrement réparé", "kind.recording.search": "enregistrements : recherche",
		"kind.recording.started": "enregistrement commencé", "kind.recording.unhold": "enregistrement : fin de conservation légale",
		"kind.recording.verified": "enregistrement vérifié", "kind.recordings.verified": "enregistrements vérifiés",
		"kind.sip.auth_failed": "téléphone : authentification échouée", "kind.sip.ban": "téléphone banni",
		"kind.sip.rate_limited": "téléphone : trop de requêtes", "kind.sip.refused": "téléphone : requête refusée",
		"kind.sip.register": "téléphone : enregistrement sur le réseau", "kind.sip.tcp_refused": "téléphone : connexion refusée",
		"kind.trunk.registration": "opérateur télécom : enregistrement", "kind.trunk.state": "opérateur télécom : état",
		"kind.user.activate": "compte réactivé", "kind.user.add": "compte créé", "kind.user.password": "mot de passe changé",
		"kind.user.role": "rôle changé", "kind.user.signoff": "fin de formation validée", "kind.user.suspend": "compte suspendu",
		"kind.user.train": "mise en formation", "kind.web.lockout": "console : blocage après échecs",
		"kind.web.login": "console : connexion", "kind.web.logout": "console : déconnexion",
		"auditout.ok": "réussi", "auditout.allowed": "autorisé", "auditout.refused": "refusé", "auditout.denied": "refusé",
		"auditout.failed": "échec", "auditout.error": "erreur", "auditout.not_found": "introuvable", "auditout.gone": "supprimé",
		"auditout.missing": "fichier manquant", "auditout.problems": "problèmes trouvés",
		"audit.all_kinds": "Tous les types", "audit.date_hint": "jj/mm/aaaa",
		"detail.bad_date": "date « %s » : écrivez-la jj/mm/aaaa",
		"dkey.campaign":   "campagne", "dkey.id": "n°", "dkey.label": "libellé", "dkey.proposed_by": "proposé par", "dkey.status": "état", "dkey.valid_from": "valable du", "dkey.valid_until": "valable jusqu'au", "dkey.operator": "téléopérateur", "dkey.contact": "contact", "dkey.from": "de", "dkey.to": "vers", "dkey.callback_at": "rappel le", "dkey.action": "action", "dkey.role": "rôle", "dkey.range": "plage audio", "dkey.number": "numéro", "dkey.path": "fichier", "dkey.call_ids": "identifiants d'appel", "dkey.state": "état", "dkey.rule": "règle", "dkey.at": "moment", "dkey.results": "résultats", "dkey.offset": "décalage", "dkey.note": "note", "dkey.client": "client", "dkey.operators": "téléopérateurs", "dkey.windows": "heures d'appel", "dkey.dispositions": "issues", "dkey.max_attempts": "appels au plus", "dkey.contacts": "contacts", "dkey.sha256": "empreinte SHA-256", "dkey.duration_ms": "durée (ms)", "dkey.decided_by": "décidé par", "dkey.mode": "mode", "dkey.supervisor": "superviseur", "dkey.since": "depuis", "dkey.until": "jusqu'au", "dkey.source": "origine",
		"reason.not_own_recording": "pas son propre enregistrement", "reason.recording_open": "enregistrement en cours",
		"reason.recordings_unavailable": "enregistrements indisponibles",
	},
	"en": {
		"kind.allowlist.approve": "allowlist: approval", "kind.allowlist.export": "allowlist: export",
		"kind.allowlist.propose": "allowlist: proposal", "kind.allowlist.propose.bulk": "allowlist: proposals (import)",
		"kind.allowlist.reject": "allowlist: rejection", "kind.allowlist.revoke": "allowlist: revocation",
		"kind.allowlist.validity": "allowlist: end of validity",
		"kind.auth.ban":           "phone banned (authentication failures)", "kind.call.dial": "call dialled",
		"kind.call.dtmf": "keys pressed during a call", "kind.call.ended": "call ended",
		"kind.call.hijack_attempt": "call hijack attempt", "kind.call.late_answer": "late answer",
		"kind.call.leg_leaked": "call leg left open", "kind.call.media": "audio stream",
		"kind.call.media_refused": "audio stream refused", "kind.call.transferred": "call transferred",
		"kind.campaign.create": "campaign created", "kind.campaign.export": "campaign: client export",
		"kind.campaign.import": "campaign: contact import", "kind.campaign.status": "campaign: state change",
		"kind.campaign.update": "campaign changed", "kind.dialer.callback_reassigned": "callback reassigned",
		"kind.dialer.dispose": "call outcome entered", "kind.dialer.outcome_corrected": "call outcome corrected",
		"kind.dialer.skip": "contact skipped", "kind.dnc.add": "do-not-call: added", "kind.dnc.remove": "do-not-call: removed",
		"kind.monitor.coaching": "coaching", "kind.monitor.end": "monitoring ended", "kind.monitor.join": "monitoring: joined",
		"kind.monitor.mode": "monitoring: mode changed", "kind.monitor.refused": "monitoring refused",
		"kind.monitor.selftest": "monitoring self-test", "kind.monitor.start": "monitoring requested",
		"kind.policy.decision": "calling policy decision", "kind.policy.simulate": "policy simulation",
		"kind.recording.access": "recording: access", "kind.recording.closed": "recording finished",
		"kind.recording.comment": "recording: comment", "kind.recording.deleted": "recording deleted",
		"kind.recording.failed": "recording failed", "kind.recording.hold": "recording: legal hold",
		"kind.recording.repaired": "recording repaired", "kind.recording.search": "recordings: search",
		"kind.recording.started": "recording started", "kind.recording.unhold": "recording: legal hold lifted",
		"kind.recording.verified": "recording verified", "kind.recordings.verified": "recordings verified",
		"kind.sip.auth_failed": "phone: authentication failed", "kind.sip.ban": "phone banned",
		"kind.sip.rate_limited": "phone: too many requests", "kind.sip.refused": "phone: request refused",
		"kind.sip.register": "phone: registration", "kind.sip.tcp_refused": "phone: connection refused",
		"kind.trunk.registration": "carrier: registration", "kind.trunk.state": "carrier: state",
		"kind.user.activate": "account reactivated", "kind.user.add": "account created", "kind.user.password": "password changed",
		"kind.user.role": "role changed", "kind.user.signoff": "training signed off", "kind.user.suspend": "account suspended",
		"kind.user.train": "put in training", "kind.web.lockout": "console: locked after failures",
		"kind.web.login": "console: login", "kind.web.logout": "console: logout",
		"auditout.ok": "ok", "auditout.allowed": "allowed", "auditout.refused": "refused", "auditout.denied": "denied",
		"auditout.failed": "failed", "auditout.error": "error", "auditout.not_found": "not found", "auditout.gone": "deleted",
		"auditout.missing": "file missing", "auditout.problems": "problems found",
		"audit.all_kinds": "All kinds", "audit.date_hint": "dd/mm/yyyy",
		"detail.bad_date": "date “%s”: write it dd/mm/yyyy",
		"dkey.campaign":   "campaign", "dkey.id": "no.", "dkey.label": "label", "dkey.proposed_by": "proposed by", "dkey.status": "status", "dkey.valid_from": "valid from", "dkey.valid_until": "valid until", "dkey.operator": "operator", "dkey.contact": "contact", "dkey.from": "from", "dkey.to": "to", "dkey.callback_at": "callback at", "dkey.action": "action", "dkey.role": "role", "dkey.range": "audio range", "dkey.number": "number", "dkey.path": "path", "dkey.call_ids": "call IDs", "dkey.state": "state", "dkey.rule": "rule", "dkey.at": "at", "dkey.results": "results", "dkey.offset": "offset", "dkey.note": "note", "dkey.client": "client", "dkey.operators": "operators", "dkey.windows": "windows", "dkey.dispositions": "dispositions", "dkey.max_attempts": "max calls", "dkey.contacts": "contacts", "dkey.sha256": "SHA-256", "dkey.duration_ms": "duration (ms)", "dkey.decided_by": "decided by", "dkey.mode": "mode", "dkey.supervisor": "supervisor", "dkey.since": "since", "dkey.until": "until", "dkey.source": "source",
		"reason.not_own_recording": "not their own recording", "reason.recording_open": "recording in progress",
		"reason.recordings_unavailable": "recordings unavailable",
	},
}

func init() {
	for lang, msgs := range auditCatalogue {
		for k, v := range msgs {
			if _, dup := catalogue[lang][k]; dup {
				panic(fmt.Sprintf("web: catalogue key %q (%s) defined twice", k, lang))
			}
			catalogue[lang][k] = v
		}
	}
}

// KindLabel is an audit kind in the user's language (the code if none).
func (v *view) KindLabel(kind string) string {
	if _, ok := catalogue[v.Lang]["kind."+kind]; ok {
		return v.T("kind." + kind)
	}
	return kind
}

// OutcomeLabel is an audit outcome in the user's language: the known
// words, a disposition (dialer entries carry it), else as written.
func (v *view) OutcomeLabel(o string) string {
	if _, ok := catalogue[v.Lang]["auditout."+o]; ok {
		return v.T("auditout." + o)
	}
	return v.Disp(o)
}

// AuditReason is an audit reason in the user's language: a policy reason
// code, a detail the catalogue knows, else as written (a person's note).
func (v *view) AuditReason(r string) string {
	if _, ok := catalogue[v.Lang]["reason."+r]; ok {
		return v.T("reason." + r)
	}
	return v.LocalNote(r)
}

// detailLine is one detail of an audit entry.
type detailLine struct{ Key, Value string }

// DetailLines are an audit entry's details, sorted, as key and value: the
// template puts one per line; numbers show the site's way and times in the
// site's time zone.
func (v *view) DetailLines(d map[string]any) []detailLine {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]detailLine, 0, len(keys))
	for _, k := range keys {
		val := fmt.Sprint(d[k])
		switch x := d[k].(type) {
		case string:
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				val = v.Time(t)
			} else if strings.HasPrefix(x, "+") {
				val = v.Number(x)
			}
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			val = strings.Join(parts, ", ")
		}
		if k == "status" || k == "state" {
			if _, ok := catalogue[v.Lang]["status."+val]; ok {
				val = v.T("status." + val)
			}
		}
		if k == "action" {
			if _, ok := catalogue[v.Lang]["recaction."+val]; ok {
				val = v.T("recaction." + val)
			}
		}
		key := strings.ReplaceAll(k, "_", " ")
		if _, ok := catalogue[v.Lang]["dkey."+k]; ok {
			key = v.T("dkey." + k)
		}
		out = append(out, detailLine{Key: key, Value: val})
	}
	return out
}

// auditKindChoices are the kinds the log holds and the known ones, sorted
// by their label in lang: the filter is a list of words, not codes.
func (a *App) auditKindChoices(ctx context.Context, lang string) []string {
	seen := map[string]bool{}
	var kinds []string
	for k := range catalogue[lang] {
		if kind, ok := strings.CutPrefix(k, "kind."); ok && !seen[kind] {
			seen[kind] = true
			kinds = append(kinds, kind)
		}
	}
	if rows, err := a.deps.Store.DB().QueryContext(ctx, `SELECT DISTINCT kind FROM audit_log`); err == nil {
		for rows.Next() {
			var k string
			if rows.Scan(&k) == nil && !seen[k] {
				seen[k] = true
				kinds = append(kinds, k)
			}
		}
		rows.Close()
	}
	label := func(k string) string {
		if s, ok := catalogue[lang]["kind."+k]; ok {
			return s
		}
		return k
	}
	sort.Slice(kinds, func(i, j int) bool { return label(kinds[i]) < label(kinds[j]) })
	return kinds
}
