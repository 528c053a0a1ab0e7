/* Billcast Studio: the storyboard editor. No framework, no third party, nothing inline (see the page's CSP).
   The YAML is only ever text here: it goes to the studio's endpoints as JSON and comes back as problems,
   preview frames and videos. */
(function () {
  "use strict";

  var root = document.getElementById("studio");
  if (!root) { return; }
  var $ = function (id) { return document.getElementById(id); };
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var urls = {
    validate: root.dataset.validateUrl, frame: root.dataset.frameUrl, save: root.dataset.saveUrl,
    discard: root.dataset.discardUrl, history: root.dataset.historyUrl, video: root.dataset.videoUrl
  };
  var source = $("source"), gutter = $("gutter");
  var CHECK_DELAY = 600;

  var state = {
    base: root.dataset.base,      /* digest of the live text this editor started from */
    saved: source.value,          /* the text last saved (or loaded) */
    draft: !$("draft-banner").hidden,
    errorLines: {},
    duration: 0, fps: 25, scenes: [],
    checkTimer: null, checkSeq: 0,
    valid: false, frameBusy: false, frameAgain: false, frameUrl: null,
    job: null, pollTimer: null, ctas: [], cursorLine: 0
  };

  /* --- talking to the studio ------------------------------------------------------------------ */

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    });
  }

  function ask(extra) {
    var body = { text: source.value, language: $("language").value, customer: $("customer").value };
    if (body.customer === "pasted") { body.record = $("record").value; }
    for (var k in extra) { if (Object.prototype.hasOwnProperty.call(extra, k)) { body[k] = extra[k]; } }
    return body;
  }

  /* --- the line-numbered editor ---------------------------------------------------------------- */

  var lineCount = 0;
  function lines() { return source.value.split("\n"); }

  function renderGutter() {
    var n = lines().length;
    if (n !== lineCount) {
      var html = [];
      for (var i = 1; i <= n; i++) { html.push("<div>" + i + "</div>"); }
      html.push("<div></div>");  /* room for the horizontal scrollbar */
      gutter.innerHTML = html.join("");
      lineCount = n;
      markGutter();
    }
    syncScroll();
  }

  function markGutter() {
    var rows = gutter.children;
    for (var i = 0; i < lineCount; i++) {
      rows[i].className = (state.errorLines[i + 1] ? "err" : "") + (i + 1 === state.cursorLine ? " cur" : "");
    }
  }

  function syncScroll() { gutter.scrollTop = source.scrollTop; }

  function lineOfCaret() { return source.value.slice(0, source.selectionStart).split("\n").length; }

  function updateCursorLine() {
    var line = lineOfCaret();
    if (line !== state.cursorLine) { state.cursorLine = line; markGutter(); }
  }

  /* Select line n and scroll it into view, a third of the way down the editor. */
  function goToLine(n) {
    var all = lines();
    n = Math.max(1, Math.min(n, all.length));
    var start = 0;
    for (var i = 0; i < n - 1; i++) { start += all[i].length + 1; }
    var end = start + all[n - 1].length;
    source.focus();
    source.setSelectionRange(start, end);
    var lineHeight = parseFloat(getComputedStyle(source).lineHeight) || 20;
    source.scrollTop = Math.max(0, (n - 1) * lineHeight - source.clientHeight / 3);
    source.scrollLeft = 0;
    syncScroll();
    updateCursorLine();
    var row = gutter.children[n - 1];
    if (row) {
      row.classList.add("flash");
      setTimeout(function () { row.classList.remove("flash"); }, 900);
    }
  }

  var escaped = false;
  source.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && (e.key === "s" || e.key === "S")) { e.preventDefault(); save(false); return; }
    if (e.key === "Escape") { escaped = true; return; }
    if (e.key === "Tab" && !escaped && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      indent(e.shiftKey);
    }
    escaped = false;
  });

  function indent(out) {
    var v = source.value, s = source.selectionStart, end = source.selectionEnd;
    var lineStart = v.lastIndexOf("\n", s - 1) + 1;
    if (!out && s === end) {
      source.setRangeText("  ", s, end, "end");
    } else {
      var block = v.slice(lineStart, end);
      var changed = out ? block.replace(/^ {1,2}/gm, "") : block.replace(/^/gm, "  ");
      source.setRangeText(changed, lineStart, end, "select");
    }
    source.dispatchEvent(new Event("input"));
  }

  source.addEventListener("scroll", syncScroll);
  source.addEventListener("input", function () { renderGutter(); updateCursorLine(); edited(); });
  ["click", "keyup", "select"].forEach(function (name) { source.addEventListener(name, updateCursorLine); });

  /* --- status --------------------------------------------------------------------------------- */

  function setStatus(kind, text) {
    $("status").setAttribute("data-state", kind);
    $("status-text").textContent = text;
  }

  function dirty() { return source.value !== state.saved; }

  function clock(iso) {
    var d = iso ? new Date(iso) : new Date();
    return d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  function edited() {
    if (dirty()) { setStatus("dirty", "Unsaved changes"); }
    scheduleCheck();
  }

  window.addEventListener("beforeunload", function (e) {
    if (dirty()) { e.preventDefault(); e.returnValue = ""; }
  });

  /* --- checking -------------------------------------------------------------------------------- */

  function scheduleCheck() {
    clearTimeout(state.checkTimer);
    state.checkTimer = setTimeout(runCheck, CHECK_DELAY);
  }

  function runCheck() {
    clearTimeout(state.checkTimer);
    var seq = ++state.checkSeq;
    $("problems-note").textContent = "Checking…";
    return post(urls.validate, ask()).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    }).then(function (res) {
      if (seq !== state.checkSeq) { return; }  /* a newer check is on its way */
      showRecordErrors(res.body.record_errors || []);
      showProblems(res.body.errors || [], res.body.record_errors ? "record" : null);
      state.valid = !!res.body.preview;
      if (res.body.preview) { usePreview(res.body.preview); requestFrame(); }
      else { staleFrame(res.body.record_errors ? "Fix the pasted record to see the preview."
        : "Fix the problems to update the preview."); }
    }).catch(function () {
      if (seq === state.checkSeq) { $("problems-note").textContent = "Could not reach the studio: is the service running?"; }
    });
  }

  function showProblems(errors, why) {
    var list = $("problems");
    list.textContent = "";
    state.errorLines = {};
    errors.forEach(function (p) {
      if (p.line) { state.errorLines[p.line] = true; }
      var li = document.createElement("li");
      var b = document.createElement("button");
      b.type = "button";
      b.className = "problem";
      if (p.line) { b.setAttribute("data-line", p.line); } else { b.disabled = true; }
      var line = document.createElement("span");
      line.className = "line";
      line.textContent = p.line ? "Line " + p.line : "File";
      var field = document.createElement("span");
      field.className = "field";
      field.textContent = p.field || "";
      var msg = document.createElement("span");
      msg.className = "msg";
      msg.textContent = p.message;
      if (p.context) {
        var ctx = document.createElement("span");
        ctx.className = "ctx";
        ctx.textContent = " (" + p.context + ")";
        msg.appendChild(ctx);
      }
      b.appendChild(line);
      b.appendChild(field);
      b.appendChild(msg);
      li.appendChild(b);
      list.appendChild(li);
    });
    markGutter();
    var count = $("problem-count"), note = $("problems-note");
    count.hidden = errors.length === 0;
    count.textContent = String(errors.length);
    note.hidden = errors.length > 0;
    note.classList.toggle("ok", errors.length === 0 && !why);
    note.textContent = why === "record" ? "Waiting for a usable customer record." : "No problems: this storyboard is ready to save.";
    if (!dirty()) { setStatus(state.draft ? "draft" : "saved", $("status-text").textContent); }
  }

  $("problems").addEventListener("click", function (e) {
    var b = e.target.closest("button[data-line]");
    if (b) { goToLine(parseInt(b.getAttribute("data-line"), 10)); }
  });

  function showRecordErrors(errors) {
    var list = $("record-errors");
    list.textContent = "";
    errors.forEach(function (p) {
      var li = document.createElement("li");
      li.className = "record-error";
      li.textContent = (p.line ? "Line " + p.line + ": " : "") + (p.field ? p.field + ": " : "") + p.message;
      list.appendChild(li);
    });
  }

  $("check").addEventListener("click", runCheck);

  /* --- the preview frame ------------------------------------------------------------------------ */

  var slider = $("time"), img = $("frame-img");

  function usePreview(p) {
    state.duration = p.duration;
    state.fps = p.fps;
    var step = 1 / p.fps;
    slider.max = String(Math.max(p.duration - step, 0).toFixed(3));
    slider.step = String(Math.max(step, 0.04).toFixed(3));
    if (!state.duration0) { slider.value = String(p.poster_time); state.duration0 = p.duration; }
    if (parseFloat(slider.value) > parseFloat(slider.max)) { slider.value = slider.max; }
    var ids = p.scenes.map(function (s) { return s.id + "@" + s.start; }).join(",");
    if (ids !== state.scenes.map(function (s) { return s.id + "@" + s.start; }).join(",")) {
      state.scenes = p.scenes;
      var list = $("scenes");
      list.textContent = "";
      p.scenes.forEach(function (s) {
        var li = document.createElement("li");
        var b = document.createElement("button");
        b.type = "button";
        b.textContent = s.id;
        b.title = s.start.toFixed(1) + "–" + s.end.toFixed(1) + " s";
        b.setAttribute("data-start", String(s.start));
        b.setAttribute("data-end", String(s.end));
        li.appendChild(b);
        list.appendChild(li);
      });
    }
    showTime();
  }

  function showTime() {
    var t = parseFloat(slider.value);
    $("time-out").textContent = t.toFixed(2) + " / " + state.duration.toFixed(1) + " s";
    Array.prototype.forEach.call($("scenes").querySelectorAll("button"), function (b) {
      var on = t >= parseFloat(b.getAttribute("data-start")) && t < parseFloat(b.getAttribute("data-end"));
      b.setAttribute("aria-current", on ? "true" : "false");
    });
  }

  $("scenes").addEventListener("click", function (e) {
    var b = e.target.closest("button[data-start]");
    if (!b) { return; }
    var start = parseFloat(b.getAttribute("data-start")), end = parseFloat(b.getAttribute("data-end"));
    slider.value = String(Math.min(start + Math.min(1.2, (end - start) / 2), end - 0.01));
    showTime();
    requestFrame();
  });

  slider.addEventListener("input", function () { showTime(); requestFrame(); });

  function staleFrame(message) {
    $("frame").classList.add("stale");
    $("frame-note").textContent = message;
    $("frame-note").hidden = false;
  }

  /* One frame request at a time; while one is out, only the latest wish is kept. */
  function requestFrame() {
    if (!state.valid) { return; }  /* the frame would be refused: the note already says why */
    if (state.frameBusy) { state.frameAgain = true; return; }
    state.frameBusy = true;
    state.frameAgain = false;
    post(urls.frame, ask({ t: parseFloat(slider.value) })).then(function (r) {
      if (r.ok && (r.headers.get("Content-Type") || "").indexOf("image/") === 0) {
        return r.blob().then(function (blob) {
          var old = state.frameUrl;
          state.frameUrl = URL.createObjectURL(blob);
          img.src = state.frameUrl;
          img.setAttribute("data-time", r.headers.get("X-Frame-Time") || "");
          if (old) { setTimeout(function () { URL.revokeObjectURL(old); }, 1000); }
          $("frame").classList.remove("stale");
          $("frame-note").hidden = true;
        });
      }
      staleFrame("Fix the problems to update the preview.");
    }).catch(function () {
      staleFrame("Could not draw the frame.");
    }).then(function () {
      state.frameBusy = false;
      if (state.frameAgain) { requestFrame(); }
    });
  }

  /* --- whom the preview is for ----------------------------------------------------------------- */

  $("customer").addEventListener("change", function () {
    $("paste").hidden = $("customer").value !== "pasted";
    if ($("customer").value === "pasted") { $("record").focus(); }
    runCheck();
  });
  $("language").addEventListener("change", runCheck);
  var recordTimer = null;
  $("record").addEventListener("input", function () {
    clearTimeout(recordTimer);
    recordTimer = setTimeout(runCheck, CHECK_DELAY);
  });

  /* --- saving ----------------------------------------------------------------------------------- */

  function save(force) {
    var text = source.value;
    $("save").disabled = true;
    setStatus("busy", "Saving…");
    return post(urls.save, ask({ base: state.base, force: !!force })).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    }).then(function (res) {
      var body = res.body;
      $("conflict-banner").hidden = true;
      if (res.status === 200) {
        state.base = body.saved.base;
        state.saved = text;
        state.draft = false;
        $("draft-banner").hidden = true;
        showProblems(body.errors || [], null);
        setStatus("saved", (body.saved.changed ? "Saved " : "No changes · saved ") + clock(body.saved.saved_at));
        showHistory(body.history || []);
        if (body.preview) { state.valid = true; usePreview(body.preview); }
      } else if (res.status === 422 && body.draft) {
        state.draft = true;
        state.valid = false;
        staleFrame("Fix the problems to update the preview.");
        state.saved = text;
        $("draft-banner").hidden = false;
        showProblems(body.errors || [], null);
        setStatus("draft", "Draft – not live (" + (body.errors || []).length + " problem" +
          ((body.errors || []).length === 1 ? "" : "s") + ")");
      } else if (res.status === 409) {
        $("conflict-banner").hidden = false;
        setStatus("bad", "Not saved: changed by someone else");
      } else {
        if (body.record_errors) { showRecordErrors(body.record_errors); }
        setStatus("bad", "Not saved: " + (body.error || "fix the customer record first"));
      }
    }).catch(function () {
      setStatus("bad", "Not saved: could not reach the studio");
    }).then(function () { $("save").disabled = false; });
  }

  $("save").addEventListener("click", function () { save(false); });
  $("force-save").addEventListener("click", function () { save(true); });

  $("discard").addEventListener("click", function () {
    if (!window.confirm("Discard the draft and go back to the live storyboard?")) { return; }
    post(urls.discard, {}).then(function (r) { return r.json(); }).then(function (body) {
      source.value = body.text;
      state.saved = body.text;
      state.base = body.base;
      state.draft = false;
      $("draft-banner").hidden = true;
      setStatus("saved", "Draft discarded");
      renderGutter();
      runCheck();
    });
  });

  /* --- history ---------------------------------------------------------------------------------- */

  function showHistory(entries) {
    var list = $("history");
    list.textContent = "";
    $("history-empty").hidden = entries.length > 0;
    entries.forEach(function (e) {
      var li = document.createElement("li");
      var b = document.createElement("button");
      b.type = "button";
      b.className = "history-item";
      b.setAttribute("data-entry", e.id);
      var time = document.createElement("time");
      time.setAttribute("datetime", e.time);
      time.textContent = new Date(e.time).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
      var add = document.createElement("span");
      add.className = "added";
      add.textContent = "+" + e.added;
      var del = document.createElement("span");
      del.className = "removed";
      del.textContent = "\u2212" + e.removed;
      b.appendChild(time);
      b.appendChild(add);
      b.appendChild(del);
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  var shownVersion = null;
  $("history").addEventListener("click", function (e) {
    var b = e.target.closest("button[data-entry]");
    if (!b) { return; }
    Array.prototype.forEach.call($("history").querySelectorAll("button"), function (x) {
      x.setAttribute("aria-current", x === b ? "true" : "false");
    });
    fetch(urls.history + "/" + encodeURIComponent(b.getAttribute("data-entry")), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (entry) {
        shownVersion = entry.text;
        var pre = $("diff");
        pre.textContent = "";
        entry.diff.split("\n").forEach(function (line) {
          var span = document.createElement("span");
          span.textContent = line || " ";
          if (line.indexOf("+++") === 0 || line.indexOf("---") === 0) { span.className = "meta"; }
          else if (line.charAt(0) === "+") { span.className = "add"; }
          else if (line.charAt(0) === "-") { span.className = "del"; }
          else if (line.indexOf("@@") === 0) { span.className = "hunk"; }
          pre.appendChild(span);
        });
        $("diff-title").textContent = "Saved " + b.querySelector("time").textContent;
        $("diff-box").hidden = false;
      });
  });

  $("load-version").addEventListener("click", function () {
    if (shownVersion === null) { return; }
    source.value = shownVersion;
    renderGutter();
    edited();
    source.focus();
  });

  /* --- the preview video, with captions and calls to action (as the customer's page plays it) ----- */

  var video = $("video"), layer = $("cta-layer");

  function videoState(text, busy) {
    $("video-state").textContent = text;
    $("progress").hidden = !busy;
    $("render").disabled = !!busy;
  }

  $("render").addEventListener("click", function () {
    clearTimeout(state.pollTimer);
    videoState("Starting the render…", true);
    $("progress-bar").style.width = "3%";
    post(urls.video, ask()).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    }).then(function (res) {
      if (res.status !== 202) {
        videoState(res.body.record_errors ? "Fix the pasted record first." : "Fix the problems first: the video is made from the editor's text.", false);
        return;
      }
      poll(res.body);
    }).catch(function () { videoState("Could not reach the studio.", false); });
  });

  function poll(job) {
    if (job.status === "rendering") {
      var expected = Math.max(2, job.duration * 0.15);  /* about what the fast engine needs at 640x360 */
      var share = Math.min(0.95, job.elapsed / expected);
      $("progress-bar").style.width = Math.round(5 + share * 90) + "%";
      videoState("Rendering " + job.size[0] + "×" + job.size[1] + "… " + job.elapsed.toFixed(1) + " s", true);
      state.pollTimer = setTimeout(function () {
        fetch(job.status_url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(poll)
          .catch(function () { videoState("Lost the render's status.", false); });
      }, 400);
      return;
    }
    if (job.status === "failed") { videoState("The render failed: " + job.error, false); return; }
    $("progress-bar").style.width = "100%";
    videoState("Rendered in " + job.elapsed.toFixed(1) + " s · " + job.duration.toFixed(1) + " s of video.", false);
    play(job.files);
  }

  function play(files) {
    video.pause();
    video.textContent = "";
    video.removeAttribute("src");
    var track = document.createElement("track");
    track.kind = "captions";
    track.label = "Captions";
    track.srclang = ($("language").value || "en").slice(0, 2);
    track.src = files["captions.vtt"];
    track.default = true;
    video.appendChild(track);
    video.poster = files["poster.jpg"];
    video.src = files["video.mp4"];
    video.load();
    $("stage").hidden = false;
    fetch(files["cta.json"], { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(placeCtas);
  }

  /* Each call to action is laid over the button the video draws: its box is fractions of the frame. */
  function placeCtas(doc) {
    layer.textContent = "";
    state.ctas = (doc.ctas || []).map(function (c) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "cta";
      b.textContent = c.label;
      b.title = c.action + (c.link ? " → " + c.link : "") + " · " + c.start.toFixed(1) + "–" + c.end.toFixed(1) + " s";
      b.setAttribute("data-start", String(c.start));
      b.setAttribute("data-end", String(c.end));
      b.setAttribute("data-action", c.action);
      if (c.box) {
        b.style.left = ((c.box[0] + c.box[2] / 2) * 100) + "%";
        b.style.top = ((c.box[1] + c.box[3] / 2) * 100) + "%";
        b.style.width = "max(44px, " + (c.box[2] * 100) + "%)";
        b.style.height = "max(44px, " + (c.box[3] * 100) + "%)";
      } else {
        b.style.left = "50%";
        b.style.top = "80%";
      }
      b.hidden = true;
      b.addEventListener("click", function () {
        video.pause();
        videoState("On a customer's page this opens the " + c.action + " link" +
          (c.action === "link" && c.link ? " '" + c.link + "'" : "") + ".", false);
      });
      layer.appendChild(b);
      return b;
    });
    updateCtas();
  }

  function updateCtas() {
    var t = video.currentTime;
    state.ctas.forEach(function (b) {
      var start = parseFloat(b.getAttribute("data-start")), end = parseFloat(b.getAttribute("data-end"));
      var atEnd = video.ended && end >= video.duration - 0.25;
      b.hidden = !(t >= start && (t < end || atEnd));
    });
  }

  ["timeupdate", "seeked", "play", "pause", "ended", "loadedmetadata"].forEach(function (name) {
    video.addEventListener(name, updateCtas);
  });

  /* --- start ------------------------------------------------------------------------------------ */

  /* Times are written in UTC by the server; show them in the reader's own time. */
  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (el) {
    var d = new Date(el.getAttribute("datetime"));
    var precise = !!el.closest("#history");
    if (!isNaN(d)) { el.textContent = d.toLocaleString([], { dateStyle: "medium", timeStyle: precise ? "medium" : "short" }); }
  });
  renderGutter();
  runCheck();
})();
