// Operator console: the preview queue, click-to-call, the live call and
// the disposition, over the JSON API (/api/v1/campaigns/{id}/next,
// /api/v1/contacts/{id}/call|skip|release|dispose, /api/v1/me/call).
// Strings come from the page's JSON labels (the catalogue); text is only
// ever set with textContent, never parsed as HTML.
"use strict";
(function () {
  var root = document.getElementById("op-console");
  if (!root) { return; }
  var L = JSON.parse(document.getElementById("console-labels").textContent || "{}");
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var $ = function (id) { return document.getElementById(id); };
  var t = function (key, vars) {
    var s = L[key] || key;
    Object.keys(vars || {}).forEach(function (k) { s = s.replace("{" + k + "}", vars[k]); });
    return s;
  };

  var state = {
    registered: root.dataset.registered === "true",
    lease: null,      // the contact on screen (dialer Lease)
    owed: false,      // a disposition is owed for lease.contact
    calling: false,   // the call request is in flight (phone ringing)
    callSeen: false,  // a live call was seen for this contact
    inCall: false,
    renew: null
  };

  function say(msg) { $("op-message").textContent = msg || ""; $("op-error").hidden = true; }
  function fail(msg) {
    $("op-message").textContent = "";
    var e = $("op-error");
    e.textContent = msg;
    e.hidden = false;
  }

  function api(method, path, body) {
    var opts = { method: method, headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (res) {
      if (res.status === 401) { window.location = "/login"; }
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { status: res.status, data: data };
      });
    }, function () { return { status: 0, data: null }; });
  }

  // errorText explains a failed API answer in the user's language.
  function errorText(r) {
    if (r.status === 0) { return t("op.err_network"); }
    var d = r.data || {};
    if (d.message) { return d.message; }
    var raw = String(d.error || "");
    if (r.status === 403) { return t("op.err_not_assigned"); }
    if (d.code === "outside_window") { return t("op.err_window"); }
    if (d.code === "not_active") { return t("op.err_not_active"); }
    return t("op.err_generic") + " " + raw;
  }

  function dispLabel(name) { return L["disp." + name] || name; }

  // ---- the contact on screen ----
  function show(lease, owed) {
    state.lease = lease;
    state.owed = !!owed;
    var c = lease.contact;
    $("pv-company").textContent = c.company || "";
    $("pv-contact").textContent = c.contact || "";
    $("pv-number").textContent = c.number || "";
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
    // The script: the one rendered by the server for this campaign, else
    // the raw Markdown as plain text.
    var found = false;
    document.querySelectorAll(".script-body[data-campaign]").forEach(function (el) {
      var mine = el.dataset.campaign === String(c.campaign_id);
      el.hidden = !mine;
      found = found || mine;
    });
    $("script-raw").hidden = found;
    $("script-raw").textContent = found ? "" : (lease.script || "");
    $("script-card").hidden = !found && !lease.script;
    // Dispositions.
    var sel = $("disposition");
    while (sel.firstChild) { sel.removeChild(sel.firstChild); }
    (lease.dispositions || []).forEach(function (d) {
      var o = document.createElement("option");
      o.value = d.name; o.textContent = dispLabel(d.name); o.dataset.action = d.action;
      sel.appendChild(o);
    });
    toggleDisposeCallback();
    $("skip-form").hidden = true;
    $("callback-form").hidden = true;
    render();
    clearInterval(state.renew);
    // Asking again renews the lease: keep it while the operator reads.
    state.renew = setInterval(function () {
      if (state.lease && !state.owed && !state.calling && !state.inCall) { next(true); }
    }, 4 * 60 * 1000);
  }

  function clear(msg) {
    state.lease = null; state.owed = false; state.callSeen = false; state.calling = false;
    clearInterval(state.renew);
    $("preview").hidden = true;
    $("script-card").hidden = true;
    $("dispose-form").hidden = true;
    $("owed").hidden = true;
    $("dispose-notes").value = "";
    $("dispose-outcome").textContent = "";
    say(msg);
    render();
  }

  // render enables what the current state allows.
  function render() {
    var leased = !!state.lease;
    var busy = state.calling || state.inCall;
    var callBtn = $("btn-call");
    if (callBtn) {
      callBtn.disabled = !leased || state.owed || busy || !state.registered;
      if (!state.registered) { callBtn.setAttribute("aria-describedby", "call-disabled"); } else { callBtn.removeAttribute("aria-describedby"); }
    }
    $("call-disabled").hidden = state.registered;
    ["btn-skip", "btn-callback", "btn-release"].forEach(function (id) {
      var b = $(id);
      if (b) { b.disabled = !leased || state.owed || busy; }
    });
    var nb = $("btn-next");
    if (nb) { nb.disabled = busy || state.owed; }
    $("actions").hidden = leased && state.owed;
    var showDispose = leased && state.owed && !busy;
    $("dispose-form").hidden = !showDispose;
    // The "enter the outcome" banner waits for the end of the call.
    $("owed").hidden = !showDispose;
  }

  // ---- next contact ----
  function campaignID() { var s = $("campaign"); return s ? s.value : ""; }

  function next(quiet) {
    var id = campaignID();
    if (!id) { return Promise.resolve(); }
    return api("POST", "/api/v1/campaigns/" + encodeURIComponent(id) + "/next").then(function (r) {
      if (r.status === 200) { if (!quiet) { say(""); } show(r.data, false); }
      else if (r.status === 204) { if (!quiet) { clear(t("op.none_due")); } }
      else if (r.status === 409 && r.data && r.data.lease) { show(r.data.lease, true); say(""); pollNow(); }
      else if (!quiet) { fail(errorText(r)); }
    });
  }

  var nf = $("next-form");
  if (nf) { nf.addEventListener("submit", function (ev) { ev.preventDefault(); next(false); }); }

  // ---- call ----
  on("btn-call", "click", function () {
    if (!state.lease) { return; }
    var id = state.lease.contact.id;
    state.calling = true; state.callSeen = false;
    say(t("op.phone_ringing"));
    render();
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
  });

  // ---- skip, callback, release ----
  on("btn-skip", "click", function () { $("skip-form").hidden = false; $("callback-form").hidden = true; $("skip-reason").focus(); });
  on("btn-callback", "click", function () { $("callback-form").hidden = false; $("skip-form").hidden = true; $("callback-at").focus(); });
  on("skip-form", "submit", function (ev) {
    ev.preventDefault();
    var reason = $("skip-reason").value.trim();
    if (!reason) { fail(t("op.err_reason")); return; }
    api("POST", "/api/v1/contacts/" + state.lease.contact.id + "/skip", { reason: reason }).then(function (r) {
      if (r.status === 204) { $("skip-reason").value = ""; clear(t("op.skipped")); } else { fail(errorText(r)); }
    });
  });
  on("callback-form", "submit", function (ev) {
    ev.preventDefault();
    var d = (state.lease.dispositions || []).filter(function (x) { return x.action === "callback"; })[0];
    if (!d) { fail(t("op.err_no_callback")); return; }
    var at = localTime($("callback-at").value);
    if (!at) { fail(t("op.err_callback_at")); return; }
    dispose({ disposition: d.name, notes: $("callback-notes").value, callback_at: at }, t("op.callback_saved"));
  });
  on("btn-release", "click", function () {
    api("POST", "/api/v1/contacts/" + state.lease.contact.id + "/release").then(function (r) {
      if (r.status === 204) { clear(t("op.released")); } else { fail(errorText(r)); }
    });
  });

  // ---- disposition ----
  function selectedAction() {
    var sel = $("disposition");
    var o = sel.options[sel.selectedIndex];
    return o ? o.dataset.action : "";
  }
  function toggleDisposeCallback() { $("dispose-callback").hidden = selectedAction() !== "callback"; }
  on("disposition", "change", toggleDisposeCallback);
  on("dispose-form", "submit", function (ev) {
    ev.preventDefault();
    var body = { disposition: $("disposition").value, notes: $("dispose-notes").value };
    if (selectedAction() === "callback") {
      var at = localTime($("dispose-callback-at").value);
      if (!at) { fail(t("op.err_callback_at")); return; }
      body.callback_at = at;
    }
    dispose(body, t("op.disposed"));
  });

  function dispose(body, done) {
    api("POST", "/api/v1/contacts/" + state.lease.contact.id + "/dispose", body).then(function (r) {
      if (r.status === 200) { $("callback-notes").value = ""; clear(done); loadCallbacks(); } else { fail(errorText(r)); }
    });
  }

  // localTime turns a datetime-local value (the PC's clock, the site's)
  // into an RFC 3339 instant; "" if empty or in the past.
  function localTime(v) {
    if (!v) { return ""; }
    var d = new Date(v);
    if (isNaN(d.getTime()) || d.getTime() <= Date.now()) { return ""; }
    return d.toISOString();
  }

  // ---- callbacks ----
  function loadCallbacks() {
    api("GET", "/api/v1/me/callbacks").then(function (r) {
      if (r.status !== 200 || !r.data) { return; }
      var box = $("callbacks");
      while (box.firstChild) { box.removeChild(box.firstChild); }
      var cbs = r.data.callbacks || [];
      if (!cbs.length) {
        var p = document.createElement("p"); p.className = "hint"; p.textContent = t("op.cb_none"); box.appendChild(p);
        return;
      }
      var table = document.createElement("table"); table.className = "dense";
      var head = table.createTHead().insertRow();
      ["op.cb_when", "op.company", "op.campaign"].forEach(function (k) {
        var th = document.createElement("th"); th.scope = "col"; th.textContent = t(k); head.appendChild(th);
      });
      var body = table.createTBody();
      cbs.forEach(function (cb) {
        var tr = body.insertRow();
        var when = new Date(cb.at);
        tr.insertCell().textContent = when.toLocaleString(document.documentElement.lang === "en" ? "en-GB" : "fr-FR",
          { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
        tr.cells[0].className = "num";
        tr.insertCell().textContent = cb.contact.company + (cb.contact.contact ? " · " + cb.contact.contact : "");
        tr.insertCell().textContent = cb.campaign;
      });
      box.appendChild(table);
    });
  }

  // ---- the phone and the live call ----
  var pollTimer = null;
  function pollNow() { clearTimeout(pollTimer); poll(); }
  function duration(s) {
    var m = Math.floor(s / 60), r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }
  var shown = { elapsed: 0, state: "" };
  // Hang up from the console: Plateau ends both legs (the phone may too).
  $("hangup").addEventListener("click", function () {
    api("POST", "/api/v1/me/call/hangup").then(function () { poll(); });
  });
  function poll() {
    var q = state.lease ? "?contact=" + state.lease.contact.id : "";
    api("GET", "/api/v1/me/call" + q).then(function (r) {
      if (r.status === 200 && r.data) {
        var d = r.data;
        if (d.registered !== state.registered) {
          state.registered = d.registered;
          var ps = $("phone-state");
          ps.textContent = d.registered ? t("op.phone_registered") : t("op.phone_off");
          ps.className = "state " + (d.registered ? "ok" : "off");
        }
        var c = d.call;
        var box = document.querySelector("#live-call .call-state");
        if (c) {
          state.callSeen = true;
          state.inCall = true;
          shown = { elapsed: c.elapsed, state: c.state };
          box.className = "call-state " + c.state;
          $("call-state").textContent = (c.state === "connected" ? t("op.call_connected") : t("op.call_ringing")) +
            (c.number ? " · " + c.number : "");
          $("call-duration").textContent = duration(c.elapsed);
          $("hangup").hidden = false;
          if (c.state === "connected" && $("op-message").textContent === t("op.dialling")) { say(""); }
        } else {
          var wasInCall = state.inCall;
          state.inCall = false;
          shown = { elapsed: 0, state: "" };
          box.className = "call-state idle";
          $("call-state").textContent = t("op.call_none");
          $("call-duration").textContent = "";
          $("hangup").hidden = true;
          if (wasInCall && state.lease) { state.owed = true; say(""); }
        }
        if (d.outcome && state.lease) {
          var txt = t("op.outcome", { outcome: L["outcome." + d.outcome.outcome] || d.outcome.outcome });
          if (d.outcome.sip_status && d.outcome.outcome !== "answered") { txt += " " + t("op.outcome_status", { status: d.outcome.sip_status }); }
          $("dispose-outcome").textContent = txt;
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

  function on(id, ev, fn) { var el = $(id); if (el) { el.addEventListener(ev, fn); } }

  render();
  poll();
})();
