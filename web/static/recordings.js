// Plateau recordings page: the waveform (peaks computed by the server,
// drawn on a canvas), seeking from the comments, and the comment form's
// moment from a click on the waveform. The page works without this file:
// the player, the comments and the form are plain HTML.
"use strict";
(function () {
  var audio = document.getElementById("rec-audio");
  var canvas = document.getElementById("rec-wave");
  var at = document.getElementById("c-at");
  var text = document.getElementById("c-text");
  if (!audio) { return; }

  var durationMS = canvas ? Number(canvas.dataset.durationMs) || 0 : 0;
  var wave = null; // {left: [], right: []}

  function moment(ms) {
    var s = Math.floor(ms / 1000);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (s >= 3600) { return Math.floor(s / 3600) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60); }
    return Math.floor(s / 60) + ":" + pad(s % 60);
  }

  // seek moves the player to ms, loading it first (preload="none": nothing
  // is fetched, and so audited as a playback, until asked).
  function seek(ms, play) {
    var go = function () {
      audio.currentTime = ms / 1000;
      if (play) { audio.play(); }
      draw();
    };
    if (audio.readyState === 0) {
      audio.addEventListener("loadedmetadata", go, { once: true });
      audio.load();
    } else {
      go();
    }
  }

  function position() { return Math.round(audio.currentTime * 1000); }

  // setMoment fills the comment form's moment, to the nearest second.
  function setMoment(ms) {
    if (!at) { return; }
    at.value = moment(Math.round(ms / 1000) * 1000);
    if (text) { text.focus(); }
  }

  var markers = [];
  // bindComments wires the comments' seek buttons and the waveform's
  // markers (again after a comment is added in place).
  function bindComments() {
    markers = [];
    document.querySelectorAll("button.seek[data-at-ms]").forEach(function (b) {
      markers.push(Number(b.dataset.atMs));
      b.addEventListener("click", function () { seek(Number(b.dataset.atMs), true); });
    });
    draw();
  }
  bindComments();
  var now = document.getElementById("c-now");
  if (now) { now.addEventListener("click", function () { setMoment(position()); }); }

  // The comment form posts in the background: the page (and the player,
  // at its position, playing or not) stays; the comments are replaced by
  // the server's rendering of them. Without this script it is a form.
  var form = document.getElementById("comment-form");
  var status = document.getElementById("c-status");
  if (form && window.fetch && window.DOMParser) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin" })
        .then(function (res) {
          if (res.redirected && /\/login/.test(res.url)) { form.submit(); return null; }
          return res.text().then(function (html) { return { ok: res.ok, doc: new DOMParser().parseFromString(html, "text/html") }; });
        })
        .then(function (r) {
          if (!r) { return; }
          if (!r.ok) {
            var err = r.doc.querySelector("p.error");
            status.textContent = err ? err.textContent : status.dataset.lFailed;
            status.className = "error";
            return;
          }
          var fresh = r.doc.getElementById("rec-comments-block");
          var mine = document.getElementById("rec-comments-block");
          if (fresh && mine) { mine.replaceWith(fresh); bindComments(); }
          if (text) { text.value = ""; }
          status.textContent = status.dataset.lSaved;
          status.className = "hint";
        })
        .catch(function () { status.textContent = status.dataset.lFailed; status.className = "error"; })
        .then(function () { button.disabled = false; });
    });
  }

  if (!canvas || !canvas.getContext) { return; }
  var ctx = canvas.getContext("2d");

  function message(s) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#555e68";
    ctx.font = "14px sans-serif";
    ctx.fillText(s, 10, canvas.height / 2);
  }

  function draw() {
    if (!wave) { return; }
    var w = canvas.width, h = canvas.height, mid = h / 2;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#f6f7f9";
    ctx.fillRect(0, 0, w, h);
    var bars = function (peaks, color, up) {
      if (!peaks || !peaks.length) { return; }
      ctx.fillStyle = color;
      var step = w / peaks.length;
      for (var i = 0; i < peaks.length; i++) {
        var v = Math.max(peaks[i] * (mid - 2), 0.5);
        ctx.fillRect(i * step, up ? mid - v : mid, Math.max(step, 1), v);
      }
    };
    bars(wave.left, "#0b5cad", true);   // operator, above the line
    bars(wave.right, "#1d6b31", false); // outside party, below
    ctx.fillStyle = "#d5d9de";
    ctx.fillRect(0, mid, w, 1);
    if (durationMS > 0) {
      ctx.fillStyle = "#f0a500";
      markers.forEach(function (ms) { ctx.fillRect(ms / durationMS * w - 1, 0, 3, h); });
      ctx.fillStyle = "#9b1c1c";
      ctx.fillRect(position() / durationMS * w, 0, 2, h);
    }
  }

  function resize() {
    var ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(canvas.clientWidth * ratio);
    canvas.height = Math.round(canvas.clientHeight * ratio);
    draw();
  }

  message(canvas.dataset.lLoading);
  fetch(canvas.dataset.src, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
    .then(function (wf) {
      wave = wf;
      if (!durationMS) { durationMS = wf.duration_ms; }
      resize();
    })
    .catch(function () { message(canvas.dataset.lFailed); });

  window.addEventListener("resize", resize);
  audio.addEventListener("timeupdate", draw);
  audio.addEventListener("seeked", draw);

  var commenting = canvas.dataset.canComment === "1";
  canvas.addEventListener("click", function (ev) {
    if (!durationMS) { return; }
    var rect = canvas.getBoundingClientRect();
    var ms = Math.round(Math.min(Math.max((ev.clientX - rect.left) / rect.width, 0), 1) * durationMS);
    seek(ms, false);
    if (commenting) { setMoment(ms); }
  });
  canvas.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
      var d = ev.key === "ArrowLeft" ? -5000 : 5000;
      seek(Math.min(Math.max(position() + d, 0), durationMS || Infinity), false);
      ev.preventDefault();
    } else if (ev.key === "Enter" && commenting) {
      setMoment(position());
      ev.preventDefault();
    }
  });
})();
