// Operator console: the preview queue, click-to-call, the live call and
// the disposition, over the JSON API (/api/v1/campaigns/{id}/next|queue,
// /api/v1/contacts/{id}/call|skip|release|dispose|correct|open,
// /api/v1/me/call, /api/v1/me/callbacks, /api/v1/me/pause). Strings come from the page's
// JSON labels (the catalogue); text is only ever set with textContent,
// never parsed as HTML.
"use strict";
(function () {
  var root = document.getElementById("op-console");
  if (!root) { return; }
  var L = JSON.parse(document.getElementById("console-labels").textContent || "{}");
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var lang = document.documentElement.lang === "en" ? "en-GB" : "fr-FR";
  var tz = root.dataset.tz || undefined;
  var correctMinutes = parseInt(root.dataset.correctMinutes || "0", 10);
  var $ = function (id) { return document.getElementById(id); };
  var t = function (key, vars) {
    var s = L[key] || key;
    Object.keys(vars || {}).forEach(function (k) { s = s.split("{" + k + "}").join(String(vars[k])); });
    return s;
  };
  var store = window.sessionStorage;

  var state = {
    registered: root.dataset.registered === "true",
    lease: null,      // the contact on screen (dialer Lease)
    owed: false,      // a disposition is owed for lease.contact
    calling: false,   // the call request is in flight (phone ringing)
    callSeen: false,  // a live call was seen for this contact
    inCall: false,
    renew: null,
    last: null,       // the last outcome saved, while it may be corrected
    paused: root.dataset.pause || "" // the declared absence's reason, "" when available
  };

  // say and fail write the page's status line; they set text only when it
  // changes, so that screen readers hear state changes and nothing else.
  function setText(el, txt) { if (el.textContent !== txt) { el.textContent = txt; } }
  function say(msg) { setText($("op-message"), msg || ""); $("op-error").hidden = true; }
  function fail(msg) {
    setText($("op-message"), "");
    var e = $("op-error");
    e.textContent = msg;
    e.hidden = false;
  }
  // fieldError shows a message next to its field (and for assistive
  // technology, through aria-invalid and aria-describedby).
  function fieldError(id, msg) {
    var input = $(id), p = $(id + "-error");
    if (!p) { fail(msg); return; }
    p.textContent = msg || "";
    p.hidden = !msg;
    if (msg) { input.setAttribute("aria-invalid", "true"); input.focus(); } else { input.removeAttribute("aria-invalid"); }
  }
  function clearFieldErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  // ---- the API; a 401 means the session expired: keep what was typed
  // (sessionStorage) and come back here after logging in again. ----
  var leaving = false;
  function api(method, path, body) {
    var opts = { method: method, headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (res) {
      if (res.status === 401) {
        // Several requests may meet the expired session at once: leave once.
        if (!leaving) {
          leaving = true;
          saveNotes();
          window.location = "/login?expired=1&next=" + encodeURIComponent(window.location.pathname + window.location.search);
        }
        return new Promise(function () {}); // the page is leaving
      }
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { status: res.status, data: data };
      });
    }, function () { return { status: 0, data: null }; });
  }

  // errorText explains a failed API answer in the user's language: the
  // web layer's localised message, else the dialer's error code through
  // the catalogue; never the server's English.
  function errorText(r) {
    if (r.status === 0) { return t("op.err_network"); }
    var d = r.data || {};
    if (d.message) { return d.message; }
    var code = d.code || d.error || "";
    if (L["op.code." + code]) {
      return t("op.code." + code) + (d.next_open ? " " + t("op.next_open", { when: when(d.next_open) }) : "");
    }
    if (r.status === 403) { return t("op.err_not_assigned"); }
    return t("op.err_generic") + " " + (r.status || "");
  }

  function dispLabel(name) { return L["disp." + name] || name; }

  // number shows an E.164 number the French way ("02 40 12 34 56") when
  // it is French, as web/phone.go does; others as stored.
  function number(e164) {
    var s = String(e164 || "");
    if (root.dataset.region === "FR" && /^\+33[1-9]\d{8}$/.test(s)) {
      var n = "0" + s.slice(3);
      return n.replace(/(\d\d)(?=\d)/g, "$1 ");
    }
    return s;
  }

  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return ""; }
    var opts = { weekday: "short", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" };
    if (tz) { opts.timeZone = tz; }
    return d.toLocaleString(lang, opts);
  }

  // ---- notes and answers typed during the call survive a reload or an
  // expired session (sessionStorage, per contact) ----
  function notesKey() { return state.lease ? "plateau.notes." + state.lease.contact.id : ""; }
  function saveNotes() {
    var k = notesKey();
    if (!k) { return; }
    try { store.setItem(k, JSON.stringify({ notes: $("dispose-notes").value, answers: answers() })); } catch (e) { /* full or off */ }
  }
  function restoreNotes() {
    var k = notesKey(), v = null;
    try { v = JSON.parse(store.getItem(k) || "null"); } catch (e) { v = null; }
    $("dispose-notes").value = v ? v.notes || "" : "";
    document.querySelectorAll("#answer-fields input").forEach(function (inp) {
      inp.value = v && v.answers ? v.answers[inp.dataset.field] || "" : "";
    });
  }
  function forgetNotes(id) { try { store.removeItem("plateau.notes." + id); } catch (e) { /* ignore */ } }
  $("dispose-notes").addEventListener("input", saveNotes);

  function answers() {
    var out = {};
    document.querySelectorAll("#answer-fields input").forEach(function (inp) {
      if (inp.value.trim()) { out[inp.dataset.field] = inp.value; }
    });
    return out;
  }

  // ---- the script: the server's rendering for the campaign, with its
  // {placeholders} filled from the contact (text nodes only) ----
  var scriptSources = {};
  document.querySelectorAll(".script-body[data-campaign]").forEach(function (el) {
    scriptSources[el.dataset.campaign] = el.cloneNode(true);
  });
  function placeholders(c) {
    var v = {
      interlocuteur: c.contact, contact: c.contact, entreprise: c.company, societe: c.company, "société": c.company,
      company: c.company, ville: c.city, city: c.city, numero: number(c.number), "numéro": number(c.number), number: number(c.number),
      courriel: c.email, email: c.email, operateur: root.dataset.user, "opérateur": root.dataset.user, operator: root.dataset.user
    };
    Object.keys(c.custom || {}).forEach(function (k) { v[k.toLowerCase()] = c.custom[k]; });
    return v;
  }
  function fillScript(el, c) {
    var vals = placeholders(c);
    var walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    var nodes = [];
    while (walker.nextNode()) { nodes.push(walker.currentNode); }
    nodes.forEach(function (n) {
      n.nodeValue = n.nodeValue.replace(/\{([^{}\s]{1,40})\}/g, function (all, key) {
        var v = vals[key.toLowerCase()];
        return v ? v : all;
      });
    });
  }

  // ---- the contact on screen ----
  function show(lease, owed) {
    var same = state.lease && state.lease.contact.id === lease.contact.id;
    state.lease = lease;
    state.owed = !!owed;
    var c = lease.contact;
    $("pv-company").textContent = c.company || "";
    $("pv-contact").textContent = c.contact || "";
    $("pv-number").textContent = number(c.number);
    $("pv-city").textContent = c.city || "";
    $("pv-email").textContent = c.email || "";
    $("pv-notes").textContent = c.notes || "";
    $("pv-attempts").textContent = String(c.attempts || 0);
    $("pv-last").textContent = c.last_disposition ? dispLabel(c.last_disposition) + (c.last_notes ? " : " + c.last_notes : "") : "";
    // Rows with nothing to say are left out.
    ["pv-contact", "pv-city", "pv-email", "pv-notes", "pv-last"].forEach(function (id) {
      var dd = $(id), empty = dd.textContent === "";
      dd.hidden = empty;
      dd.previousElementSibling.hidden = empty;
    });
    var custom = $("pv-custom");
    while (custom.firstChild) { custom.removeChild(custom.firstChild); }
    Object.keys(c.custom || {}).sort().forEach(function (k) {
      var dt = document.createElement("dt"); dt.textContent = k;
      var dd = document.createElement("dd"); dd.textContent = c.custom[k];
      custom.appendChild(dt); custom.appendChild(dd);
    });
    $("preview-callback").hidden = !lease.callback;
    $("preview").hidden = false;
    $("notes-card").hidden = false;
    // The script: the one rendered by the server for this campaign (its
    // placeholders filled), else the raw Markdown as plain text.
    var found = false;
    document.querySelectorAll(".script-body[data-campaign]").forEach(function (el) {
      var mine = el.dataset.campaign === String(c.campaign_id);
      el.hidden = !mine;
      if (mine) {
        var fresh = scriptSources[el.dataset.campaign].cloneNode(true);
        fresh.hidden = false;
        fillScript(fresh, c);
        el.replaceWith(fresh);
      }
      found = found || mine;
    });
    $("script-raw").hidden = found;
    $("script-raw").textContent = found ? "" : (lease.script || "");
    $("script-card").hidden = !found && !lease.script;
    // The script's capture fields, answered during the call.
    var box = $("answer-fields");
    if (!same) {
      while (box.firstChild) { box.removeChild(box.firstChild); }
      (lease.fields || []).forEach(function (f) {
        var id = "answer-" + f.name;
        var lab = document.createElement("label"); lab.htmlFor = id; lab.textContent = f.label;
        var inp = document.createElement("input");
        inp.id = id; inp.type = f.kind === "email" ? "email" : "text"; inp.maxLength = 500; inp.className = "wide";
        inp.dataset.field = f.name;
        inp.addEventListener("input", saveNotes);
        box.appendChild(lab); box.appendChild(inp);
      });
      restoreNotes();
    }
    $("answers").hidden = !(lease.fields || []).length;
    fillDispositions($("disposition"), lease.dispositions);
    toggleCallback("disposition", "dispose-callback");
    $("skip-form").hidden = true;
    $("callback-form").hidden = true;
    render();
    clearInterval(state.renew);
    // Asking again renews the lease: keep it while the operator reads.
    state.renew = setInterval(function () {
      if (state.lease && !state.owed && !state.calling && !state.inCall) { next(true); }
    }, 4 * 60 * 1000);
  }

  // fillDispositions lists the outcomes with nothing chosen: a busy line
  // must never be saved as an appointment by a stray Enter.
  function fillDispositions(sel, list) {
    while (sel.firstChild) { sel.removeChild(sel.firstChild); }
    var none = document.createElement("option");
    none.value = ""; none.textContent = t("op.choose");
    sel.appendChild(none);
    (list || []).forEach(function (d, i) {
      var o = document.createElement("option");
      o.value = d.name; o.textContent = (i < 9 ? (i + 1) + ". " : "") + dispLabel(d.name); o.dataset.action = d.action;
      sel.appendChild(o);
    });
    sel.selectedIndex = 0;
  }

  function clear(msg) {
    state.lease = null; state.owed = false; state.callSeen = false; state.calling = false;
    clearInterval(state.renew);
    $("preview").hidden = true;
    $("notes-card").hidden = true;
    $("script-card").hidden = true;
    $("dispose-form").hidden = true;
    $("owed").hidden = true;
    $("dispose-notes").value = "";
    $("dispose-outcome").textContent = "";
    clearFieldErrors($("dispose-form"));
    say(msg);
    render();
  }

  // render enables what the current state allows.
  function render() {
    var leased = !!state.lease;
    var busy = state.calling || state.inCall;
    var paused = !!state.paused;
    var callBtn = $("btn-call");
    if (callBtn) {
      callBtn.disabled = !leased || state.owed || busy || !state.registered || paused;
      if (!state.registered) { callBtn.setAttribute("aria-describedby", "call-disabled"); } else { callBtn.removeAttribute("aria-describedby"); }
    }
    $("call-disabled").hidden = state.registered;
    ["btn-skip", "btn-callback", "btn-release"].forEach(function (id) {
      var b = $(id);
      if (b) { b.disabled = !leased || state.owed || busy; }
    });
    var nb = $("btn-next");
    if (nb) { nb.disabled = busy || state.owed || paused; }
    renderPause(busy);
    $("actions").hidden = leased && state.owed;
    var showDispose = leased && state.owed && !busy;
    var wasHidden = $("dispose-form").hidden;
    $("dispose-form").hidden = !showDispose;
    // The "enter the outcome" banner waits for the end of the call.
    $("owed").hidden = !showDispose;
    // The call has ended: the outcome is what to do now.
    if (showDispose && wasHidden) {
      $("dispose-form").scrollIntoView({ block: "nearest" });
      if (!isTyping(document.activeElement)) { $("disposition").focus(); }
    }
  }

  // ---- the operator's pause (a visit, the infirmary, a movement,
  // training): « Contact suivant » and « Appeler » are off until « Reprendre ».
  // The state is the server's (GET /api/v1/me/pause), so a reload keeps it. ----
  function renderPause(busy) {
    if (!$("pause-card")) { return; }
    var paused = !!state.paused;
    $("pause-form").hidden = paused;
    $("pause-resume").hidden = !paused;
    // No pause with an outcome owed or a call up: finish it first.
    $("btn-pause").disabled = busy || state.owed;
    var ps = $("pause-state");
    var reason = L["pause." + state.paused] || state.paused;
    setText(ps, !paused ? t("op.pause_off") :
      state.pauseSince ? t("op.pause_on", { reason: reason, since: state.pauseSince }) : t("op.pause_now", { reason: reason }));
    ps.className = "state " + (paused ? "off" : "ok");
    // Beside the disabled « Contact suivant », why and how to come back.
    var np = $("next-paused"), nb = $("btn-next");
    if (np) {
      np.hidden = !paused;
      setText(np, paused ? t("op.next_paused", { reason: reason }) : "");
      if (nb) { if (paused) { nb.setAttribute("aria-describedby", "next-paused"); } else { nb.removeAttribute("aria-describedby"); } }
    }
  }
  function sinceText(iso) {
    var d = new Date(iso);
    if (!iso || isNaN(d.getTime())) { return ""; }
    var opts = { hour: "2-digit", minute: "2-digit" };
    if (tz) { opts.timeZone = tz; }
    return d.toLocaleTimeString(lang, opts);
  }
  function setPause(data) {
    state.paused = (data && data.reason) || "";
    state.pauseSince = state.paused ? sinceText(data.since) : "";
    render();
  }
  function loadPause() {
    if (!$("pause-card")) { return; }
    api("GET", "/api/v1/me/pause").then(function (r) { if (r.status === 200) { setPause(r.data); } });
  }
  on("pause-form", "submit", function (ev) {
    ev.preventDefault();
    clearFieldErrors($("pause-form"));
    if (state.owed || state.calling || state.inCall) { fieldError("pause-reason", t("op.pause_blocked")); return; }
    var reason = $("pause-reason").value;
    if (!reason) { fieldError("pause-reason", t("op.pause_err_reason")); return; }
    // A contact on screen goes back to the queue: others may call it.
    var hand = state.lease ? api("POST", "/api/v1/contacts/" + state.lease.contact.id + "/release") : Promise.resolve(null);
    hand.then(function (rel) {
      // Released, or the lease was already gone: either way it is off screen.
      if (rel) { forgetNotes(state.lease.contact.id); clear(""); }
      return api("POST", "/api/v1/me/pause", { reason: reason });
    }).then(function (r) {
      if (r.status === 200) {
        setPause(r.data);
        say("");
        $("btn-resume").focus();
      } else { fieldError("pause-reason", errorText(r)); }
    });
  });
  on("btn-resume", "click", function () {
    api("POST", "/api/v1/me/pause", { reason: "" }).then(function (r) {
      if (r.status === 200) {
        $("pause-reason").value = "";
        setPause(r.data);
        focusNext();
      } else { fail(errorText(r)); }
    });
  });

  // ---- next contact ----
  function campaignID() { var s = $("campaign"); return s ? s.value : ""; }

  function next(quiet) {
    var id = campaignID();
    if (!id) { return Promise.resolve(); }
    return api("POST", "/api/v1/campaigns/" + encodeURIComponent(id) + "/next").then(function (r) {
      if (r.status === 200) { if (!quiet) { say(""); } show(r.data, false); }
      else if (r.status === 204) { if (!quiet) { clear(t("op.none_due")); explainEmpty(id); } }
      else if (r.status === 409 && r.data && r.data.lease) { show(r.data.lease, true); say(""); pollNow(); }
      else if (!quiet) { fail(errorText(r)); }
    });
  }

  // explainEmpty says when the next contact becomes due and what the
  // others wait for, so "nothing to call" is never a mystery.
  function explainEmpty(id) {
    api("GET", "/api/v1/campaigns/" + encodeURIComponent(id) + "/queue").then(function (r) {
      if (r.status !== 200 || !r.data || state.lease) { return; }
      var q = r.data, parts = [t("op.none_due")];
      if (q.next_due) { parts.push(t("op.next_due", { when: when(q.next_due) })); }
      else if (!q.awaiting_approval && !q.held_by_others) { parts = [t("op.queue_empty")]; }
      if (q.awaiting_approval) { parts.push(t("op.awaiting", { n: q.awaiting_approval })); }
      if (q.held_by_others) { parts.push(t("op.held", { n: q.held_by_others })); }
      say(parts.join(" "));
    });
  }

  var nf = $("next-form");
  if (nf) { nf.addEventListener("submit", function (ev) { ev.preventDefault(); next(false); }); }

  // ---- call ----
  function call() {
    if (!state.lease || $("btn-call").disabled) { return; }
    var id = state.lease.contact.id;
    state.calling = true; state.callSeen = false;
    say(t("op.phone_ringing"));
    render();
    // Notes stay reachable during the call.
    $("dispose-notes").focus();
    api("POST", "/api/v1/contacts/" + id + "/call").then(function (r) {
      state.calling = false;
      if (r.status === 202) {
        state.owed = true; state.inCall = true; // until the poll says otherwise
        say(t("op.dialling"));
      } else {
        fail(errorText(r));
        if (r.data && r.data.disposition_owed) { state.owed = true; }
      }
      render();
      pollNow();
    });
  }
  on("btn-call", "click", call);

  // ---- skip, callback, release ----
  on("btn-skip", "click", function () { $("skip-form").hidden = false; $("callback-form").hidden = true; $("skip-reason").focus(); });
  on("btn-callback", "click", function () { $("callback-form").hidden = false; $("skip-form").hidden = true; $("callback-at").focus(); });
  on("skip-form", "submit", function (ev) {
    ev.preventDefault();
    clearFieldErrors($("skip-form"));
    var reason = $("skip-reason").value.trim();
    if (!reason) { fieldError("skip-reason", t("op.err_reason")); return; }
    var id = state.lease.contact.id;
    api("POST", "/api/v1/contacts/" + id + "/skip", { reason: reason }).then(function (r) {
      if (r.status === 204) { $("skip-reason").value = ""; forgetNotes(id); clear(t("op.skipped")); focusNext(); } else { fail(errorText(r)); }
    });
  });
  on("callback-form", "submit", function (ev) {
    ev.preventDefault();
    clearFieldErrors($("callback-form"));
    var d = (state.lease.dispositions || []).filter(function (x) { return x.action === "callback"; })[0];
    if (!d) { fail(t("op.err_no_callback")); return; }
    var at = localTime($("callback-at").value);
    if (!at) { fieldError("callback-at", t("op.err_callback_at")); return; }
    dispose({ disposition: d.name, notes: $("callback-notes").value, callback_at: at }, t("op.callback_saved"), "callback-at");
  });
  on("btn-release", "click", function () {
    var id = state.lease.contact.id;
    api("POST", "/api/v1/contacts/" + id + "/release").then(function (r) {
      if (r.status === 204) { forgetNotes(id); clear(t("op.released")); focusNext(); } else { fail(errorText(r)); }
    });
  });

  // ---- disposition ----
  function selectedAction(sel) {
    var o = sel.options[sel.selectedIndex];
    return o ? o.dataset.action || "" : "";
  }
  function toggleCallback(selID, boxID) { $(boxID).hidden = selectedAction($(selID)) !== "callback"; }
  on("disposition", "change", function () { toggleCallback("disposition", "dispose-callback"); fieldError("disposition", ""); $("disposition").focus(); });
  on("dispose-form", "submit", function (ev) {
    ev.preventDefault();
    clearFieldErrors($("dispose-form"));
    var sel = $("disposition");
    if (!sel.value) { fieldError("disposition", t("op.err_choose")); return; }
    var body = { disposition: sel.value, notes: $("dispose-notes").value, answers: answers() };
    if (selectedAction(sel) === "callback") {
      var at = localTime($("dispose-callback-at").value);
      if (!at) { fieldError("dispose-callback-at", t("op.err_callback_at")); return; }
      body.callback_at = at;
    }
    dispose(body, t("op.disposed"), "dispose-callback-at");
  });

  function dispose(body, done, callbackField) {
    var lease = state.lease, id = lease.contact.id;
    api("POST", "/api/v1/contacts/" + id + "/dispose", body).then(function (r) {
      if (r.status === 200) {
        $("callback-notes").value = "";
        forgetNotes(id);
        state.last = { id: id, company: lease.contact.company, disposition: body.disposition, notes: body.notes || "",
          dispositions: lease.dispositions, until: Date.now() + correctMinutes * 60000 };
        clear(done);
        showLast();
        loadCallbacks();
        focusNext();
      } else if (r.data && r.data.code === "callback_outside_hours") {
        fieldError(callbackField, errorText(r));
      } else if (r.data && r.data.code === "bad_answer") {
        fail(errorText(r));
      } else { fail(errorText(r)); }
    });
  }

  // After an outcome, the loop goes on from « Contact suivant ».
  function focusNext() { var nb = $("btn-next"); if (nb) { nb.focus(); } }

  // ---- correcting the last outcome, for a short while ----
  var lastTimer = null;
  function showLast() {
    var l = state.last;
    clearTimeout(lastTimer);
    if (!l || Date.now() >= l.until || !correctMinutes) {
      state.last = null; $("last-outcome").hidden = true; $("correct-form").hidden = true;
      return;
    }
    $("last-outcome-text").textContent = t("op.last_outcome", { company: l.company || "", outcome: dispLabel(l.disposition),
      minutes: Math.max(1, Math.ceil((l.until - Date.now()) / 60000)) });
    $("last-outcome").hidden = false;
    lastTimer = setTimeout(showLast, 30000);
  }
  on("btn-correct", "click", function () {
    var l = state.last;
    if (!l) { return; }
    fillDispositions($("correct-disposition"), l.dispositions);
    $("correct-notes").value = l.notes;
    toggleCallback("correct-disposition", "correct-callback");
    clearFieldErrors($("correct-form"));
    $("correct-form").hidden = false;
    $("correct-disposition").focus();
  });
  on("correct-disposition", "change", function () { toggleCallback("correct-disposition", "correct-callback"); });
  on("correct-form", "submit", function (ev) {
    ev.preventDefault();
    clearFieldErrors($("correct-form"));
    var l = state.last, sel = $("correct-disposition");
    if (!l) { return; }
    if (!sel.value) { fieldError("correct-disposition", t("op.err_choose")); return; }
    var body = { disposition: sel.value, notes: $("correct-notes").value };
    if (selectedAction(sel) === "callback") {
      var at = localTime($("correct-callback-at").value);
      if (!at) { fieldError("correct-callback-at", t("op.err_callback_at")); return; }
      body.callback_at = at;
    }
    api("POST", "/api/v1/contacts/" + l.id + "/correct", body).then(function (r) {
      if (r.status === 200) {
        l.disposition = body.disposition; l.notes = body.notes;
        $("correct-form").hidden = true;
        showLast();
        say(t("op.corrected"));
        loadCallbacks();
        $("btn-correct").focus();
      } else if (r.data && r.data.code === "callback_outside_hours") {
        fieldError("correct-callback-at", errorText(r));
      } else {
        fail(errorText(r));
        if (r.data && r.data.code === "correction_closed") { state.last = null; showLast(); }
      }
    });
  });

  // localTime turns a datetime-local value (the PC's clock, the site's)
  // into an RFC 3339 instant; "" if empty or in the past.
  function localTime(v) {
    if (!v) { return ""; }
    var d = new Date(v);
    if (isNaN(d.getTime()) || d.getTime() <= Date.now()) { return ""; }
    return d.toISOString();
  }

  // ---- callbacks: due and overdue ones highlighted and announced once ----
  var announced = {};
  try { announced = JSON.parse(store.getItem("plateau.cb-announced") || "{}"); } catch (e) { announced = {}; }
  function loadCallbacks() {
    api("GET", "/api/v1/me/callbacks").then(function (r) {
      if (r.status !== 200 || !r.data) { return; }
      var box = $("callbacks");
      var cbs = r.data.callbacks || [];
      var rows = document.createElement("div");
      if (!cbs.length) {
        var p = document.createElement("p"); p.className = "hint"; p.textContent = t("op.cb_none"); rows.appendChild(p);
      } else {
        var table = document.createElement("table"); table.className = "dense callbacks";
        var head = table.createTHead().insertRow();
        [["op.cb_when", "when"], ["op.contact_col", ""]].forEach(function (k) {
          var th = document.createElement("th"); th.scope = "col"; th.textContent = t(k[0]); th.className = k[1]; head.appendChild(th);
        });
        var body = table.createTBody();
        cbs.forEach(function (cb) {
          var tr = body.insertRow();
          tr.className = cb.overdue ? "overdue" : (cb.due ? "due" : "");
          var td = tr.insertCell(); td.className = "num when"; td.textContent = cb.when;
          if (cb.due) {
            var b = document.createElement("span"); b.className = "badge " + (cb.overdue ? "overdue" : "due");
            b.textContent = t(cb.overdue ? "op.cb_overdue" : "op.cb_due");
            td.appendChild(document.createTextNode(" ")); td.appendChild(b);
          }
          var c2 = tr.insertCell();
          var btn = document.createElement("button"); btn.type = "button"; btn.className = "linklike cb-open";
          btn.dataset.contact = cb.id;
          btn.textContent = cb.company + (cb.contact ? " · " + cb.contact : "");
          c2.appendChild(btn);
          c2.appendChild(document.createElement("br"));
          var camp = document.createElement("span"); camp.className = "hint"; camp.textContent = cb.campaign; c2.appendChild(camp);
        });
        rows.appendChild(table);
      }
      // Replace only when something changed (no flicker, focus kept).
      if (box.innerHTML !== rows.innerHTML) {
        var focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.contact : null;
        while (box.firstChild) { box.removeChild(box.firstChild); }
        while (rows.firstChild) { box.appendChild(rows.firstChild); }
        if (focused) { var again = box.querySelector('[data-contact="' + focused + '"]'); if (again) { again.focus(); } }
      }
      announce(cbs);
    });
  }
  // announce alerts each callback once when it becomes due, and once more
  // if it becomes overdue; never on every poll.
  function announce(cbs) {
    var msgs = [];
    cbs.forEach(function (cb) {
      var key = cb.id + "@" + cb.at, stage = cb.overdue ? 2 : (cb.due ? 1 : 0);
      if (stage > (announced[key] || 0)) {
        announced[key] = stage;
        msgs.push(t(stage === 2 ? "op.cb_alert_late" : "op.cb_alert", { company: cb.company, when: cb.when }));
      }
    });
    try { store.setItem("plateau.cb-announced", JSON.stringify(announced)); } catch (e) { /* ignore */ }
    if (msgs.length) {
      $("cb-alert").textContent = msgs.join(" ");
    }
  }
  $("callbacks").addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest(".cb-open") : null;
    if (!b) { return; }
    if (state.owed || state.calling || state.inCall) { fail(t("op.code.disposition_required")); return; }
    api("POST", "/api/v1/contacts/" + encodeURIComponent(b.dataset.contact) + "/open").then(function (r) {
      if (r.status === 200) {
        say("");
        var sel = $("campaign");
        if (sel) { sel.value = String(r.data.contact.campaign_id); }
        show(r.data, false);
        $("pv-company").scrollIntoView({ block: "nearest" });
        var cb = $("btn-call"); if (cb && !cb.disabled) { cb.focus(); }
      } else { fail(errorText(r)); }
    });
  });

  // ---- the phone and the live call ----
  var pollTimer = null;
  function pollNow() { clearTimeout(pollTimer); poll(); }
  function duration(s) {
    var m = Math.floor(s / 60), r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }
  var shown = { elapsed: 0, state: "" };
  // Hang up from the console: Plateau ends both legs (the phone may too).
  function hangup() {
    if ($("hangup").hidden) { return; }
    api("POST", "/api/v1/me/call/hangup").then(function () { poll(); });
  }
  $("hangup").addEventListener("click", hangup);
  function statusNote(code) {
    if (!code) { return ""; }
    if ([404, 410, 484, 604].indexOf(code) >= 0) { return t("op.status.unknown_number"); }
    if ([403, 603].indexOf(code) >= 0) { return t("op.status.declined"); }
    if (code >= 500 && code < 600) { return t("op.status.network"); }
    return "";
  }
  function poll() {
    var q = state.lease ? "?contact=" + state.lease.contact.id : "";
    api("GET", "/api/v1/me/call" + q).then(function (r) {
      if (r.status === 200 && r.data) {
        var d = r.data;
        if (d.registered !== state.registered) {
          state.registered = d.registered;
          var ps = $("phone-state");
          ps.textContent = d.registered ? t("reg.registered") : t("reg.not_registered");
          ps.className = "state " + (d.registered ? "ok" : "off");
          var det = $("phone-details");
          det.textContent = d.registered ? "" : det.dataset.hint;
        }
        var c = d.call;
        var box = document.querySelector("#live-call .call-state");
        if (c) {
          state.callSeen = true;
          state.inCall = true;
          shown = { elapsed: c.elapsed, state: c.state };
          box.className = "call-state " + c.state;
          // The live region (#call-state) changes with the call's state
          // only; the duration beside it is not announced.
          setText($("call-state"), (c.state === "connected" ? t("op.call_connected") : t("op.call_ringing")) +
            (c.display || c.number ? " · " + (c.display || number(c.number)) : ""));
          $("call-duration").textContent = duration(c.elapsed);
          $("hangup").hidden = false;
          if (c.state === "connected" && $("op-message").textContent === t("op.dialling")) { say(""); }
        } else {
          var wasInCall = state.inCall;
          state.inCall = false;
          shown = { elapsed: 0, state: "" };
          box.className = "call-state idle";
          setText($("call-state"), t("op.call_none"));
          $("call-duration").textContent = "";
          $("hangup").hidden = true;
          if (wasInCall && state.lease) { state.owed = true; say(""); }
        }
        if (d.outcome && state.lease) {
          var txt = t("op.outcome", { outcome: L["outcome." + d.outcome.outcome] || d.outcome.outcome });
          var note = d.outcome.outcome !== "answered" ? statusNote(d.outcome.sip_status) : "";
          if (note) { txt += " " + note; }
          setText($("dispose-outcome"), txt);
        }
        render();
      }
      pollTimer = setTimeout(poll, state.inCall || state.calling ? 1000 : 3000);
    });
  }
  // The duration ticks between polls.
  setInterval(function () {
    if (shown.state) { shown.elapsed++; $("call-duration").textContent = duration(shown.elapsed); }
  }, 1000);

  // ---- keyboard shortcuts (announced with aria-keyshortcuts and the
  // legend under the form): S next, A call, R hang up, 1-9 outcome. They
  // never fire while typing in a field or with a modifier key. ----
  function isTyping(el) {
    if (!el) { return false; }
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) { return true; }
    if (tag === "INPUT") { return ["button", "submit", "checkbox", "radio", "reset"].indexOf(el.type) < 0; }
    return false;
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented || ev.ctrlKey || ev.altKey || ev.metaKey || isTyping(ev.target)) { return; }
    var k = ev.key.toLowerCase();
    if (k === "s") {
      var nb = $("btn-next");
      if (nb && !nb.disabled) { ev.preventDefault(); nb.focus(); next(false); }
    } else if (k === "a") {
      if (!$("btn-call").disabled && !$("preview").hidden) { ev.preventDefault(); call(); }
    } else if (k === "r") {
      if (!$("hangup").hidden) { ev.preventDefault(); hangup(); }
    } else if (/^[1-9]$/.test(k) && !$("dispose-form").hidden) {
      var sel = $("disposition"), i = parseInt(k, 10);
      if (i < sel.options.length) {
        ev.preventDefault();
        sel.selectedIndex = i;
        toggleCallback("disposition", "dispose-callback");
        fieldError("disposition", "");
        // A callback needs its time; otherwise Enter saves at once.
        if (selectedAction(sel) === "callback") { $("dispose-callback-at").focus(); } else { $("btn-dispose").focus(); }
      }
    }
  });

  function on(id, ev, fn) { var el = $(id); if (el) { el.addEventListener(ev, fn); } }

  render();
  loadPause();
  poll();
  setInterval(loadCallbacks, 30000);
  loadCallbacks();
})();
