/* The drawer's panels: the problems of the text (click one to see its line in the code view), the history
   of saves with their diffs, and the preview video with its captions and calls to action. */

import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);

export function createProblems(doc, onLine) {
  const list = $("problems"), note = $("problems-note"), count = $("problem-count"), badge = $("problems-badge");

  function show(errors, why) {
    list.textContent = "";
    errors.forEach((p) => {
      const b = el("button", { type: "button", class: "problem", "data-line": p.line ? String(p.line) : null, disabled: !p.line },
        el("span", { class: "line", text: p.line ? "Line " + p.line : "File" }), el("span", { class: "field", text: p.field || "" }),
        el("span", { class: "msg" }, p.message, p.context ? el("span", { class: "ctx", text: ` (${p.context})` }) : null));
      list.appendChild(el("li", {}, b));
    });
    count.hidden = errors.length === 0;
    count.textContent = String(errors.length);
    badge.hidden = errors.length === 0;
    badge.textContent = errors.length === 1 ? "1 problem" : `${errors.length} problems`;
    note.hidden = errors.length > 0;
    note.classList.toggle("ok", errors.length === 0 && !why);
    note.textContent = why === "record" ? "Waiting for a usable customer record." : "No problems: this storyboard is ready to save.";
  }

  list.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-line]");
    if (b) { onLine(parseInt(b.dataset.line, 10)); }
  });
  doc.on("checking", () => { note.textContent = "Checking…"; });
  doc.on("checked", (body) => show(body.errors || [], body.record_errors ? "record" : null));
  doc.on("offline", () => { note.hidden = false; note.textContent = "Could not reach the studio: is the service running?"; });
  return { show };
}

export function createHistory(doc) {
  const list = $("history"), empty = $("history-empty");
  let shown = null;

  function show(entries) {
    list.textContent = "";
    empty.hidden = entries.length > 0;
    entries.forEach((e) => {
      list.appendChild(el("li", {}, el("button", { type: "button", class: "history-item", "data-entry": e.id },
        el("time", { datetime: e.time, text: new Date(e.time).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" }) }),
        el("span", { class: "added", text: "+" + e.added }), el("span", { class: "removed", text: "\u2212" + e.removed }))));
    });
  }

  list.addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-entry]");
    if (!b) { return; }
    list.querySelectorAll("button").forEach((x) => x.setAttribute("aria-current", String(x === b)));
    const r = await fetch(doc.historyUrl + "/" + encodeURIComponent(b.dataset.entry), { credentials: "same-origin" });
    const entry = await r.json();
    shown = entry.text;
    const pre = $("diff");
    pre.textContent = "";
    entry.diff.split("\n").forEach((line) => {
      const cls = line.startsWith("+++") || line.startsWith("---") ? "meta" : line[0] === "+" ? "add" : line[0] === "-" ? "del" : line.startsWith("@@") ? "hunk" : null;
      pre.appendChild(el("span", { class: cls, text: line || " " }));
    });
    $("diff-title").textContent = "Saved " + b.querySelector("time").textContent;
    $("diff-box").hidden = false;
  });
  $("load-version").addEventListener("click", () => { if (shown !== null) { doc.replace(shown, "replace"); } });
  doc.on("saved", (res) => { if (res.status === 200) { show(res.body.history || []); } });
  return { show };
}

/* The preview video, with captions and the calls to action laid over the buttons it draws, as the customer's page plays it. */
export function createVideo(doc) {
  const video = $("video"), layer = $("cta-layer");
  let ctas = [], timer = null;

  function state(text, busy) {
    $("video-state").textContent = text;
    $("progress").hidden = !busy;
    $("render").disabled = !!busy;
  }

  $("render").addEventListener("click", async () => {
    clearTimeout(timer);
    state("Starting the render…", true);
    $("progress-bar").style.width = "3%";
    try {
      const res = await doc.json(await doc.post("videoUrl", doc.ask()));
      if (res.status === 503) { state(res.body.error, false); return; }
      if (res.status !== 202) {
        state(res.body.record_errors ? "Fix the pasted record first." : "Fix the problems first: the video is made from the editor's text.", false);
        return;
      }
      poll(res.body);
    } catch (e) { state("Could not reach the studio.", false); }
  });

  function poll(job) {
    if (job.status === "rendering") {
      const expected = Math.max(2, job.duration * 0.15);
      $("progress-bar").style.width = Math.round(5 + Math.min(0.95, job.elapsed / expected) * 90) + "%";
      state(`Rendering ${job.size[0]}×${job.size[1]}… ${job.elapsed.toFixed(1)} s`, true);
      timer = setTimeout(() => {
        fetch(job.status_url, { credentials: "same-origin" }).then((r) => r.json()).then(poll).catch(() => state("Lost the render's status.", false));
      }, 400);
      return;
    }
    if (job.status === "failed") { state("The render failed: " + job.error, false); return; }
    $("progress-bar").style.width = "100%";
    state(`Rendered in ${job.elapsed.toFixed(1)} s · ${job.duration.toFixed(1)} s of video.`, false);
    play(job.files);
  }

  function play(files) {
    video.pause();
    video.textContent = "";
    video.removeAttribute("src");
    const track = el("track", { kind: "captions", label: "Captions", srclang: (doc.language() || "en").slice(0, 2), src: files["captions.vtt"], default: true });
    video.appendChild(track);
    video.poster = files["poster.jpg"];
    video.src = files["video.mp4"];
    video.load();
    $("player").hidden = false;
    fetch(files["cta.json"], { credentials: "same-origin" }).then((r) => r.json()).then(place);
  }

  function place(docCta) {
    layer.textContent = "";
    ctas = (docCta.ctas || []).map((c) => {
      const b = el("button", { type: "button", class: "cta", "data-start": String(c.start), "data-end": String(c.end), "data-action": c.action,
        title: `${c.action}${c.link ? " → " + c.link : ""} · ${c.start.toFixed(1)}–${c.end.toFixed(1)} s` }, c.label);
      if (c.box) {
        b.style.left = ((c.box[0] + c.box[2] / 2) * 100) + "%";
        b.style.top = ((c.box[1] + c.box[3] / 2) * 100) + "%";
        b.style.width = `max(44px, ${c.box[2] * 100}%)`;
        b.style.height = `max(44px, ${c.box[3] * 100}%)`;
      } else { b.style.left = "50%"; b.style.top = "80%"; }
      b.hidden = true;
      b.addEventListener("click", () => {
        video.pause();
        state(`On a customer's page this opens the ${c.action} link${c.action === "link" && c.link ? " '" + c.link + "'" : ""}.`, false);
      });
      layer.appendChild(b);
      return b;
    });
    update();
  }

  function update() {
    const t = video.currentTime;
    ctas.forEach((b) => {
      const start = parseFloat(b.dataset.start), end = parseFloat(b.dataset.end);
      const atEnd = video.ended && end >= video.duration - 0.25;
      b.hidden = !(t >= start && (t < end || atEnd));
    });
  }
  ["timeupdate", "seeked", "play", "pause", "ended", "loadedmetadata"].forEach((n) => video.addEventListener(n, update));
}
