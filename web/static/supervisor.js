// Supervisor wallboard: the operators' phones and calls from Server-Sent
// Events, durations ticking between events, and the Listen / Whisper /
// Barge buttons over POST /api/v1/monitor. Strings come from the page's
// JSON labels; text is only set with textContent.
"use strict";
(function () {
  var table = document.getElementById("wallboard");
  if (!table) { return; }
  var L = JSON.parse(document.getElementById("console-labels").textContent || "{}");
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var monitorOn = table.dataset.monitor === "true";
  var t = function (key, arg) { return (L[key] || key).replace("%s", arg === undefined ? "" : arg); };
  var msg = document.getElementById("monitor-message");
  var err = document.getElementById("monitor-error");

  function say(text) { msg.textContent = text; err.hidden = true; }
  function fail(text) { msg.textContent = ""; err.textContent = text; err.hidden = false; }

  function duration(s) {
    var m = Math.floor(s / 60), r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }

  // Durations: each cell keeps its seconds in data-elapsed.
  function tick(step) {
    table.querySelectorAll("td[data-elapsed]").forEach(function (td) {
      if (td.dataset.elapsed === "") { td.textContent = ""; return; }
      var s = parseInt(td.dataset.elapsed, 10) + step;
      td.dataset.elapsed = String(s);
      td.textContent = duration(s);
    });
  }
  tick(0);
  setInterval(function () { tick(1); }, 1000);

  function cell(tr, text, cls, spanCls) {
    var td = tr.insertCell();
    if (cls) { td.className = cls; }
    if (spanCls) {
      var span = document.createElement("span");
      span.className = spanCls;
      span.textContent = text;
      td.appendChild(span);
    } else {
      td.textContent = text;
    }
    return td;
  }

  function monitorButtons(td, ext) {
    if (!monitorOn) { return; }
    td.className = "actions";
    var wrap = document.createElement("form");
    wrap.className = "inline monitor";
    [["listen", "sup.listen", "sup.listen_to", ""], ["whisper", "sup.whisper", "sup.whisper_to", "secondary"],
      ["barge", "sup.barge", "sup.barge_to", "secondary"]].forEach(function (b) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = b[3];
      btn.textContent = t(b[1]);
      btn.setAttribute("aria-label", t(b[2], ext));
      btn.dataset.mode = b[0];
      btn.dataset.operator = ext;
      wrap.appendChild(btn);
    });
    td.appendChild(wrap);
  }

  function render(ops) {
    var body = document.createElement("tbody");
    ops.forEach(function (o) {
      var tr = body.insertRow();
      tr.dataset.ext = o.extension;
      cell(tr, o.extension);
      cell(tr, o.display_name || "");
      cell(tr, L["status." + (o.status || "active")] || o.status);
      cell(tr, o.registered ? L["reg.registered"] : L["reg.not_registered"], "", "state " + (o.registered ? "ok" : "off"));
      var st = L["wall." + o.state] || o.state;
      if (o.pause_reason) { st += " (" + (L["pause." + o.pause_reason] || o.pause_reason) + ")"; }
      var sc = cell(tr, st, "", "wstate " + o.state);
      if (o.listeners && o.listeners.length) {
        var who = o.listeners.map(function (l) { return l.supervisor + " (" + (L["mode." + l.mode] || l.mode) + ")"; });
        var h = document.createElement("span");
        h.className = "hint";
        h.textContent = (L["wall.listeners"] || "") + " " + who.join(", ");
        sc.appendChild(document.createElement("br"));
        sc.appendChild(h);
      }
      cell(tr, o.campaign || "");
      var d = cell(tr, "", "num");
      var timed = ["ringing", "in_call", "wrap_up", "paused"].indexOf(o.state) >= 0;
      d.dataset.elapsed = timed ? String(o.elapsed || 0) : "";
      var act = cell(tr, "");
      if (o.state === "ringing" || o.state === "in_call") { monitorButtons(act, o.extension); }
    });
    // Keep the focus on a button that survives the refresh.
    var focused = document.activeElement;
    var key = focused && focused.dataset && focused.dataset.mode ? focused.dataset.operator + "/" + focused.dataset.mode : "";
    table.replaceChild(body, table.tBodies[0]);
    tick(0);
    if (key) {
      var again = table.querySelector('button[data-operator="' + key.split("/")[0] + '"][data-mode="' + key.split("/")[1] + '"]');
      if (again) { again.focus(); }
    }
  }

  // Clicks on a monitor button (rendered by the server or by render).
  table.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button");
    if (!btn || !table.contains(btn)) { return; }
    var mode = btn.dataset.mode || btn.value;
    var form = btn.closest("form");
    var op = btn.dataset.operator || (form && form.elements.operator ? form.elements.operator.value : "");
    if (!mode || !op) { return; }
    ev.preventDefault();
    // Barging in is heard by the outside party: confirmed first.
    if (mode === "barge" && !window.confirm(t("sup.barge_confirm"))) { return; }
    say(t("sup.monitor_sending"));
    fetch("/api/v1/monitor", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: JSON.stringify({ operator: op, mode: mode })
    }).then(function (res) {
      if (res.status === 401) {
        window.location = "/login?expired=1&next=" + encodeURIComponent(window.location.pathname + window.location.search);
        return null;
      }
      return res.json().catch(function () { return {}; }).then(function (d) {
        if (res.status === 202 || res.status === 200) { say(d.message || ""); } else { fail(d.message || String(res.status)); }
      });
    }, function () { fail(t("sup.err_network")); });
  });

  if (window.EventSource) {
    var es = new EventSource(table.dataset.events);
    es.addEventListener("operators", function (ev) {
      var data = JSON.parse(ev.data);
      render(data.operators || []);
      var u = document.getElementById("updated");
      if (u) { u.textContent = data.at; } // the site's time, as every time shown
    });
    // The session ended (expired, logged out elsewhere, suspended): back
    // here after logging in again, with the reason shown.
    es.addEventListener("logout", function () {
      es.close();
      window.location = "/login?expired=1&next=" + encodeURIComponent(window.location.pathname + window.location.search);
    });
  }
})();
