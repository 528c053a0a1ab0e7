/* Billcast Studio: the storyboard editor's page. Wires the document (doc.js) to its views: the preview and
   its selection (stage.js), the properties (props.js), the timeline, the layers and assets, the translations
   grid, the code view (CodeMirror, bundled in code.js), and the drawer of problems, history and video.
   No framework, nothing inline (see the page's CSP): the YAML is only ever text sent to the studio. */

import { createDoc } from "./doc.js";
import { createGrid } from "./grid.js";
import { createLayers } from "./layers.js";
import { createLibrary } from "./library.js";
import { createHistory, createProblems, createVideo } from "./panels.js";
import { createProps } from "./props.js";
import { createStage } from "./stage.js";
import { createTimeline } from "./timeline.js";

const root = document.getElementById("studio");
const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
const doc = createDoc(root, csrf);
doc.historyUrl = root.dataset.historyUrl;
doc.customer = () => $("customer").value;
doc.language = () => $("language").value;
doc.record = () => $("record").value;

/* --- status, notices ---------------------------------------------------------------------------------- */

function setStatus(kind, text) {
  $("status").setAttribute("data-state", kind);
  $("status-text").textContent = text;
}
function clock(iso) { return (iso ? new Date(iso) : new Date()).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }); }

let toastTimer = null;
function notice(text) {
  const toast = $("toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, 6000);
}
doc.on("notice", notice);
doc.on("refused", (r) => notice(r.problems.map((p) => p.message).join(" · ")));
doc.on("text", () => { if (doc.dirty()) { setStatus("dirty", "Unsaved changes"); } });
doc.on("history", (h) => { $("undo").disabled = !h.undo; $("redo").disabled = !h.redo; });
window.addEventListener("beforeunload", (e) => { if (doc.dirty()) { e.preventDefault(); e.returnValue = ""; } });

/* --- the views: design, translations, code ------------------------------------------------------------------ */

let code = null;
const grid = createGrid(doc, $("view-grid"));

function tabs(list, onPick) {
  const buttons = Array.from(list.querySelectorAll("[role=tab]"));
  const pick = (b) => {
    buttons.forEach((x) => { const on = x === b; x.setAttribute("aria-selected", String(on)); x.tabIndex = on ? 0 : -1; });
    onPick(b);
  };
  list.addEventListener("click", (e) => { const b = e.target.closest("[role=tab]"); if (b) { pick(b); } });
  list.addEventListener("keydown", (e) => {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0 || (e.key !== "ArrowRight" && e.key !== "ArrowLeft")) { return; }
    const next = buttons[(i + (e.key === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length];
    next.focus();
    pick(next);
  });
  return pick;
}

function showView(view) {
  $("workspace").dataset.view = view;
  $("view-grid").hidden = view !== "grid";
  $("view-code").hidden = view !== "code";
  $("view-design").hidden = view === "grid";
  if (view === "grid") { grid.load(); }
  if (view === "code" && code) { code.view.requestMeasure(); }
}
const pickView = tabs(document.querySelector(".doc-tools .views"), (b) => showView(b.dataset.view));
const pickSide = tabs(document.querySelector(".side-tabs"), (b) => {
  $("side-layers").hidden = b.id !== "side-layers-tab";
  $("side-assets").hidden = b.id !== "side-assets-tab";
});
void pickSide;

function goToLine(line) {
  pickView($("tab-code"));
  if (code) { code.goToLine(line); }
}

/* --- the drawer: problems, history, preview video -------------------------------------------------------------- */

const pickPanel = tabs(document.querySelector(".drawer-head .views"), (b) => {
  document.querySelectorAll(".drawer-panel").forEach((p) => { p.hidden = p.dataset.panel !== b.dataset.panel; });
});
document.querySelectorAll("[data-drawer]").forEach((b) => b.addEventListener("click", () => {
  $("drawer").hidden = false;
  pickPanel(document.querySelector(`.drawer-head [data-panel="${b.dataset.drawer}"]`));
}));
$("drawer-close").addEventListener("click", () => { $("drawer").hidden = true; });
createProblems(doc, goToLine);
createHistory(doc);
createVideo(doc);

/* --- the panels of the design view ------------------------------------------------------------------------------ */

const library = createLibrary(doc, $("side-assets"), { place: (asset) => layers.add(layers.placeImage(asset, doc.model())) });
const layers = createLayers(doc, $("side-layers"), { assets: () => library.assets() });
createProps(doc, $("props"), { assets: () => library.assets() });
createStage(doc, { stage: $("stage"), img: $("frame-img"), note: $("frame-note"), overlay: $("overlay") });
createTimeline(doc, $("timeline"));
doc.on("assets", () => doc.emit("select", doc.selection));

/* --- whom the preview is for ---------------------------------------------------------------------------------------- */

function customerChanged() {
  $("paste").hidden = $("customer").value !== "pasted";
  doc.check();
  doc.loadFields();
}
$("customer").addEventListener("change", () => { customerChanged(); if ($("customer").value === "pasted") { $("record").focus(); } });
$("language").addEventListener("change", customerChanged);
let recordTimer = null;
$("record").addEventListener("input", () => { clearTimeout(recordTimer); recordTimer = setTimeout(customerChanged, 600); });
doc.on("checked", (body) => {
  const list = $("record-errors");
  list.textContent = "";
  (body.record_errors || []).forEach((p) => {
    const li = document.createElement("li");
    li.className = "record-error";
    li.textContent = (p.line ? "Line " + p.line + ": " : "") + (p.field ? p.field + ": " : "") + p.message;
    list.appendChild(li);
  });
  if (code) { code.setProblems(body.errors || []); }
});

/* --- saving, undo, redo ---------------------------------------------------------------------------------------------- */

function save(force) { $("save").disabled = true; return doc.save(force); }
doc.on("saving", () => setStatus("busy", "Saving…"));
doc.on("saved", (res) => {
  $("save").disabled = false;
  $("conflict-banner").hidden = res.status !== 409;
  if (res.status === 200) {
    $("draft-banner").hidden = true;
    setStatus("saved", (res.body.saved.changed ? "Saved " : "No changes · saved ") + clock(res.body.saved.saved_at));
    doc.emit("checked", Object.assign({}, doc.result, { errors: res.body.errors || [] }));
  } else if (res.status === 422 && res.body.draft) {
    $("draft-banner").hidden = false;
    const n = (res.body.errors || []).length;
    setStatus("draft", `Draft – not live (${n} problem${n === 1 ? "" : "s"})`);
    doc.emit("checked", res.body);
  } else if (res.status === 409) {
    setStatus("bad", "Not saved: changed by someone else");
  } else {
    setStatus("bad", "Not saved: " + (res.body.error || "fix the customer record first"));
  }
});
doc.on("discarded", () => { $("draft-banner").hidden = true; setStatus("saved", "Draft discarded"); });
$("save").addEventListener("click", () => save(false));
$("force-save").addEventListener("click", () => save(true));
$("discard").addEventListener("click", () => { if (window.confirm("Discard the draft and go back to the live storyboard?")) { doc.discardDraft(); } });
$("undo").addEventListener("click", () => doc.undo());
$("redo").addEventListener("click", () => doc.redo());
$("check").addEventListener("click", () => { $("doc-menu").open = false; doc.check(); });

document.addEventListener("keydown", (e) => {
  if (!(e.ctrlKey || e.metaKey)) { return; }
  const inCode = e.target.closest && e.target.closest(".cm-editor");
  const typing = e.target.matches && e.target.matches("input, textarea, select");
  if (e.key === "s" || e.key === "S") { e.preventDefault(); if (!inCode) { save(false); } return; }
  if (inCode || typing) { return; }
  if (e.key === "z" && !e.shiftKey) { e.preventDefault(); doc.undo(); }
  if ((e.key === "z" && e.shiftKey) || e.key === "Z" || e.key === "y") { e.preventDefault(); doc.redo(); }
});

/* --- duplicate and rename ------------------------------------------------------------------------------------------------ */

function askName(title, value, url, field) {
  const dialog = $("name-dialog");
  $("name-dialog-title").textContent = title;
  $("name-input").value = value;
  $("name-error").hidden = true;
  $("doc-menu").open = false;
  dialog.showModal();
  $("name-cancel").onclick = () => dialog.close();
  $("name-form").onsubmit = async (e) => {
    e.preventDefault();
    if (doc.dirty() && !window.confirm("You have unsaved changes; they stay in this tab but are not part of the copy. Go on?")) { return; }
    const res = await doc.json(await doc.post(url, { [field]: $("name-input").value.trim() }));
    if (res.status === 200 || res.status === 201) { window.onbeforeunload = null; doc.saved = doc.text; window.location.assign(res.body.url); return; }
    $("name-error").hidden = false;
    $("name-error").textContent = res.body.error || "That did not work.";
  };
}
$("duplicate").addEventListener("click", () => askName("Duplicate as", doc.name + "_copy", root.dataset.duplicateUrl, "to"));
$("rename").addEventListener("click", () => askName("Rename to", doc.name, root.dataset.renameUrl, "to"));

/* --- start: the text, then the code view (CodeMirror, loaded beside) ----------------------------------------------------- */

Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), (node) => {
  const d = new Date(node.getAttribute("datetime"));
  if (!isNaN(d)) { node.textContent = d.toLocaleString([], { dateStyle: "medium", timeStyle: node.closest("#history") ? "medium" : "short" }); }
});
doc.load($("source").value);
doc.loadFields();
library.load();
doc.emit("history", { undo: 0, redo: 0 });

Promise.all([import(root.dataset.codeUrl), fetch(root.dataset.schemaUrl, { credentials: "same-origin" }).then((r) => r.json())])
  .then(([module, schema]) => {
    const textarea = $("source");
    code = module.createCode($("code"), {
      text: doc.text, schema, label: "Storyboard YAML",
      onChange: (text) => doc.typed(text), onSave: () => save(false), onUndo: () => doc.undo(), onRedo: () => doc.redo(),
      hints: {
        fields: () => doc.fields.fields || [], filters: () => doc.fields.filters || [], links: () => doc.fields.links || [],
        palette: () => Object.entries((doc.model() && doc.model().colors) || {}).map(([name, value]) => ({ name, value })),
        assets: () => library.assets(),
      },
    });
    textarea.remove();
    doc.on("text", (e) => { if (e.source !== "code") { code.setText(e.text); } });
    if (doc.result) { code.setProblems(doc.result.errors || []); }
    root.classList.add("code-ready");
  })
  .catch(() => notice("The code view could not load; the visual editor works without it."));
