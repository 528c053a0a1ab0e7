/* The asset library: the images and audio beds storyboards can use. Upload (the studio checks each file by
   its content), place an image in the current scene, use an audio bed, delete what no storyboard uses. */

import { el } from "./dom.js";

function size(bytes) { return bytes > 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1024)) + " KB"; }

export function createLibrary(doc, root, hooks) {
  const grid = root.querySelector(".asset-grid");
  const status = root.querySelector(".asset-status");
  const file = root.querySelector("input[type=file]");
  const drop = root.querySelector(".asset-drop");
  let assets = [], writable = false;

  async function load() {
    const r = await fetch(root.dataset.url, { credentials: "same-origin" });
    if (!r.ok) { return; }
    const body = await r.json();
    assets = body.assets;
    writable = body.writable;
    draw();
    doc.emit("assets", assets);
  }

  function draw() {
    grid.textContent = "";
    root.classList.toggle("read-only", !writable);
    assets.forEach((a) => {
      const name = a.path.split("/").pop();
      const preview = a.kind === "image"
        ? el("img", { src: a.url, alt: "", loading: "lazy" })
        : el("span", { class: "asset-audio", "aria-hidden": "true", text: "♫" });
      const facts = a.kind === "image" ? `${a.width}×${a.height} · ${size(a.bytes)}` : `${a.duration ? a.duration.toFixed(1) + " s · " : ""}${size(a.bytes)}`;
      const used = a.users.length ? `Used by ${a.users.join(", ")}` : "Not used";
      grid.appendChild(el("li", { class: "asset", "data-path": a.path },
        el("div", { class: "asset-thumb" }, preview),
        el("div", { class: "asset-info" }, el("span", { class: "asset-name", text: name, title: a.path }),
          el("span", { class: "asset-facts", text: facts }), el("span", { class: "asset-used", text: used })),
        el("div", { class: "asset-actions" },
          a.kind === "image"
            ? el("button", { type: "button", class: "btn btn-small", "data-act": "place", "aria-label": `Place ${name} in the scene` }, "Place")
            : el("button", { type: "button", class: "btn btn-small", "data-act": "bed", "aria-label": `Use ${name} as the audio bed` }, "Use"),
          writable ? el("button", { type: "button", class: "icon-btn icon-danger", "data-act": "delete", "aria-label": `Delete ${name}`, title: "Delete" }, "✕") : null)));
    });
  }

  function say(text, bad) {
    status.textContent = text;
    status.classList.toggle("is-bad", !!bad);
  }

  async function upload(files) {
    for (const f of files) {
      const form = new FormData();
      form.append("file", f, f.name);
      say(`Uploading ${f.name}…`);
      let res;
      try {
        res = await doc.json(await doc.post(root.dataset.url, null, { body: form, headers: { "X-CSRF-Token": doc.csrf } }));
      } catch (e) {
        say(`${f.name} was not uploaded: the studio could not be reached.`, true);
        continue;
      }
      if (res.status === 201) {
        say(`${f.name} added as ${res.body.asset.path}.`);
        await load();
      } else {
        say(`${f.name} was refused: ${res.body.error || "the studio said no (" + res.status + ")"}`, true);
      }
    }
    file.value = "";
  }

  file.addEventListener("change", () => upload(Array.from(file.files)));
  ["dragenter", "dragover"].forEach((n) => drop.addEventListener(n, (e) => { e.preventDefault(); drop.classList.add("is-over"); }));
  ["dragleave", "drop"].forEach((n) => drop.addEventListener(n, () => drop.classList.remove("is-over")));
  drop.addEventListener("drop", (e) => { e.preventDefault(); upload(Array.from(e.dataTransfer.files)); });

  grid.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (!b) { return; }
    const path = b.closest("[data-path]").dataset.path;
    const asset = assets.find((a) => a.path === path);
    const m = doc.model();
    if (b.dataset.act === "place" && m) {
      hooks.place(asset);
    } else if (b.dataset.act === "bed" && m) {
      const problems = await doc.edit([{ op: "set", path: ["audio"], value: m.audio ? Object.assign({}, { bed: path, volume: m.audio.volume, fade_out: m.audio.fade_out }) : { bed: path } }], ["audio"]);
      say(problems.length ? problems[0].message : `The audio bed is now ${path}.`, problems.length > 0);
    } else if (b.dataset.act === "delete") {
      if (!window.confirm(`Delete ${path}?`)) { return; }
      const res = await doc.json(await doc.post(root.dataset.deleteUrl, { path }));
      if (res.status === 200) { say(`${path} deleted.`); load(); }
      else { say(res.body.error + (res.body.users && res.body.users.length ? ` (${res.body.users.map((u) => `${u.storyboard}, line ${u.line}`).join("; ")})` : ""), true); }
    }
  });

  return { load, assets: () => assets };
}
