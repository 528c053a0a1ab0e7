/* Billcast page script: the player's controls, the calls to action over the video, and the
   engagement beacons. No framework. Without it the page still works: the browser's own video
   controls stay on, and the pay buttons are in the page. */
(function () {
  "use strict";

  /* Engagement beacons: what was done on the page (viewed, played, how far, what was clicked),
     never who did it. Each is a few bytes of JSON sent with sendBeacon to {pay service}/e/<token>;
     the page's CSP allows connecting to the pay origin. Each carries "s", a random id for this
     browser tab (kept in sessionStorage, so a reload keeps it), so that the service counts a view,
     a play and each progress mark once per visit; it says nothing about who is visiting. */
  function sessionId() {
    var key = "billcast-beacon-session", id = null;
    try { id = window.sessionStorage.getItem(key); } catch (e) { /* storage off: one id for this load */ }
    if (id && /^[A-Za-z0-9_-]{22}$/.test(id)) { return id; }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    id = btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").slice(0, 22);
    try { window.sessionStorage.setItem(key, id); } catch (e) { /* kept for this load only */ }
    return id;
  }

  var beacon = (function () {
    var found = /\/r\/([A-Za-z0-9_-]{16,128})\//.exec(location.pathname);
    var url = document.body.getAttribute("data-events");
    if (!url && found) {
      var token = found[1], marker = "/pay/" + token;
      var pay = document.querySelector('a[href*="' + marker + '"]');
      url = pay ? pay.href.slice(0, pay.href.indexOf(marker)) + "/e/" + token : "/e/" + token;
    }
    var session = null;
    return function (data) {
      if (url && navigator.sendBeacon) {
        try { data.s = session = session || sessionId(); } catch (e) { /* no id: still counted once a visitor */ }
        try { navigator.sendBeacon(url, JSON.stringify(data)); } catch (e) { /* never in the visitor's way */ }
      }
    };
  })();

  function source(link) {
    var src = /[?&]src=(site|video|qr|email)(&|$)/.exec(link.getAttribute("href") || "");
    return src ? src[1] : null;
  }

  beacon({ kind: "view" });
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[href]");
    if (!link || !/\/pay\//.test(link.getAttribute("href"))) { return; }
    var data = { kind: link.classList.contains("cta") ? "cta_click" : "pay_click" };
    if (source(link)) { data.src = source(link); }
    beacon(data);
  }, true);

  var video = document.getElementById("bill-video");
  var stage = document.getElementById("stage");
  if (!video || !stage) { return; }
  var frame = stage.querySelector(".frame");
  var ctas = Array.prototype.slice.call(stage.querySelectorAll(".cta[data-start]"));
  var bar = stage.querySelector(".controls");

  /* Calls to action. The box is where the video draws its button, as fractions of the frame
     (already mirrored in a right-to-left video), so it is placed by physical left/top. */
  ctas.forEach(function (cta) {
    var box = (cta.getAttribute("data-box") || "").split(" ").map(Number);
    if (box.length === 4 && box.every(isFinite)) {
      cta.style.left = ((box[0] + box[2] / 2) * 100) + "%";
      cta.style.top = ((box[1] + box[3] / 2) * 100) + "%";
      cta.style.minWidth = "max(44px, " + (box[2] * 100) + "%)";  /* cover the drawn button, */
      cta.style.minHeight = "max(44px, " + (box[3] * 100) + "%)"; /* never below 44x44 px */
      cta.classList.add("placed");
    }
  });

  function showing(cta, t) {
    var start = parseFloat(cta.getAttribute("data-start"));
    var end = parseFloat(cta.getAttribute("data-end"));
    var atEnd = video.ended && end >= video.duration - 0.25;
    return t >= start && (t < end || atEnd);
  }

  function updateCtas() {
    var t = video.currentTime;
    ctas.forEach(function (cta) {
      var on = showing(cta, t);
      if (cta.hidden === !on) { return; }
      if (!on && document.activeElement === cta) { video.focus(); }
      cta.hidden = !on;
    });
  }

  /* The player's own controls, laid out in the page's direction. */
  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds || 0));
    return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }

  function button(act) { return bar.querySelector('[data-act="' + act + '"]'); }

  function fitFrame() {
    var full = document.fullscreenElement === stage;
    var ratio = video.videoWidth && video.videoHeight ? video.videoWidth / video.videoHeight
      : video.width / video.height;
    frame.style.maxWidth = full ? Math.floor((window.innerHeight - bar.offsetHeight) * ratio) + "px" : "";
  }

  function setUpControls() {
    var play = button("play"), mute = button("mute"), captions = button("captions");
    var full = button("fullscreen"), seek = bar.querySelector(".seek");
    var now = bar.querySelector(".time-now"), total = bar.querySelector(".time-total");
    var track = video.textTracks && video.textTracks[0];

    function sync() {
      var playing = !video.paused && !video.ended;
      bar.classList.toggle("playing", playing);
      play.setAttribute("aria-label", play.getAttribute(playing ? "data-pause" : "data-play"));
      bar.classList.toggle("muted", video.muted);
      mute.setAttribute("aria-pressed", String(video.muted));
      if (isFinite(video.duration)) { seek.max = String(video.duration); total.textContent = clock(video.duration); }
      seek.value = String(video.currentTime);
      now.textContent = clock(video.currentTime);
    }
    function toggle() { if (video.paused || video.ended) { video.play(); } else { video.pause(); } }

    play.addEventListener("click", toggle);
    video.addEventListener("click", toggle);
    mute.addEventListener("click", function () { video.muted = !video.muted; });
    seek.addEventListener("input", function () { video.currentTime = parseFloat(seek.value); });
    if (track) {
      captions.addEventListener("click", function () {
        track.mode = track.mode === "showing" ? "hidden" : "showing";
        captions.setAttribute("aria-pressed", String(track.mode === "showing"));
      });
    } else {
      captions.hidden = true;
    }
    if (stage.requestFullscreen) {
      full.addEventListener("click", function () {
        if (document.fullscreenElement) { document.exitFullscreen(); } else { stage.requestFullscreen(); }
      });
      document.addEventListener("fullscreenchange", fitFrame);
      window.addEventListener("resize", fitFrame);
    } else {
      full.hidden = true;
    }
    ["play", "pause", "ended", "timeupdate", "seeked", "volumechange", "loadedmetadata", "durationchange"]
      .forEach(function (name) { video.addEventListener(name, sync); });
    video.controls = false;
    bar.hidden = false;
    sync();
  }

  /* Play once, then progress at 25, 50, 75 and 100 % of the video, each once, in order. */
  var played = false, marks = [25, 50, 75, 100];
  video.addEventListener("play", function () {
    if (!played) { played = true; beacon({ kind: "play" }); }
  });
  function progress() {
    if (!isFinite(video.duration) || video.duration <= 0) { return; }
    var at = video.ended ? 100 : video.currentTime / video.duration * 100;
    while (marks.length && at >= marks[0] - (marks[0] === 100 ? 0.5 : 0)) {
      beacon({ kind: "progress", value: marks.shift() });
    }
  }
  video.addEventListener("timeupdate", progress);
  video.addEventListener("ended", progress);

  if (bar) { setUpControls(); }
  ["timeupdate", "seeked", "play", "pause", "ended", "loadedmetadata"].forEach(function (name) {
    video.addEventListener(name, updateCtas);
  });
  updateCtas();
})();
