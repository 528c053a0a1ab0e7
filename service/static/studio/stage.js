/* The preview: the frame at the playhead, drawn by the studio from the editor's text, with the selected
   layer outlined over it. Click a layer to select it (hit-tested against the boxes the renderer planned,
   topmost first); drag it to move it, drag a handle to resize it, arrow keys nudge it (Shift: 10 px).
   It snaps to the safe area, the centre and the other layers' edges (hold Alt not to). Positions are
   written in the storyboard's own units, the pixels of its `size`. */

import { el } from "./dom.js";

const SAFE = 0.05;          /* the safe area's margin, a share of the frame */
const SNAP_PX = 7;          /* how close, on screen, an edge must come to snap */
const NUDGE_COMMIT = 350;   /* ms after the last arrow key before the nudge is written */
const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];

function easeOut(p) { return 1 - Math.pow(1 - p, 3); }
function progress(t, start, duration) { return t <= start ? 0 : t >= start + duration ? 1 : (t - start) / duration; }

/* Opacity and offset of a planned layer `t` seconds into its scene (as the renderer's layer_state). */
export function layerState(layer, t) {
  let opacity = layer.opacity, dx = 0, dy = 0;
  for (const a of layer.anims) {
    const p = progress(t, a.start, a.duration);
    if (a.type === "fade_in") { opacity *= p; }
    else if (a.type === "fade_out") { opacity *= 1 - p; }
    else { const k = 1 - easeOut(p); dx += a.offset[0] * k; dy += a.offset[1] * k; }
  }
  return { opacity, dx: Math.round(dx), dy: Math.round(dy) };
}

