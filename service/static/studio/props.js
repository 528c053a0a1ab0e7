/* The properties panel: every setting of the selected layer, scene or storyboard as a form. A change is
   sent as an operation; the studio checks the result with `billcast check`'s own code, and a value that
   brings a problem at that field is refused, with the check's message under the field. */

import { el } from "./dom.js";
import { dotted, touches } from "./doc.js";
import { layerName } from "./layers.js";

const KINDS = { text: "Text", image: "Image", rect: "Shape", chart: "Chart", table: "Table", qr: "QR code" };
const T_ONLY = /^\s*\{\{\s*t\.(\w+)\s*\}\}\s*$/;
const CUT = 0.04;  /* an "appear" entrance: a fade of one frame */
let uid = 0;

function get(obj, path) {
  return path.reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

/* A layer's timing read from its `animate` list: when it comes in and how, when it goes and how. */
export function timingOf(layer, sceneDuration) {
  const anims = layer.animate || [];
  const enter = anims.filter((a) => a.type !== "fade_out");
  const exit = anims.find((a) => a.type === "fade_out");
  const fade = enter.find((a) => a.type === "fade_in");
  const slide = enter.find((a) => a.type === "slide_in");
  const start = enter.length ? Math.min(...enter.map((a) => a.delay || 0)) : 0;
  const exitStart = exit ? (exit.delay !== null && exit.delay !== undefined ? exit.delay : Math.max(sceneDuration - exit.duration, 0)) : null;
  const kind = !enter.length ? "none" : fade && slide ? "fade+slide" : slide ? "slide" : fade.duration <= CUT + 1e-9 ? "cut" : "fade";
  return {
    start, end: exit ? Math.min(exitStart + exit.duration, sceneDuration) : sceneDuration,
    enter: kind, enterLength: enter.length ? Math.max(...enter.map((a) => a.duration)) : 0.5,
    edge: slide ? slide.edge : "bottom", distance: slide ? slide.distance : null,
    exit: !exit ? "none" : exit.duration <= CUT + 1e-9 ? "cut" : "fade", exitLength: exit ? exit.duration : 0.5,
  };
}

/* The `animate` list that says `timing` (what it cannot say, like a slide's distance, kept from `old`). */
export function animateFor(timing, sceneDuration) {
  const round = (v) => Math.round(v * 100) / 100;
  const out = [];
  const start = round(Math.max(0, timing.start));
  let enter = timing.enter;
  if (enter === "none" && start > 0) { enter = "cut"; }
  const length = enter === "cut" ? CUT : round(Math.max(0.05, timing.enterLength || 0.5));
  if (enter === "fade" || enter === "fade+slide" || enter === "cut") {
    out.push(start ? { type: "fade_in", duration: length, delay: start } : { type: "fade_in", duration: length });
  }
  if (enter === "slide" || enter === "fade+slide") {
    const slide = { type: "slide_in", edge: timing.edge || "bottom" };
    if (timing.distance) { slide.distance = timing.distance; }
    slide.duration = length;
    if (start) { slide.delay = start; }
    out.push(slide);
  }
  const end = round(Math.min(timing.end, sceneDuration));
  let exit = timing.exit;
  if (exit === "none" && end < sceneDuration - 0.005) { exit = "cut"; }
  if (exit !== "none") {
    const len = exit === "cut" ? CUT : round(Math.max(0.05, Math.min(timing.exitLength || 0.5, end - start)));
    out.push({ type: "fade_out", duration: len, delay: round(Math.max(end - len, start)) });
  }
  return out;
}

export function createProps(doc, panel, hooks) {
  const body = panel.querySelector(".props-body");
  const title = panel.querySelector(".props-title");
  let shownKey = null, syncs = [];

  function model() { return doc.model(); }
  function value(path) { return get(model(), path); }
  function language() { return (doc.layers && doc.layers.language) || (model() && model().default_language) || "en"; }

  /* --- fields -------------------------------------------------------------------------------------- */

  function row(text, control, path, hint) {
    const id = control.id || (control.id = "prop-" + (++uid));
    const error = el("p", { class: "prop-error", role: "alert", hidden: true });
    const wrap = el("div", { class: "prop", "data-field": path ? dotted(path) : null },
      el("label", { for: id, text }), control, hint ? el("p", { class: "prop-hint", text: hint }) : null, error);
    wrap.showProblems = (problems) => {
      error.hidden = !problems.length;
      error.textContent = problems.map((p) => p.message).join(" · ");
      wrap.classList.toggle("has-error", problems.length > 0);
    };
    return wrap;
  }

  /* Send one change; show what the check refuses under the field, and put the shown value back. */
  async function change(wrap, path, newValue, ops) {
    wrap.showProblems([]);
    wrap.classList.add("busy");
    const problems = await doc.edit(ops || [{ op: "set", path, value: newValue }], path);
    wrap.classList.remove("busy");
    wrap.classList.toggle("refused", problems.length > 0);
    if (problems.length) {
      wrap.showProblems(problems);
      syncs.forEach((fn) => fn(true));
    }
    return problems;
  }

  function input(path, opts) {
    opts = opts || {};
    const control = el(opts.multiline ? "textarea" : "input", {
      type: opts.multiline ? null : (opts.type || "text"), rows: opts.multiline ? String(opts.rows || 3) : null,
      step: opts.step, min: opts.min, max: opts.max, spellcheck: opts.code ? "false" : null,
      placeholder: opts.placeholder || null, class: opts.code ? "code-input" : null, inputmode: opts.type === "number" ? "decimal" : null,
    });
    const wrap = row(opts.label, control, opts.path || path, opts.hint);
    const read = () => (opts.read ? opts.read() : value(path));
    const shown = () => { const v = read(); return v === null || v === undefined ? "" : String(opts.format ? opts.format(v) : v); };
    control.value = shown();
    syncs.push((force) => { if (force || document.activeElement !== control) { control.value = shown(); } });
    const send = () => {
      let v = control.value;
      if (opts.type === "number") {
        if (v.trim() === "") { if (!opts.optional) { control.value = shown(); return; } v = null; } else {
          v = Number(v);
          if (!Number.isFinite(v)) { wrap.showProblems([{ message: "a number, please" }]); return; }
        }
      } else if (opts.optional && v === "") { v = null; }
      if (opts.parse) { v = opts.parse(v); }
      if (v === read() || (v === null && (read() === null || read() === undefined))) { return; }
      change(wrap, opts.path || path, v, opts.ops ? opts.ops(v) : null);
    };
    control.addEventListener("change", send);
    if (opts.multiline) {
      let timer = null;
      control.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(send, 700); });
    }
    wrap.control = control;
    return wrap;
  }

  function number(path, label, opts) { return input(path, Object.assign({ type: "number", label }, opts || {})); }

  function choice(path, label, options, opts) {
    opts = opts || {};
    const control = el("select", {});
    options.forEach(([v, text]) => control.appendChild(el("option", { value: v, text })));
    const wrap = row(label, control, path, opts.hint);
    const read = () => { const v = opts.read ? opts.read() : value(path); return v === null || v === undefined ? "" : String(v); };
    control.value = read();
    syncs.push(() => { control.value = read(); });
    control.addEventListener("change", () => {
      const v = opts.parse ? opts.parse(control.value) : control.value;
      change(wrap, path, v === "" ? null : v, opts.ops ? opts.ops(v) : null);
    });
    return wrap;
  }

  /* A colour: the storyboard's named palette first, then any #RRGGBB(AA). */
  function color(path, label, opts) {
    opts = opts || {};
    const palette = opts.own ? [] : Object.entries(model().colors || {});  /* a palette colour is a colour, not a name */
    const text = el("input", { type: "text", spellcheck: "false", class: "code-input color-text", placeholder: opts.optional ? "none" : "#RRGGBB or a name" });
    const picker = el("input", { type: "color", "aria-label": label + " (picker)", class: "color-picker" });
    const swatches = el("div", { class: "swatches", role: "group", "aria-label": label + " from the palette", hidden: !palette.length });
    palette.forEach(([name, hex]) => {
      const b = el("button", { type: "button", class: "swatch", title: `${name} ${hex}`, "aria-label": name, "data-color": name });
      b.style.setProperty("--swatch", hex);
      swatches.appendChild(b);
    });
    const control = el("div", { class: "color-control" }, el("span", { class: "color-now", "aria-hidden": "true" }), text, picker);
    text.id = "prop-" + (++uid);
    const wrap = row(label, control, path);
    wrap.insertBefore(swatches, wrap.querySelector(".prop-error"));
    const sync = () => {
      const v = value(path);
      if (document.activeElement !== text) { text.value = v || ""; }
      const css = (model().colors || {})[v] || v || "";
      const valid = /^#([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(css);
      control.querySelector(".color-now").style.setProperty("--swatch", valid ? css : "transparent");
      if (valid && css.length >= 7) { picker.value = css.slice(0, 7); }
      swatches.querySelectorAll(".swatch").forEach((s) => s.setAttribute("aria-pressed", String(s.dataset.color === v)));
    };
    sync();
    syncs.push(sync);
    const send = (v) => { if (v !== value(path)) { change(wrap, path, v === "" && opts.optional ? null : v); } };
    text.addEventListener("change", () => send(text.value.trim()));
    picker.addEventListener("change", () => send(picker.value.toUpperCase()));
    swatches.addEventListener("click", (e) => { const b = e.target.closest(".swatch"); if (b) { send(b.dataset.color); } });
    return wrap;
  }

  /* A text that can show merge fields: a text box, and a picker of the customer's fields with their values. */
  function template(path, label, opts) {
    opts = opts || {};
    const wrap = input(path, Object.assign({ multiline: true, label, rows: opts.rows || 2 }, opts));
    const button = el("button", { type: "button", class: "btn btn-small btn-quiet field-button", "aria-expanded": "false" }, "Insert field");
    const picker = el("div", { class: "field-picker", hidden: true });
    wrap.insertBefore(el("div", { class: "prop-tools" }, button), wrap.querySelector(".prop-error"));
    wrap.insertBefore(picker, wrap.querySelector(".prop-error"));
    button.addEventListener("click", () => {
      const open = picker.hidden;
      picker.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      if (open) { fillPicker(picker, wrap.control); }
    });
    return wrap;
  }

  function fillPicker(picker, target) {
    picker.textContent = "";
    const search = el("input", { type: "search", placeholder: "Find a field…", "aria-label": "Find a field" });
    const list = el("ul", { class: "field-list" });
    picker.append(search, list);
    const filters = doc.fields.filters || [];
    const show = () => {
      list.textContent = "";
      const q = search.value.trim().toLowerCase();
      (doc.fields.fields || []).filter((f) => !q || f.path.toLowerCase().includes(q) || f.value.toLowerCase().includes(q))
        .slice(0, 80).forEach((f) => {
          const uses = filters.filter((x) => x.for === f.kind || (x.for === "any" && f.kind !== "translation"));
          const item = el("li", {},
            el("button", { type: "button", class: "field", "data-insert": `{{ ${f.path} }}` },
              el("code", { text: f.path }), el("span", { class: "field-value", text: f.value })),
            uses.length ? el("span", { class: "filters" }, ...uses.map((x) => el("button", {
              type: "button", class: "filter", title: x.about, "data-insert": `{{ ${f.path} | ${x.use} }}` }, x.use))) : null);
          list.appendChild(item);
        });
      if (!list.children.length) { list.appendChild(el("li", { class: "empty", text: "No field matches." })); }
    };
    search.addEventListener("input", show);
    list.addEventListener("click", (e) => {
      const b = e.target.closest("[data-insert]");
      if (!b) { return; }
      const at = target.selectionStart ?? target.value.length;
      target.setRangeText(b.dataset.insert, at, target.selectionEnd ?? at, "end");
      target.focus();
      target.dispatchEvent(new Event("change"));
    });
    show();
    search.focus();
  }

  function box(base) {
    const parts = ["X", "Y", "Width", "Height"].map((name, i) => number(base.concat(["box", i]), name, { step: "1" }));
    return el("div", { class: "prop-grid" }, ...parts);
  }

  /* When the layer shows, and how it comes in and goes. */
  function timing(base, sceneDuration) {
    const layerPath = base;
    const now = () => timingOf(value(layerPath), sceneDuration);
    const path = base.concat(["animate"]);
    const set = (changes) => {
      const t = Object.assign(now(), changes);
      return [{ op: "set", path, value: animateFor(t, sceneDuration) }];
    };
    const field = (label, key, opts) => number(path, label, Object.assign({ read: () => now()[key], step: "0.1", min: "0",
      ops: (v) => set({ [key]: v }), format: (v) => Math.round(v * 100) / 100 }, opts || {}));
    const slides = choice(path, "Slides from", [["start", "Start side"], ["end", "End side"], ["left", "Left"], ["right", "Right"],
      ["top", "Top"], ["bottom", "Bottom"]], { read: () => now().edge, ops: (v) => set({ edge: v }) });
    const sliding = () => { slides.querySelector("select").disabled = !now().enter.includes("slide"); };
    sliding();
    syncs.push(sliding);
    return el("div", { class: "prop-group" },
      el("div", { class: "prop-grid" }, field("Starts at (s)", "start"),
        number(path, "Shows for (s)", { step: "0.1", min: "0.1", read: () => now().end - now().start,
          format: (v) => Math.round(v * 100) / 100, ops: (v) => set({ end: now().start + v }) })),
      el("div", { class: "prop-grid" },
        choice(path, "Comes in", [["none", "Is there"], ["cut", "Appears"], ["fade", "Fades in"], ["slide", "Slides in"], ["fade+slide", "Fades and slides in"]],
          { read: () => now().enter, ops: (v) => set({ enter: v }) }),
        field("Over (s)", "enterLength", { min: "0.05" })),
      el("div", { class: "prop-grid" },
        slides,
        choice(path, "Goes", [["none", "Stays to the end"], ["cut", "Disappears"], ["fade", "Fades out"]],
          { read: () => now().exit, ops: (v) => set({ exit: v }) })));
  }

  function assetChoice(path, label, kind, optional) {
    const assets = (hooks.assets() || []).filter((a) => a.kind === kind).map((a) => [a.path, a.path]);
    const current = value(path);
    if (current && !assets.some(([p]) => p === current)) { assets.unshift([current, current]); }
    if (optional) { assets.unshift(["", "None"]); }
    return choice(path, label, assets, { hint: kind === "image" ? "Upload more in Assets" : null });
  }

  /* --- what each selection shows ---------------------------------------------------------------------------- */

  function textField(base, layer) {
    const m = T_ONLY.exec(layer.text || "");
    if (!m) { return template(base.concat(["text"]), "Text", { rows: 3 }); }
    const key = m[1], lang = language();
    const texts = model().translations || {};
    const inLang = texts[lang] && Object.prototype.hasOwnProperty.call(texts[lang], key);
    const defaults = Object.keys(texts[model().default_language] || {});
    const index = Object.keys(texts[lang] || {}).filter((k) => defaults.indexOf(k) < defaults.indexOf(key)).length;
    const path = ["translations", lang, key];
    const wrap = template(path, `Text (${lang})`, {
      rows: 3, read: () => get(model(), ["translations", lang, key]) ?? get(model(), ["translations", model().default_language, key]),
      ops: (v) => [inLang ? { op: "set", path, value: v } : { op: "set", path, value: v, index }],
      hint: `The translation “${key}” in ${lang}${inLang ? "" : " (missing: the video shows the " + model().default_language + " text)"}; other languages are under Translations.`,
    });
    return wrap;
  }

  function layerForm(sel) {
    const base = ["scenes", sel.scene, "layers", sel.layer];
    const layer = value(base);
    const sceneDuration = value(["scenes", sel.scene, "duration"]);
    const out = [];
    const kindBox = el("section", { class: "prop-section", "aria-label": KINDS[layer.kind] || layer.kind });
    if (layer.kind === "text") {
      kindBox.append(textField(base, layer),
        el("div", { class: "prop-grid" },
          choice(base.concat(["font", "weight"]), "Font", [["regular", "Noto Sans"], ["bold", "Noto Sans Bold"]]),
          number(base.concat(["font", "size"]), "Size", { step: "1", min: "1" })),
        color(base.concat(["color"]), "Colour"),
        el("div", { class: "prop-grid" },
          choice(base.concat(["align"]), "Alignment", [["start", "Start"], ["center", "Centre"], ["end", "End"], ["left", "Left"], ["right", "Right"]]),
          choice(base.concat(["valign"]), "Vertical", [["top", "Top"], ["middle", "Middle"], ["bottom", "Bottom"]])),
        el("div", { class: "prop-grid" },
          number(base.concat(["max_lines"]), "Lines at most", { step: "1", min: "1" }),
          number(base.concat(["font", "min_size"]), "Shrinks to", { step: "1", min: "1", optional: true, placeholder: "no smaller" })));
    } else if (layer.kind === "image") {
      kindBox.append(assetChoice(base.concat(["src"]), "Image", "image"),
        el("div", { class: "prop-grid" },
          choice(base.concat(["fit"]), "Fit", [["contain", "Contain"], ["cover", "Cover"], ["stretch", "Stretch"]]),
          choice(base.concat(["align"]), "Alignment", [["start", "Start"], ["center", "Centre"], ["end", "End"]])));
    } else if (layer.kind === "rect") {
      kindBox.append(color(base.concat(["fill"]), "Fill"),
        el("div", { class: "prop-grid" }, number(base.concat(["radius"]), "Corner radius", { step: "1", min: "0" }),
          number(base.concat(["stroke_width"]), "Outline width", { step: "1", min: "0" })),
        color(base.concat(["stroke"]), "Outline colour", { optional: true }));
    } else if (layer.kind === "chart") {
      kindBox.append(input(base.concat(["values"]), { label: "Values (expression)", code: true }),
        template(base.concat(["unit"]), "Unit"), number(base.concat(["months"]), "Months shown", { step: "1", min: "2" }),
        color(base.concat(["current_color"]), "This month"), color(base.concat(["last_year_color"]), "Last year"),
        color(base.concat(["bar_color"]), "Other bars"), color(base.concat(["text_color"]), "Labels"),
        template(base.concat(["legend_current"]), "Legend: this month"), template(base.concat(["legend_last_year"]), "Legend: last year"));
    } else if (layer.kind === "table") {
      kindBox.append(input(base.concat(["rows"]), { label: "Rows (expression)", code: true }),
        template(base.concat(["label"]), "Label of a row"), template(base.concat(["value"]), "Value of a row"),
        el("div", { class: "prop-grid" }, number(base.concat(["font", "size"]), "Size", { step: "1", min: "1" }),
          number(base.concat(["max_rows"]), "Rows at most", { step: "1", min: "1" })),
        color(base.concat(["color"]), "Colour"), color(base.concat(["value_color"]), "Value colour", { optional: true }),
        color(base.concat(["rule_color"]), "Lines between rows", { optional: true }));
    } else if (layer.kind === "qr") {
      kindBox.append(choice(base.concat(["link"]), "Opens", (doc.fields.links || ["page", "pay", "plan"]).map((l) => [l, l === "page" ? "The customer's page" : l === "pay" ? "Pay in full" : l === "plan" ? "Payment plan" : l])),
        color(base.concat(["color"]), "Colour"), color(base.concat(["background"]), "Background"));
    }
    out.push(kindBox);
    out.push(el("section", { class: "prop-section", "aria-label": "Position and size" }, el("h3", { text: "Position and size" }), box(base),
      number(base.concat(["opacity"]), "Opacity (0–1)", { step: "0.05", min: "0", max: "1" })));
    out.push(el("section", { class: "prop-section", "aria-label": "Timing" }, el("h3", { text: "Timing" }), timing(base, sceneDuration)));
    out.push(el("section", { class: "prop-section", "aria-label": "Layer" }, el("h3", { text: "Layer" }),
      input(base.concat(["id"]), { label: "Name", optional: true, placeholder: "layer" + sel.layer }),
      input(base.concat(["when"]), { label: "Show only when (expression)", optional: true, code: true, placeholder: "always, e.g. bill.total > 0" })));
    return out;
  }

  function sceneForm(sel) {
    const base = ["scenes", sel.scene];
    const bg = base.concat(["background"]);
    const kind = () => { const b = value(bg) || {}; return b.image ? "image" : b.gradient ? "gradient" : "color"; };
    const palette = Object.keys(model().colors || {});
    const first = palette[0] || "#0E4D64";
    const bgOps = (v) => [{ op: "set", path: bg, value: v === "image" ? { image: (hooks.assets().find((a) => a.kind === "image") || { path: "images/pattern.png" }).path }
      : v === "gradient" ? { gradient: [first, palette[1] || "#08303F"], angle: 90 } : { color: first } }];
    const out = [el("section", { class: "prop-section", "aria-label": "Scene" },
      el("div", { class: "prop-grid" }, input(base.concat(["id"]), { label: "Scene name" }),
        number(base.concat(["duration"]), "Length (s)", { step: "0.1", min: "0.1" })),
      template(base.concat(["narration"]), "Narration (captions)", { optional: true }))];
    const bgBox = el("section", { class: "prop-section", "aria-label": "Background" }, el("h3", { text: "Background" }),
      choice(bg, "Kind", [["color", "Colour"], ["gradient", "Gradient"], ["image", "Image"]], { read: kind, ops: bgOps }));
    if (kind() === "color") { bgBox.append(color(bg.concat(["color"]), "Colour")); }
    if (kind() === "gradient") {
      bgBox.append(color(bg.concat(["gradient", 0]), "From"), color(bg.concat(["gradient", 1]), "To"),
        number(bg.concat(["angle"]), "Angle (°)", { step: "15" }));
    }
    if (kind() === "image") { bgBox.append(assetChoice(bg.concat(["image"]), "Image", "image")); }
    out.push(bgBox);
    const cta = value(base.concat(["cta"]));
    const ctaBox = el("section", { class: "prop-section", "aria-label": "Call to action" }, el("h3", { text: "Call to action" }));
    if (cta) {
      ctaBox.append(template(base.concat(["cta", "label"]), "Button label"),
        choice(base.concat(["cta", "action"]), "Does", [["pay", "Pay in full"], ["plan", "Payment plan"], ["link", "Opens a link"]]),
        el("div", { class: "prop-grid" }, number(base.concat(["cta", "start"]), "From (s)", { step: "0.1", min: "0" }),
          number(base.concat(["cta", "end"]), "To (s)", { step: "0.1", min: "0" })),
        el("button", { type: "button", class: "btn btn-small btn-quiet", "data-action": "remove-cta" }, "Remove the call to action"));
    } else {
      ctaBox.append(el("button", { type: "button", class: "btn btn-small", "data-action": "add-cta" }, "Add a pay button"));
    }
    ctaBox.addEventListener("click", (e) => {
      const b = e.target.closest("[data-action]");
      if (!b) { return; }
      const dur = value(base.concat(["duration"]));
      doc.edit(b.dataset.action === "add-cta"
        ? [{ op: "set", path: base.concat(["cta"]), value: { label: "Pay now", action: "pay", start: 0.5, end: dur } }]
        : [{ op: "delete", path: base.concat(["cta"]) }]);
    });
    out.push(ctaBox);
    return out;
  }

  function boardForm() {
    const colors = el("section", { class: "prop-section", "aria-label": "Palette" }, el("h3", { text: "Palette" }),
      el("p", { class: "prop-hint", text: "Named colours every colour setting offers first." }));
    Object.keys(model().colors || {}).forEach((name) => colors.append(color(["colors", name], name, { own: true })));
    const add = el("form", { class: "palette-add" },
      el("input", { type: "text", "aria-label": "New colour's name", placeholder: "name", pattern: "[A-Za-z_][A-Za-z0-9_]*", required: true }),
      el("input", { type: "color", "aria-label": "New colour", value: "#0E4D64" }),
      el("button", { type: "submit", class: "btn btn-small" }, "Add colour"));
    add.addEventListener("submit", (e) => {
      e.preventDefault();
      const [name, hex] = add.querySelectorAll("input");
      doc.edit([{ op: "set", path: ["colors", name.value], value: hex.value.toUpperCase() }], ["colors", name.value]);
    });
    colors.append(add);
    const audio = model().audio;
    return [
      el("section", { class: "prop-section", "aria-label": "Storyboard" },
        input(["description"], { label: "Description", multiline: true, rows: 2 }),
        el("div", { class: "prop-grid" },
          choice(["purpose"], "For", [["bill", "Bills"], ["reminder", "Reminders"], ["collection", "Collection"]]),
          choice(["default_language"], "Default language", Object.keys(model().translations || {}).map((l) => [l, l]))),
        el("div", { class: "prop-grid" }, number(["poster_time"], "Poster at (s)", { step: "0.1", min: "0" }),
          number(["fps"], "Frames per second", { step: "1", min: "1", max: "60" }))),
      colors,
      el("section", { class: "prop-section", "aria-label": "Sound" }, el("h3", { text: "Sound" }),
        audio ? assetChoice(["audio", "bed"], "Audio bed", "audio") : el("p", { class: "prop-hint", text: "No audio bed: pick one in Assets." }),
        audio ? number(["audio", "volume"], "Volume (0–1)", { step: "0.05", min: "0", max: "1" }) : null),
    ];
  }

  /* --- showing the selection ------------------------------------------------------------------------------- */

  /* What decides the form's fields (not their values): when it changes the form is built again, otherwise
     only its values are brought up to date, so a field being typed in keeps its focus. */
  function formKey(m, sel, layer) {
    const scene = m.scenes[sel.scene];
    const shape = sel.kind === "layer" ? [layer.kind, T_ONLY.test(layer.text || ""), language()]
      : sel.kind === "scene" ? [Object.keys(scene.background || {}).filter((k) => scene.background[k] !== null), !!scene.cta]
        : [Object.keys(m.colors || {}), !!m.audio];
    return JSON.stringify([sel.kind, sel.scene, sel.layer, (hooks.assets() || []).length, shape]);
  }

  function render() {
    const m = model();
    const sel = doc.selection;
    if (!m) {
      title.textContent = "Properties";
      body.textContent = "";
      body.appendChild(el("p", { class: "note", text: "Fix the problems in the code view to edit visually." }));
      shownKey = null;
      return;
    }
    const layer = sel.kind === "layer" ? m.scenes[sel.scene].layers[sel.layer] : null;
    const key = formKey(m, sel, layer);
    if (key === shownKey) { syncs.forEach((fn) => fn(false)); return; }
    const focused = document.activeElement && body.contains(document.activeElement) ? document.activeElement.id : null;
    shownKey = key;
    syncs = [];
    body.textContent = "";
    let parts;
    if (sel.kind === "layer") {
      title.textContent = `${KINDS[layer.kind] || layer.kind} · ${layerName(layer, sel.layer)}`;
      parts = layerForm(sel);
    } else if (sel.kind === "scene") {
      title.textContent = `Scene · ${m.scenes[sel.scene].id}`;
      parts = sceneForm(sel);
    } else {
      title.textContent = `Storyboard · ${m.name}`;
      parts = boardForm();
    }
    parts.forEach((p) => body.appendChild(p));
    if (focused && document.getElementById(focused)) { document.getElementById(focused).focus(); }
  }

  /* Problems the check found at a shown field, under it (also those from typing in the code view). */
  function showProblems() {
    const errors = (doc.result && doc.result.errors) || [];
    body.querySelectorAll(".prop[data-field]").forEach((wrap) => {
      const field = wrap.getAttribute("data-field");
      const path = field.split(/\.|\[|\]/).filter(Boolean).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      const found = errors.filter((e) => touches(e.field, path) && e.field.length >= field.length);
      if (!wrap.classList.contains("refused") && (found.length || wrap.classList.contains("has-error"))) { wrap.showProblems(found); }
    });
  }

  doc.on("select", () => { render(); showProblems(); });
  doc.on("checked", () => { render(); showProblems(); });
  return { render };
}
