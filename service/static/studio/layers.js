/* The layers panel: the storyboard's settings, then the current scene's layers, topmost first, each a button
   (keyboard users select layers here as well as on the preview), with buttons to bring it forward or back,
   duplicate or delete it; and buttons to add a text, image, shape, QR code, chart or table. A new text gets
   its own translation key, so it can be translated like the others. */

import { el } from "./dom.js";

/* Two overlapping squares: "duplicate" (no font has one glyph for it everywhere). */
function copyIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("aria-hidden", "true");
  for (const [x, y] of [[1.5, 4.5], [4.5, 1.5]]) {
    const r = document.createElementNS(ns, "rect");
    [["x", x], ["y", y], ["width", 10], ["height", 10], ["rx", 2], ["fill", x > 2 ? "currentColor" : "none"],
      ["fill-opacity", "0.18"], ["stroke", "currentColor"], ["stroke-width", "1.5"]].forEach(([k, v]) => r.setAttribute(k, String(v)));
    svg.appendChild(r);
  }
  return svg;
}

const ICONS = { text: "T", image: "▣", rect: "■", chart: "▥", table: "☰", qr: "▦" };
const NAMES = { text: "Text", image: "Image", rect: "Shape", chart: "Chart", table: "Table", qr: "QR code" };

export function layerName(layer, i) {
  if (layer.id) { return layer.id; }
  if (layer.kind === "text") {
    const text = layer.text || "";
    const keys = [...new Set(Array.from(text.matchAll(/\bt\.(\w+)/g), (m) => m[1]))];
    if (keys.length) { return keys.join(" / "); }
    const field = /\{\{\s*([\w.]+)/.exec(text);
    return (field ? field[1] : text).slice(0, 40) || "text";
  }
  if (layer.kind === "image") { return layer.src.split("/").pop(); }
  return `${NAMES[layer.kind] || layer.kind} ${i + 1}`;
}

export function createLayers(doc, root, hooks) {
  const list = root.querySelector(".layer-list");
  const heading = root.querySelector(".layer-scene");
  const board = root.querySelector("[data-board]");

  function draw() {
    const m = doc.model();
    list.textContent = "";
    board.setAttribute("aria-pressed", String(doc.selection.kind === "board"));
    if (!m) { heading.textContent = "Layers"; return; }
    const si = Math.min(doc.selection.scene, m.scenes.length - 1);
    const scene = m.scenes[si];
    heading.textContent = `Scene ${si + 1} · ${scene.id}`;
    const planned = doc.layers ? (doc.layers.scenes.find((s) => s.index === si) || { layers: [] }) : { layers: [] };
    const shown = new Set(planned.layers.map((l) => l.index));
    const last = scene.layers.length - 1;
    scene.layers.map((layer, li) => [layer, li]).reverse().forEach(([layer, li]) => {
      const selected = doc.selection.kind === "layer" && doc.selection.layer === li;
      const name = layerName(layer, li);
      list.appendChild(el("li", { class: "layer" + (selected ? " is-selected" : "") },
        el("button", { type: "button", class: "layer-item", "data-layer": String(li), "aria-pressed": String(selected) },
          el("span", { class: "layer-icon kind-" + layer.kind, "aria-hidden": "true", text: ICONS[layer.kind] || "?" }),
          el("span", { class: "layer-name", text: name }),
          shown.has(li) ? null : el("span", { class: "chip chip-muted", text: "hidden", title: "Its `when` is false for this customer" })),
        el("span", { class: "layer-actions" },
          el("button", { type: "button", class: "icon-btn", "data-act": "up", "data-layer": String(li), "aria-label": `Bring ${name} forward`, title: "Bring forward", disabled: li === last }, "↑"),
          el("button", { type: "button", class: "icon-btn", "data-act": "down", "data-layer": String(li), "aria-label": `Send ${name} back`, title: "Send back", disabled: li === 0 }, "↓"),
          el("button", { type: "button", class: "icon-btn", "data-act": "duplicate", "data-layer": String(li), "aria-label": `Duplicate ${name}`, title: "Duplicate" }, copyIcon()),
          el("button", { type: "button", class: "icon-btn icon-danger", "data-act": "delete", "data-layer": String(li), "aria-label": `Delete ${name}`, title: "Delete" }, "✕"))));
    });
    if (!scene.layers.length) { list.appendChild(el("li", { class: "note", text: "No layers yet." })); }
  }

  function freeKey(m, stem) {
    const texts = m.translations[m.default_language] || {};
    let n = 1;
    while (Object.prototype.hasOwnProperty.call(texts, stem + "_" + n)) { n++; }
    return stem + "_" + n;
  }

  function luminance(hex) {
    const m = /^#?([0-9a-f]{6})/i.exec(hex || "");
    if (!m) { return 0; }
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16) / 255);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  /* A text colour that reads on the scene's background: the palette's darkest on a light colour, else white. */
  function inkFor(m, scene) {
    const named = (v) => (m.colors || {})[v] || v;
    const bg = scene.background || {};
    const base = bg.color ? named(bg.color) : bg.gradient ? named(bg.gradient[0]) : null;
    if (!base || luminance(base) < 0.6) { return "#FFFFFF"; }
    const dark = Object.entries(m.colors || {}).sort((a, b) => luminance(a[1]) - luminance(b[1]))[0];
    return dark ? dark[0] : "#102A35";
  }

  /* What a new layer of each kind starts as, centred in the frame. */
  function fresh(kind, m) {
    const [W, H] = m.size;
    const palette = Object.keys(m.colors || {});
    const centre = (w, h) => [Math.round((W - w) / 2), Math.round((H - h) / 2), w, h];
    const ops = [];
    let layer;
    if (kind === "text") {
      let text = "New text";
      if (Object.keys(m.translations || {}).length) {
        const key = freeKey(m, "text");
        ops.push({ op: "set", path: ["translations", m.default_language, key], value: "New text" });
        text = `{{ t.${key} }}`;
      }
      const scene = m.scenes[Math.min(doc.selection.scene, m.scenes.length - 1)];
      layer = { kind: "text", text, box: centre(800, 90), font: { size: 56, min_size: 28 }, color: inkFor(m, scene), align: "center",
        animate: [{ type: "fade_in", duration: 0.5 }] };
    } else if (kind === "image") {
      const image = (hooks.assets() || []).find((a) => a.kind === "image" && /logo/.test(a.path)) || (hooks.assets() || []).find((a) => a.kind === "image");
      return image ? placeImage(image, m) : null;
    } else if (kind === "rect") {
      layer = { kind: "rect", box: centre(400, 120), fill: palette[2] || palette[0] || "#F2A541", radius: 16 };
    } else if (kind === "qr") {
      layer = { kind: "qr", link: "pay", box: [W - 380, Math.round((H - 300) / 2), 300, 300] };
    } else if (kind === "chart") {
      layer = { kind: "chart", when: "bill.usage", values: "bill.usage", box: centre(1000, 460) };
    } else if (kind === "table") {
      layer = { kind: "table", when: "bill.lines", rows: "bill.lines", label: "{{ row.label }}", value: "{{ row.amount | money(currency) }}", box: centre(580, 400) };
    }
    return { ops, layer };
  }

  function placeImage(asset, m) {
    const [W, H] = m.size;
    const w = Math.min(400, Math.round(W * 0.4));
    const h = asset.width && asset.height ? Math.max(8, Math.round(w * asset.height / asset.width)) : 100;
    return { ops: [], layer: { kind: "image", src: asset.path, box: [Math.round(W * 0.05), Math.round(H * 0.05), w, h], align: "start" } };
  }

  async function add(made) {
    const m = doc.model();
    if (!m || !made) { return; }
    const si = Math.min(doc.selection.scene, m.scenes.length - 1);
    const index = m.scenes[si].layers.length;
    const problems = await doc.edit(made.ops.concat([{ op: "insert", path: ["scenes", si, "layers"], index, value: made.layer }]));
    if (problems.length) { doc.emit("notice", problems[0].message); return; }
    doc.select({ kind: "layer", scene: si, layer: index });
  }

  root.addEventListener("click", (ev) => {
    const m = doc.model();
    const b = ev.target.closest("button");
    if (!b || !m) { return; }
    if (b.hasAttribute("data-board")) { doc.select({ kind: "board", scene: doc.selection.scene }); return; }
    if (b.dataset.add) { add(fresh(b.dataset.add, m)); return; }
    const si = Math.min(doc.selection.scene, m.scenes.length - 1);
    const li = Number(b.dataset.layer);
    const path = ["scenes", si, "layers"];
    if (b.classList.contains("layer-item")) { doc.select({ kind: "layer", scene: si, layer: li }); return; }
    const act = b.dataset.act;
    if (act === "up") { doc.edit([{ op: "move", path, from: li, to: li + 1 }]).then(() => doc.select({ kind: "layer", scene: si, layer: li + 1 })); }
    if (act === "down") { doc.edit([{ op: "move", path, from: li, to: li - 1 }]).then(() => doc.select({ kind: "layer", scene: si, layer: li - 1 })); }
    if (act === "duplicate") { doc.edit([{ op: "duplicate", path, index: li }]).then(() => doc.select({ kind: "layer", scene: si, layer: li + 1 })); }
    if (act === "delete") { doc.edit([{ op: "delete", path: path.concat([li]) }]).then(() => doc.select({ kind: "scene", scene: si })); }
  });

  doc.on("checked", draw);
  doc.on("layers", draw);
  doc.on("select", draw);
  return { draw, add, placeImage };
}