export function createStage(doc, parts) {
  const { stage, img, note, overlay } = parts;
  const outline = overlay.appendChild(el("div", { class: "outline" }));
  const label = outline.appendChild(el("span", { class: "outline-label" }));
  HANDLES.forEach((h) => outline.appendChild(el("div", { class: "handle handle-" + h, "data-handle": h })));
  const guideX = overlay.appendChild(el("div", { class: "guide guide-x" }));
  const guideY = overlay.appendChild(el("div", { class: "guide guide-y" }));
  const hover = overlay.appendChild(el("div", { class: "hover-box" }));
  guideX.hidden = guideY.hidden = hover.hidden = outline.hidden = true;

  let frameBusy = false, frameWanted = null, frameUrl = null, drag = null, nudge = null, nudgeTimer = null;

  /* --- geometry: storyboard units <-> the frame's pixels <-> the screen ----------------------------- */

  function geometry() {
    const L = doc.layers;
    if (!L) { return null; }
    const k = overlay.clientWidth / L.size[0];
    return { W: L.board[0], H: L.board[1], s: L.size[0] / L.board[0], k, mirrored: L.mirrored };
  }
  function toScreen(g, box) {
    const [x, y, w, h] = box;
    const left = g.mirrored ? g.W - x - w : x;
    return [left * g.s * g.k, y * g.s * g.k, w * g.s * g.k, h * g.s * g.k];
  }
  function place(node, rect) {
    node.style.left = rect[0] + "px"; node.style.top = rect[1] + "px";
    node.style.width = Math.max(rect[2], 1) + "px"; node.style.height = Math.max(rect[3], 1) + "px";
  }

  function layerModel(sel) {
    const model = doc.model();
    return model && sel.layer !== null ? model.scenes[sel.scene].layers[sel.layer] : null;
  }
  function planned(sceneIndex) {
    const L = doc.layers;
    return L ? (L.scenes.find((s) => s.index === sceneIndex) || { layers: [] }) : { layers: [] };
  }

  /* --- the frame ------------------------------------------------------------------------------------ */

  /* One frame request at a time; while one is out, only the latest wish is kept. */
  function requestFrame(ops) {
    if (!doc.result || !doc.result.preview) { return; }
    frameWanted = { t: doc.t, ops: ops || null };
    if (frameBusy) { return; }
    frameBusy = true;
    const wish = frameWanted;
    frameWanted = null;
    const started = performance.now();
    doc.post("frameUrl", doc.ask(wish.ops ? { t: wish.t, ops: wish.ops } : { t: wish.t })).then((r) => {
      if (r.ok && (r.headers.get("Content-Type") || "").indexOf("image/") === 0) {
        return r.blob().then((blob) => {
          const old = frameUrl;
          frameUrl = URL.createObjectURL(blob);
          img.src = frameUrl;
          img.dataset.time = r.headers.get("X-Frame-Time") || "";
          img.dataset.ms = String(Math.round(performance.now() - started));
          if (old) { setTimeout(() => URL.revokeObjectURL(old), 1000); }
          stale(null);
        });
      }
      if (r.status === 503) { stale("The studio is busy: the preview follows in a moment."); return null; }
      if (!wish.ops) { stale("Fix the problems to update the preview."); }
      return null;
    }).catch(() => stale("Could not draw the frame.")).then(() => {
      frameBusy = false;
      if (frameWanted) { requestFrame(frameWanted.ops); }
    });
  }

  function stale(message) {
    stage.classList.toggle("stale", !!message);
    note.hidden = !message;
    note.textContent = message || "";
  }

  /* --- the outline of the selected layer --------------------------------------------------------------- */

  function draw(boxOverride) {
    const g = geometry();
    const sel = doc.selection;
    const layer = layerModel(sel);
    if (!g || !layer || !doc.result || !doc.result.preview) { outline.hidden = true; return; }
    const box = boxOverride || layer.box;
    const rect = toScreen(g, box);
    place(outline, rect);
    outline.classList.toggle("label-below", rect[1] < 22);  /* no room above: the label goes under the box */
    const shown = planned(sel.scene).layers.some((p) => p.index === sel.layer);
    outline.hidden = false;
    outline.classList.toggle("is-hidden", !shown);
    label.textContent = `${Math.round(box[0])}, ${Math.round(box[1])} · ${Math.round(box[2])}×${Math.round(box[3])}` +
      (shown ? "" : " · hidden for this customer");
  }

  /* The topmost layer under a point of the screen, as shown at the playhead (invisible ones let clicks through). */
  function hit(px, py) {
    const L = doc.layers;
    const g = geometry();
    if (!L || !g) { return null; }
    const scene = planned(doc.sceneAt(doc.t));
    const local = doc.t - (scene.start || 0);
    const fx = px / g.k, fy = py / g.k;
    for (const layer of scene.layers) {
      const st = layerState(layer, local);
      const [x, y, w, h] = layer.box;
      if (st.opacity > 0.02 && fx >= x + st.dx && fx <= x + st.dx + w && fy >= y + st.dy && fy <= y + st.dy + h) {
        return { scene: scene.index, layer: layer.index };
      }
    }
    return null;
  }

  /* --- snapping -------------------------------------------------------------------------------------- */

  function targets(g, sceneIndex, except) {
    const xs = [0, g.W * SAFE, g.W / 2, g.W * (1 - SAFE), g.W];
    const ys = [0, g.H * SAFE, g.H / 2, g.H * (1 - SAFE), g.H];
    const model = doc.model();
    const shown = new Set(planned(sceneIndex).layers.map((p) => p.index));
    model.scenes[sceneIndex].layers.forEach((l, i) => {
      if (i === except || !shown.has(i)) { return; }
      const [x, y, w, h] = l.box;
      xs.push(x, x + w / 2, x + w);
      ys.push(y, y + h / 2, y + h);
    });
    return { xs, ys };
  }

  /* The smallest shift that brings one of `edges` onto one of `lines`, within `reach`; [shift, line]. */
  function snap(edges, lines, reach) {
    let best = null;
    for (const e of edges) {
      for (const line of lines) {
        const d = line - e;
        if (Math.abs(d) <= reach && (!best || Math.abs(d) < Math.abs(best[0]))) { best = [d, line]; }
      }
    }
    return best;
  }

  function guide(g, node, at, vertical) {
    if (at === null) { node.hidden = true; return; }
    node.hidden = false;
    if (vertical) { node.style.left = ((g.mirrored ? g.W - at : at) * g.s * g.k) + "px"; }
    else { node.style.top = (at * g.s * g.k) + "px"; }
  }

  /* --- dragging and resizing ----------------------------------------------------------------------------- */

  function boxFor(d, ev) {
    const g = d.g;
    let dx = (ev.clientX - d.x0) / (g.s * g.k) * (g.mirrored ? -1 : 1);
    let dy = (ev.clientY - d.y0) / (g.s * g.k);
    let [x, y, w, h] = d.box;
    const hd = d.handle || "";
    const left = d.handle ? hd.includes(g.mirrored ? "e" : "w") : true;
    const right = d.handle ? hd.includes(g.mirrored ? "w" : "e") : true;
    const top = d.handle ? hd.includes("n") : true;
    const bottom = d.handle ? hd.includes("s") : true;
    const reach = SNAP_PX / (g.s * g.k);
    let sx = null, sy = null;
    if (!ev.altKey) {
      const xEdges = d.handle ? [left ? x + dx : null, right ? x + w + dx : null].filter((v) => v !== null) : [x + dx, x + dx + w / 2, x + dx + w];
      const yEdges = d.handle ? [top ? y + dy : null, bottom ? y + h + dy : null].filter((v) => v !== null) : [y + dy, y + dy + h / 2, y + dy + h];
      const bx = (left || right) ? snap(xEdges, d.lines.xs, reach) : null;
      const by = (top || bottom) ? snap(yEdges, d.lines.ys, reach) : null;
      if (bx) { dx += bx[0]; sx = bx[1]; }
      if (by) { dy += by[0]; sy = by[1]; }
    }
    if (!d.handle) { x += dx; y += dy; }
    else {
      if (left) { x += dx; w -= dx; }
      if (right) { w += dx; }
      if (top) { y += dy; h -= dy; }
      if (bottom) { h += dy; }
      if (w < 4) { if (left) { x -= 4 - w; } w = 4; }
      if (h < 4) { if (top) { y -= 4 - h; } h = 4; }
    }
    guide(g, guideX, sx, true);
    guide(g, guideY, sy, false);
    return [x, y, w, h].map((v) => Math.round(v));
  }

  function boxPath(sel) { return ["scenes", sel.scene, "layers", sel.layer, "box"]; }

  async function commit(sel, box, restore) {
    const path = boxPath(sel);
    const refused = await doc.edit([{ op: "set", path, value: box }], path);
    if (refused.length) {
      doc.emit("refused", { path, problems: refused });
      draw(restore);
      requestFrame();
    }
  }

  overlay.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || !doc.layers) { return; }
    stage.focus({ preventScroll: true });
    const rect = overlay.getBoundingClientRect();
    const handle = ev.target.dataset ? ev.target.dataset.handle : null;
    let sel = doc.selection;
    if (!handle) {
      const found = hit(ev.clientX - rect.left, ev.clientY - rect.top);
      const onOutline = sel.kind === "layer" && !outline.hidden && ev.target.closest(".outline");
      if (!found && !onOutline) { doc.select({ kind: "scene", scene: doc.sceneAt(doc.t) }); return; }
      if (found && !onOutline) {
        sel = { kind: "layer", scene: found.scene, layer: found.layer };
        doc.select(sel);
      }
    }
    const layer = layerModel(doc.selection);
    const g = geometry();
    if (!layer || !g) { return; }
    drag = { sel: doc.selection, handle, x0: ev.clientX, y0: ev.clientY, box: layer.box.slice(), g,
      lines: targets(g, doc.selection.scene, doc.selection.layer), moved: false, last: layer.box.slice() };
    overlay.setPointerCapture(ev.pointerId);
    ev.preventDefault();
  });

  overlay.addEventListener("pointermove", (ev) => {
    if (!drag) {
      const rect = overlay.getBoundingClientRect();
      const found = hit(ev.clientX - rect.left, ev.clientY - rect.top);
      const g = geometry();
      const model = doc.model();
      if (!found || !g || !model || (doc.selection.kind === "layer" && found.layer === doc.selection.layer)) { hover.hidden = true; return; }
      place(hover, toScreen(g, model.scenes[found.scene].layers[found.layer].box));
      hover.hidden = false;
      return;
    }
    if (!drag.moved && Math.abs(ev.clientX - drag.x0) + Math.abs(ev.clientY - drag.y0) < 3) { return; }
    drag.moved = true;
    hover.hidden = true;
    drag.last = boxFor(drag, ev);
    draw(drag.last);
    requestFrame([{ op: "set", path: boxPath(drag.sel), value: drag.last }]);
  });

  function endDrag(ev) {
    if (!drag) { return; }
    const done = drag;
    drag = null;
    guideX.hidden = guideY.hidden = true;
    if (ev.type === "pointerup" && done.moved) { commit(done.sel, done.last, done.box); }
    else if (done.moved) { draw(); requestFrame(); }
  }
  overlay.addEventListener("pointerup", endDrag);
  overlay.addEventListener("pointercancel", endDrag);
  overlay.addEventListener("pointerleave", () => { hover.hidden = true; });

  /* --- keys: nudge, leave, delete ---------------------------------------------------------------------- */

  stage.addEventListener("keydown", (ev) => {
    const sel = doc.selection;
    const layer = layerModel(sel);
    const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[ev.key];
    if (steps && layer) {
      ev.preventDefault();
      const n = ev.shiftKey ? 10 : 1;
      const g = geometry();
      const flip = g && g.mirrored ? -1 : 1;
      if (!nudge || nudge.layer !== sel.layer || nudge.scene !== sel.scene) {
        nudge = { scene: sel.scene, layer: sel.layer, box: layer.box.slice(), start: layer.box.slice() };
      }
      nudge.box[0] = Math.round(nudge.box[0] + steps[0] * n * flip);
      nudge.box[1] = Math.round(nudge.box[1] + steps[1] * n);
      draw(nudge.box);
      requestFrame([{ op: "set", path: boxPath(sel), value: nudge.box }]);
      clearTimeout(nudgeTimer);
      nudgeTimer = setTimeout(() => { const done = nudge; nudge = null; commit(done, done.box, done.start); }, NUDGE_COMMIT);
      return;
    }
    if (ev.key === "Escape" && sel.kind === "layer") { ev.preventDefault(); doc.select({ kind: "scene", scene: sel.scene }); }
    if ((ev.key === "Delete" || ev.key === "Backspace") && layer) {
      ev.preventDefault();
      doc.edit([{ op: "delete", path: ["scenes", sel.scene, "layers", sel.layer] }]);
    }
  });

  /* --- following the document ----------------------------------------------------------------------------- */

  /* A second after a check, each scene's frame is drawn small, one at a time while nothing else is asked:
     the timeline shows them, and the studio keeps the scene's layers drawn, so a later click into any
     scene only composes its frame. */
  let warmTimer = null, warmSeq = 0;
  const thumbs = new Map();
  function warm() {
    clearTimeout(warmTimer);
    const seq = ++warmSeq;
    warmTimer = setTimeout(async () => {
      const scenes = (doc.layers && doc.layers.scenes) || [];
      for (const scene of scenes) {
        while (frameBusy || drag) { await new Promise((r) => setTimeout(r, 150)); }
        if (seq !== warmSeq) { return; }
        const t = scene.start + Math.min(1.5, (scene.end - scene.start) * 0.6);
        const r = await doc.post("frameUrl", doc.ask({ t, width: 160 })).catch(() => null);
        if (!r || !r.ok || seq !== warmSeq) { return; }
        const url = URL.createObjectURL(await r.blob());
        if (thumbs.has(scene.index)) { URL.revokeObjectURL(thumbs.get(scene.index)); }
        thumbs.set(scene.index, url);
        doc.emit("thumb", { scene: scene.index, url });
      }
    }, 1000);
  }
  doc.thumb = (index) => thumbs.get(index) || null;

  doc.on("time", () => { requestFrame(); draw(); });
  doc.on("layers", () => { fit(); requestFrame(); draw(); warm(); });
  doc.on("select", () => draw());
  doc.on("checked", (body) => {
    if (!body.preview) { stale(body.record_errors ? "Fix the pasted record to see the preview." : "Fix the problems to update the preview."); outline.hidden = true; }
  });
  doc.on("offline", () => stale("Could not reach the studio: is the service running?"));

  /* The frame's shape, at most 960 px wide and 62 % of the window high (a vertical video stays in view). */
  function fit() {
    const L = doc.layers;
    if (!L) { return; }
    stage.style.aspectRatio = `${L.size[0]} / ${L.size[1]}`;
    stage.style.maxWidth = Math.round(Math.min(960, window.innerHeight * 0.62 * L.size[0] / L.size[1])) + "px";
  }
  window.addEventListener("resize", () => { fit(); draw(); });
  new ResizeObserver(() => draw()).observe(overlay);

  return { requestFrame, hit, draw };
}
