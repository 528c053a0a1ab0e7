/* The timeline: the scenes as blocks as long as they last (drag a block's end to retime it), the playhead
   (click or drag anywhere to move it; the preview follows), and under them the current scene's layers as
   bars from when they come in to when they go (drag either end, or the bar). Scenes are added,
   duplicated, deleted and moved with the buttons beside it. */

import { el } from "./dom.js";
import { layerName } from "./layers.js";
import { animateFor, timingOf } from "./props.js";

const STEP = 0.1;  /* times snap to a tenth of a second */

const snap = (v) => Math.round(v / STEP) * STEP;
const fmt = (v) => (Math.round(v * 10) / 10).toFixed(1);

export function createTimeline(doc, root) {
  const scenesTrack = root.querySelector(".tl-scenes");
  const layersTrack = root.querySelector(".tl-layers");
  const ruler = root.querySelector(".tl-ruler");
  const clock = root.querySelector(".tl-time");
  const play = root.querySelector(".tl-play");
  const head = el("div", { class: "tl-head", "aria-hidden": "true" });
  const localHead = el("div", { class: "tl-head tl-head-local", "aria-hidden": "true" });
  let drag = null, playing = null;

  const model = () => doc.model();
  const total = () => (model() ? model().scenes.reduce((a, s) => a + s.duration, 0) : 0);

  /* --- drawing ---------------------------------------------------------------------------------------- */

  let drawn = null, drawnLayers = null;  /* what is on screen: redrawn only when it changes */

  function draw() {
    const m = model();
    const key = JSON.stringify(m ? [m.scenes.map((s) => [s.id, s.duration]), doc.selection.scene] : null);
    if (key === drawn && !drag) { drawLayers(); return; }
    drawn = key;
    scenesTrack.textContent = "";
    ruler.textContent = "";
    if (!m) { layersTrack.textContent = ""; drawnLayers = null; return; }
    const all = total();
    const every = all > 40 ? 5 : all > 12 ? 2 : 1;
    for (let s = 0; s <= all - every / 2; s += every) {
      const tick = el("span", { class: "tl-tick", text: s + " s" });
      tick.style.left = (s / all * 100) + "%";
      ruler.appendChild(tick);
    }
    m.scenes.forEach((scene, i) => {
      const current = doc.selection.scene === i;
      const block = el("div", { class: "tl-scene" + (current ? " is-current" : ""), role: "listitem" },
        el("button", { type: "button", class: "tl-scene-button", "data-scene": String(i), "aria-current": current ? "true" : "false",
          title: `${scene.id}: ${fmt(scene.duration)} s` }, el("span", { class: "tl-scene-name", text: scene.id }),
        el("span", { class: "tl-scene-length", text: fmt(scene.duration) + " s" })),
        el("span", { class: "tl-resize", "data-resize": String(i), title: "Drag to change the length", "aria-hidden": "true" }));
      block.style.flexGrow = String(scene.duration);
      const thumb = doc.thumb && doc.thumb(i);
      if (thumb) { block.prepend(el("img", { class: "tl-thumb", src: thumb, alt: "" })); }
      scenesTrack.appendChild(block);
    });
    scenesTrack.appendChild(head);
    drawLayers();
    moveHead();
  }

  function drawLayers() {
    const m = model();
    if (!m) { layersTrack.textContent = ""; return; }
    const si = Math.min(doc.selection.scene, m.scenes.length - 1);
    const scene = m.scenes[si];
    const planned = doc.layers ? (doc.layers.scenes.find((s) => s.index === si) || { layers: [] }) : { layers: [] };
    const shown = new Set(planned.layers.map((l) => l.index));
    const key = JSON.stringify([si, scene.duration, scene.layers, [...shown], doc.selection.kind === "layer" ? doc.selection.layer : null]);
    if (key === drawnLayers && !drag) { moveHead(); return; }
    drawnLayers = key;
    layersTrack.textContent = "";
    scene.layers.map((layer, li) => [layer, li]).reverse().forEach(([layer, li]) => {
      const t = timingOf(layer, scene.duration);
      const selected = doc.selection.kind === "layer" && doc.selection.layer === li;
      const name = layerName(layer, li);
      const bar = el("div", { class: "tl-bar kind-" + layer.kind + (shown.has(li) ? "" : " is-hidden"), "data-layer": String(li),
        title: `${fmt(t.start)}–${fmt(t.end)} s` },
        el("span", { class: "tl-grip tl-grip-start", "data-grip": "start", "aria-hidden": "true" }),
        el("span", { class: "tl-bar-label", text: `${fmt(t.start)} – ${fmt(t.end)} s` }),
        el("span", { class: "tl-grip tl-grip-end", "data-grip": "end", "aria-hidden": "true" }));
      bar.style.left = (t.start / scene.duration * 100) + "%";
      bar.style.width = (Math.max(t.end - t.start, 0.05) / scene.duration * 100) + "%";
      layersTrack.appendChild(el("div", { class: "tl-row" + (selected ? " is-selected" : "") },
        el("button", { type: "button", class: "tl-row-name", "data-layer": String(li), text: name, title: "Select this layer" }),
        el("div", { class: "tl-lane" }, bar)));
    });
    if (!scene.layers.length) { layersTrack.appendChild(el("p", { class: "note", text: "This scene has no layers yet: add one from the Layers panel." })); }
    const lane = layersTrack.querySelector(".tl-lane");
    if (lane) { layersTrack.appendChild(localHead); }
    moveHead();
  }

  function moveHead() {
    const all = total();
    clock.textContent = `${doc.t.toFixed(2)} / ${all.toFixed(1)} s`;
    if (!all) { return; }
    head.style.left = (doc.t / all * 100) + "%";
    const times = doc.sceneTimes(doc.selection.scene);
    const lane = layersTrack.querySelector(".tl-lane");
    const inScene = doc.t >= times.start && doc.t < times.end && lane;
    localHead.hidden = !inScene;
    if (inScene) {
      const box = lane.getBoundingClientRect(), outer = layersTrack.getBoundingClientRect();
      localHead.style.left = (box.left - outer.left + (doc.t - times.start) / (times.end - times.start) * box.width) + "px";
    }
  }

  /* --- the playhead ------------------------------------------------------------------------------------- */

  function seekTo(ev) {
    const box = scenesTrack.getBoundingClientRect();
    doc.seek(Math.max(0, Math.min(1, (ev.clientX - box.left) / box.width)) * total());
  }

  /* --- dragging: a scene's end, a layer's bar or its ends, or the playhead ------------------------------------ */

  root.addEventListener("pointerdown", (ev) => {
    const m = model();
    if (!m || ev.button !== 0) { return; }
    const resize = ev.target.closest("[data-resize]");
    const bar = ev.target.closest(".tl-bar");
    if (resize) {
      const i = Number(resize.dataset.resize);
      drag = { kind: "scene", i, x0: ev.clientX, d0: m.scenes[i].duration, per: total() / scenesTrack.getBoundingClientRect().width,
        block: resize.parentElement };
    } else if (bar) {
      const si = doc.selection.scene, li = Number(bar.dataset.layer);
      const scene = m.scenes[si];
      const grip = ev.target.closest("[data-grip]");
      drag = { kind: "bar", si, li, grip: grip ? grip.dataset.grip : "move", x0: ev.clientX, bar, duration: scene.duration,
        t0: timingOf(scene.layers[li], scene.duration), per: scene.duration / bar.parentElement.getBoundingClientRect().width };
      if (!(doc.selection.kind === "layer" && doc.selection.layer === li)) {
        doc.select({ kind: "layer", scene: si, layer: li });  /* redraws the rows: follow the bar */
        drag.bar = layersTrack.querySelector(`.tl-bar[data-layer="${li}"]`) || bar;
      }
    } else if (ev.target.closest(".tl-scenes, .tl-ruler") && !ev.target.closest("button")) {
      drag = { kind: "head" };
      seekTo(ev);
    } else {
      return;
    }
    root.setPointerCapture(ev.pointerId);
    ev.preventDefault();
  });

  root.addEventListener("pointermove", (ev) => {
    if (!drag) { return; }
    if (drag.kind === "head") { seekTo(ev); return; }
    const dt = (ev.clientX - drag.x0) * drag.per;
    drag.moved = drag.moved || Math.abs(ev.clientX - drag.x0) > 2;
    if (drag.kind === "scene") {
      drag.value = Math.max(0.2, snap(drag.d0 + dt));
      drag.block.style.flexGrow = String(drag.value);
      drag.block.querySelector(".tl-scene-length").textContent = fmt(drag.value) + " s";
      return;
    }
    const t = Object.assign({}, drag.t0);
    const span = drag.t0.end - drag.t0.start;
    if (drag.grip === "start") { t.start = Math.min(Math.max(0, snap(drag.t0.start + dt)), t.end - STEP); }
    else if (drag.grip === "end") { t.end = Math.max(Math.min(drag.duration, snap(drag.t0.end + dt)), t.start + STEP); }
    else { t.start = Math.min(Math.max(0, snap(drag.t0.start + dt)), drag.duration - span); t.end = t.start + span; }
    drag.value = t;
    drag.bar.style.left = (t.start / drag.duration * 100) + "%";
    drag.bar.style.width = ((t.end - t.start) / drag.duration * 100) + "%";
    drag.bar.querySelector(".tl-bar-label").textContent = `${fmt(t.start)} – ${fmt(t.end)} s`;
  });

  async function endDrag(ev) {
    const done = drag;
    drag = null;
    drawn = drawnLayers = null;  /* a drag changed the blocks by hand: the next draw starts afresh */
    if (!done || !done.moved || done.value === undefined || ev.type !== "pointerup") { if (done && done.kind !== "head") { draw(); } return; }
    if (done.kind === "scene") {
      const path = ["scenes", done.i, "duration"];
      const refused = await doc.edit([{ op: "set", path, value: Math.round(done.value * 10) / 10 }], path);
      if (refused.length) { doc.emit("refused", { path, problems: refused }); draw(); }
    } else if (done.kind === "bar") {
      const path = ["scenes", done.si, "layers", done.li, "animate"];
      const refused = await doc.edit([{ op: "set", path, value: animateFor(done.value, done.duration) }], path);
      if (refused.length) { doc.emit("refused", { path, problems: refused }); draw(); }
    }
  }
  root.addEventListener("pointerup", endDrag);
  root.addEventListener("pointercancel", endDrag);

  /* --- clicks: select a scene or a layer; the scene buttons ------------------------------------------------- */

  root.addEventListener("click", (ev) => {
    const sceneButton = ev.target.closest("[data-scene]");
    if (sceneButton) { doc.select({ kind: "scene", scene: Number(sceneButton.dataset.scene) }); return; }
    const name = ev.target.closest(".tl-row-name");
    if (name) { doc.select({ kind: "layer", scene: doc.selection.scene, layer: Number(name.dataset.layer) }); return; }
    const action = ev.target.closest("[data-scene-action]");
    if (action) { sceneAction(action.dataset.sceneAction); }
  });

  function sceneAction(what) {
    const m = model();
    if (!m) { return; }
    const i = Math.min(doc.selection.scene, m.scenes.length - 1);
    const path = ["scenes"];
    if (what === "add") {
      const ids = new Set(m.scenes.map((s) => s.id));
      let n = m.scenes.length + 1;
      while (ids.has("scene_" + n)) { n++; }
      const palette = Object.keys(m.colors || {});
      doc.edit([{ op: "insert", path, index: i + 1, value: { id: "scene_" + n, duration: 3, background: { color: palette[0] || "#0E4D64" }, layers: [] } }])
        .then(() => doc.select({ kind: "scene", scene: i + 1 }));
    } else if (what === "duplicate") {
      doc.edit([{ op: "duplicate", path, index: i }]).then(() => doc.select({ kind: "scene", scene: i + 1 }));
    } else if (what === "delete") {
      if (m.scenes.length < 2) { doc.emit("notice", "A storyboard needs at least one scene."); return; }
      if (!window.confirm(`Delete the scene “${m.scenes[i].id}” and its ${m.scenes[i].layers.length} layers? (Undo brings it back.)`)) { return; }
      doc.edit([{ op: "delete", path: ["scenes", i] }]).then(() => doc.select({ kind: "scene", scene: Math.max(0, i - 1) }));
    } else if (what === "earlier" && i > 0) {
      doc.edit([{ op: "move", path, from: i, to: i - 1 }]).then(() => doc.select({ kind: "scene", scene: i - 1 }));
    } else if (what === "later" && i < m.scenes.length - 1) {
      doc.edit([{ op: "move", path, from: i, to: i + 1 }]).then(() => doc.select({ kind: "scene", scene: i + 1 }));
    }
  }

  /* --- playing: the playhead runs in real time, the preview shows the frames as fast as they come ---------- */

  play.addEventListener("click", () => {
    if (playing) { cancelAnimationFrame(playing.raf); playing = null; play.setAttribute("aria-pressed", "false"); return; }
    const all = total();
    if (doc.t >= all - 0.1) { doc.seek(0); }
    playing = { from: doc.t, at: performance.now(), raf: 0 };
    play.setAttribute("aria-pressed", "true");
    const tick = (now) => {
      if (!playing) { return; }
      const t = playing.from + (now - playing.at) / 1000;
      if (t >= all) { doc.seek(all); play.click(); return; }
      doc.seek(t);
      playing.raf = requestAnimationFrame(tick);
    };
    playing.raf = requestAnimationFrame(tick);
  });

  doc.on("checked", draw);
  doc.on("layers", drawLayers);
  doc.on("thumb", (t) => {
    const block = scenesTrack.querySelectorAll(".tl-scene")[t.scene];
    if (!block) { return; }
    const old = block.querySelector(".tl-thumb");
    if (old) { old.src = t.url; } else { block.prepend(el("img", { class: "tl-thumb", src: t.url, alt: "" })); }
  });
  doc.on("select", draw);
  doc.on("time", moveHead);
  window.addEventListener("resize", moveHead);
  return { draw };
}
