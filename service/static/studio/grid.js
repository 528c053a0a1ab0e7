/* The translations grid: every translatable text in every language of the storyboard, editable in place.
   A missing text is flagged (the video would show the default language's); a text that does not fit its
   box when drawn for the chosen customer in that language is flagged with a thumbnail of the frame. */

import { el } from "./dom.js";

export function createGrid(doc, root) {
  const table = root.querySelector(".grid-table");
  const summary = root.querySelector(".grid-summary");
  let data = null, seq = 0, thumbs = [];

  async function load() {
    if (root.hidden) { return; }
    const mine = ++seq;
    summary.textContent = "Checking every language…";
    const res = await doc.json(await doc.post("translationsUrl", doc.ask()));
    if (mine !== seq) { return; }
    if (res.status !== 200) {
      summary.textContent = "Fix the problems in the storyboard to see its translations.";
      table.textContent = "";
      return;
    }
    data = res.body;
    draw();
  }

  function draw() {
    const focused = document.activeElement && table.contains(document.activeElement) ? document.activeElement.getAttribute("aria-label") : null;
    thumbs.forEach((u) => URL.revokeObjectURL(u));
    thumbs = [];
    table.textContent = "";
    let missing = 0, over = 0;
    const head = el("tr", {}, el("th", { scope: "col", text: "Text" }),
      ...data.languages.map((lang) => el("th", { scope: "col" }, lang, lang === data.default ? el("span", { class: "chip chip-muted", text: "default" }) : null)));
    table.appendChild(el("thead", {}, head));
    const body = el("tbody");
    data.keys.forEach((key) => {
      const row = el("tr", {}, el("th", { scope: "row", class: "grid-key" }, el("code", { text: key })));
      data.languages.forEach((lang) => {
        const cell = data.cells[key][lang];
        const isMissing = cell.text === null;
        missing += isMissing ? 1 : 0;
        over += cell.overflow.length ? 1 : 0;
        const input = el("input", { type: "text", "aria-label": `${key} (${lang})`, dir: "auto", spellcheck: "true", lang,
          "data-key": key, "data-lang": lang, class: "grid-input",
          placeholder: isMissing ? (data.cells[key][data.default].text || "") : null, "aria-invalid": cell.overflow.length ? "true" : null });
        input.value = isMissing ? "" : cell.text;
        const flags = el("div", { class: "grid-flags" });
        if (isMissing) { flags.appendChild(el("span", { class: "chip chip-draft", text: "missing" })); }
        cell.overflow.forEach((spot) => flags.appendChild(thumb(spot, lang)));
        const error = el("p", { class: "prop-error", role: "alert", hidden: true });
        row.appendChild(el("td", { class: "grid-cell" + (isMissing ? " is-missing" : "") + (cell.overflow.length ? " is-over" : "") }, input, flags, error));
      });
      body.appendChild(row);
    });
    table.appendChild(body);
    const problems = Object.entries(data.problems || {}).map(([lang, p]) => `${lang}: ${p}`);
    summary.textContent = `${data.keys.length} texts in ${data.languages.length} languages · ` +
      `${missing ? missing + " missing" : "none missing"} · ${over ? over + " too long for their box" : "all fit"}` +
      (data.others && data.others.length ? ` · ${data.others.length} other text(s) too long` : "") +
      (problems.length ? " · " + problems.join("; ") : "");
    if (focused) {
      const again = table.querySelector(`input[aria-label="${CSS.escape(focused)}"]`);
      if (again) { again.focus(); }
    }
  }

  /* A small frame of the moment the text shows, with its box outlined. */
  function thumb(spot, lang) {
    const figure = el("figure", { class: "overflow" });
    const img = el("img", { alt: `The ${spot.scene} scene in ${lang}: the text does not fit`, width: "160", height: "90" });
    const mark = el("span", { class: "overflow-box", "aria-hidden": "true" });
    mark.style.left = (spot.box[0] * 100) + "%";
    mark.style.top = (spot.box[1] * 100) + "%";
    mark.style.width = (spot.box[2] * 100) + "%";
    mark.style.height = (spot.box[3] * 100) + "%";
    const frame = el("span", { class: "overflow-frame" }, img, mark);
    figure.append(frame, el("figcaption", { class: "chip chip-bad", text: `too long · ${spot.scene}` }));
    doc.post("frameUrl", doc.ask({ language: lang, t: spot.t, width: 320 })).then((r) => (r.ok ? r.blob() : null)).then((blob) => {
      if (blob) { const u = URL.createObjectURL(blob); thumbs.push(u); img.src = u; }
    });
    figure.addEventListener("click", () => doc.select({ kind: "layer", scene: spot.scene_index, layer: spot.layer }));
    return figure;
  }

  table.addEventListener("change", async (ev) => {
    const input = ev.target.closest("input[data-key]");
    if (!input || !data) { return; }
    const key = input.dataset.key, lang = input.dataset.lang;
    const cell = data.cells[key][lang];
    const error = input.parentElement.querySelector(".prop-error");
    const value = input.value;
    if (value === (cell.text || "")) { return; }
    const path = ["translations", lang, key];
    let op;
    if (value === "" && lang !== data.default) {
      op = { op: "delete", path };
    } else if (cell.text === null) {
      const present = data.keys.filter((k) => data.cells[k][lang].text !== null);
      const index = present.filter((k) => data.keys.indexOf(k) < data.keys.indexOf(key)).length;
      op = { op: "set", path, value, index };
    } else {
      op = { op: "set", path, value };
    }
    input.setAttribute("aria-busy", "true");
    const problems = await doc.edit([op], path);
    input.removeAttribute("aria-busy");
    error.hidden = !problems.length;
    error.textContent = problems.map((p) => p.message).join(" · ");
    if (problems.length) { input.value = cell.text || ""; }
  });

  table.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && ev.target.matches("input")) { ev.target.dispatchEvent(new Event("change", { bubbles: true })); }
  });

  doc.on("checked", () => { if (!root.hidden) { load(); } });
  return { load };
}
