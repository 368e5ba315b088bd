// Plateau consoles: small progressive enhancements. Every page works
// without this file; it adds select-all, confirmations and the live views.
"use strict";
(function () {
  // A checkbox with data-select-all="name" ticks every checkbox of that name.
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      var boxes = all.form.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]');
      // A disabled box (one's own proposal) is never ticked.
      boxes.forEach(function (b) { if (!b.disabled) { b.checked = all.checked; } });
    });
  });

  // Text typed in a posted form's textarea (a coaching comment, a script)
  // is kept in sessionStorage until the server confirms a form (a page
  // with a .flash), so an expired session does not lose it: after logging
  // in again the user comes back to the page and finds it refilled.
  try {
    var keep = window.sessionStorage;
    if (document.querySelector(".flash")) {
      Object.keys(keep).forEach(function (k) {
        if (k.indexOf("plateau.keep.") !== 0) { return; }
        try { if (JSON.parse(keep.getItem(k)).sent) { keep.removeItem(k); } } catch (e) { keep.removeItem(k); }
      });
    }
    document.querySelectorAll('form[method="post"] textarea').forEach(function (ta) {
      var key = "plateau.keep." + window.location.pathname + "#" + (ta.id || ta.name);
      var saved = null;
      try { saved = JSON.parse(keep.getItem(key) || "null"); } catch (e) { saved = null; }
      if (saved && typeof saved.text === "string" && saved.text !== ta.value) { ta.value = saved.text; }
      ta.addEventListener("input", function () { keep.setItem(key, JSON.stringify({ text: ta.value })); });
      ta.form.addEventListener("submit", function () { keep.setItem(key, JSON.stringify({ text: ta.value, sent: true })); });
    });
  } catch (e) { /* storage off: nothing kept */ }

  // Forms with data-confirm ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (!window.confirm(f.dataset.confirm)) { ev.preventDefault(); }
    });
  });

  // A table with data-stream is refreshed from Server-Sent Events; its
  // labels come from data-l-* attributes (the catalogue), never from here.
  var table = document.querySelector("table[data-stream]");
  if (table && window.EventSource) {
    var es = new EventSource(table.dataset.stream);
    var cell = function (tr, text, cls) {
      var td = document.createElement("td");
      if (cls) {
        var span = document.createElement("span");
        span.className = cls;
        span.textContent = text;
        td.appendChild(span);
      } else {
        td.textContent = text;
      }
      tr.appendChild(td);
    };
    es.addEventListener("operators", function (ev) {
      var msg = JSON.parse(ev.data);
      var ops = msg.operators;
      var body = document.createElement("tbody");
      ops.forEach(function (o) {
        var tr = document.createElement("tr");
        cell(tr, o.extension);
        cell(tr, o.display_name || "");
        cell(tr, o.status === "suspended" ? table.dataset.lSuspended : table.dataset.lActive);
        cell(tr, o.registered ? table.dataset.lRegistered : table.dataset.lNotRegistered,
          "state " + (o.registered ? "ok" : "off"));
        cell(tr, o.user_agent || "");
        body.appendChild(tr);
      });
      table.replaceChild(body, table.tBodies[0]);
      var t = document.getElementById("updated");
      if (t) { t.textContent = msg.at; } // the site's time, as every time shown
    });
    // The session ended (expired, logged out elsewhere, suspended): back
    // here after logging in again, with the reason shown.
    es.addEventListener("logout", function () {
      es.close();
      window.location = "/login?expired=1&next=" + encodeURIComponent(window.location.pathname + window.location.search);
    });
  }
})();
