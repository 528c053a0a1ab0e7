/* The document being edited: its text (the one source of truth), the check of that text, what is selected,
   the playhead, undo and redo, and every request to the studio. The panels listen and ask; only this module
   changes the text. Visual edits are operations the studio applies to the text (keeping its comments and
   formatting); the code view's typing replaces the text. */

const CHECK_DELAY = 600;
const TYPING_GROUP = 1200;  /* typing within this many ms is one step of undo */
const UNDO_KEEP = 200;

export function dotted(path) {
  let out = "";
  for (const part of path) { out += typeof part === "number" ? `[${part}]` : (out ? "." : "") + part; }
  return out;
}

/* Whether a problem's field is the edited field, inside it, or one of the mappings that hold it. */
export function touches(problemField, path) {
  if (!problemField) { return false; }
  const field = dotted(path);
  return problemField === field || problemField.startsWith(field + ".") || problemField.startsWith(field + "[")
    || field.startsWith(problemField + ".") || field.startsWith(problemField + "[");
}

export function createDoc(root, csrf) {
  const url = (key) => root.dataset[key];
  const listeners = {};
  const doc = {
    name: root.dataset.name,
    text: "",
    saved: "",                 /* the text last saved or loaded */
    base: root.dataset.base,   /* digest of the live text this editor started from */
    draft: root.dataset.draft === "true",
    result: null,              /* the last check: {ok, errors, doc, preview} */
    layers: null,              /* planned layers: {size, board, mirrored, scenes: [{layers: [...]}]} */
    fields: { fields: [], filters: [], links: [] },
    selection: { kind: "scene", scene: 0, layer: null },
    t: 0,
    csrf,
    customer: () => "", language: () => "", record: () => "",
  };
  let undo = [], redo = [], lastTyping = 0, checkTimer = null, checkSeq = 0;

  doc.on = (name, fn) => { (listeners[name] = listeners[name] || []).push(fn); };
  doc.emit = (name, data) => { (listeners[name] || []).forEach((fn) => fn(data)); };

  doc.post = (key, body, extra) => fetch(url(key) || key, Object.assign({
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  }, extra || {}));

  doc.ask = (extra) => {
    const body = { text: doc.text, language: doc.language(), customer: doc.customer() };
    if (body.customer === "pasted") { body.record = doc.record(); }
    return Object.assign(body, extra || {});
  };

  async function json(response) {
    let body = {};
    try { body = await response.json(); } catch (e) { body = { error: "The studio answered with something unexpected." }; }
    return { status: response.status, body };
  }
  doc.json = json;

  /* --- the text and its history ------------------------------------------------------------------ */

  function setText(text, source) {
    if (text === doc.text) { return; }
    doc.text = text;
    doc.emit("text", { text, source });
    scheduleCheck(source === "code" ? CHECK_DELAY : 0);
  }

  function remember() {
    undo.push(doc.text);
    if (undo.length > UNDO_KEEP) { undo.shift(); }
    redo = [];
    doc.emit("history", { undo: undo.length, redo: redo.length });
  }

  doc.load = (text) => { doc.text = text; doc.saved = text; doc.emit("text", { text, source: "load" }); scheduleCheck(0); };

  /* The code view typed: one undo step per burst of typing. */
  doc.typed = (text) => {
    const now = Date.now();
    if (now - lastTyping > TYPING_GROUP) { remember(); }
    lastTyping = now;
    setText(text, "code");
  };

  /* A whole new text from elsewhere (an old version, a discarded draft): one undo step. */
  doc.replace = (text, source) => { lastTyping = 0; remember(); setText(text, source || "replace"); };

  doc.undo = () => {
    if (!undo.length) { return; }
    redo.push(doc.text);
    lastTyping = 0;
    setText(undo.pop(), "undo");
    doc.emit("history", { undo: undo.length, redo: redo.length });
  };
  doc.redo = () => {
    if (!redo.length) { return; }
    undo.push(doc.text);
    lastTyping = 0;
    setText(redo.pop(), "undo");
    doc.emit("history", { undo: undo.length, redo: redo.length });
  };
  doc.dirty = () => doc.text !== doc.saved;

  /* Apply operations through the studio. New problems at `path` (or, with no path, any new problem)
     refuse the edit: the text stays as it was and the problems are returned for the field to show. */
  doc.edit = async (ops, path) => {
    const before = new Set(((doc.result && doc.result.errors) || []).map((e) => e.field + "\u0000" + e.message));
    const res = await json(await doc.post("editUrl", doc.ask({ ops })));
    if (res.status !== 200) { return [{ field: path ? dotted(path) : "", message: res.body.error || "That change cannot be made." }]; }
    const fresh = (res.body.errors || []).filter((e) => !before.has(e.field + "\u0000" + e.message));
    const refused = path ? fresh.filter((e) => touches(e.field, path)) : fresh;
    if (refused.length) { return refused; }
    lastTyping = 0;
    remember();
    clearTimeout(checkTimer);
    doc.text = res.body.text;
    doc.emit("text", { text: doc.text, source: "visual" });
    applyCheck(res.body, ++checkSeq);
    return [];
  };

  /* --- checking ------------------------------------------------------------------------------------ */

  function scheduleCheck(delay) {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(doc.check, delay);
  }

  doc.check = async () => {
    clearTimeout(checkTimer);
    const seq = ++checkSeq;
    doc.emit("checking");
    try {
      const res = await json(await doc.post("validateUrl", doc.ask()));
      if (seq === checkSeq) { applyCheck(res.body, seq); }
      if (seq === checkSeq && res.status === 503) {  /* the studio is busy: its problem is shown, and it asks again */
        scheduleCheck(1000 * (res.body.retry_after || 2));
      }
    } catch (e) {
      if (seq === checkSeq) { doc.emit("offline"); }
    }
  };

  let started = false;
  async function applyCheck(body, seq) {
    doc.result = body;
    if (!started && body.preview) {  /* the first valid plan: start at the poster's moment */
      started = true;
      doc.t = Math.min(body.preview.poster_time, body.preview.duration);
      doc.selection = { kind: "scene", scene: doc.sceneAt(doc.t), layer: null };
    }
    doc.emit("checked", body);
    if (!body.preview) { return; }
    const res = await json(await doc.post("layersUrl", doc.ask()));
    if (seq !== checkSeq || res.status !== 200) { return; }
    doc.layers = res.body;
    keepSelection();
    doc.emit("layers", res.body);
    doc.emit("select", doc.selection);
  }

  doc.loadFields = async () => {
    const res = await json(await doc.post("fieldsUrl", doc.ask()));
    if (res.status === 200) { doc.fields = res.body; doc.emit("fields", res.body); }
  };

  /* --- selection and time -------------------------------------------------------------------------- */

  doc.model = () => (doc.result && doc.result.doc) || null;
  doc.sceneAt = (t) => {
    const scenes = (doc.result && doc.result.preview && doc.result.preview.scenes) || [];
    const found = scenes.findIndex((s) => t >= s.start && t < s.end);
    return found >= 0 ? found : Math.max(scenes.length - 1, 0);
  };
  doc.sceneTimes = (index) => {
    const scenes = (doc.result && doc.result.preview && doc.result.preview.scenes) || [];
    return scenes[index] || { start: 0, end: 0, id: "" };
  };

  function keepSelection() {
    const model = doc.model();
    if (!model) { return; }
    const sel = doc.selection;
    if (sel.kind === "board") { return; }
    const scene = Math.min(sel.scene, model.scenes.length - 1);
    const layers = model.scenes[scene].layers;
    doc.selection = sel.layer !== null && sel.layer < layers.length
      ? { kind: "layer", scene, layer: sel.layer } : { kind: "scene", scene, layer: null };
  }

  /* Select a layer, a scene or the storyboard; moving to another scene moves the playhead into it. */
  doc.select = (sel) => {
    doc.selection = Object.assign({ kind: "scene", scene: 0, layer: null }, sel);
    keepSelection();
    const times = doc.sceneTimes(doc.selection.scene);
    if (doc.selection.kind !== "board" && doc.sceneAt(doc.t) !== doc.selection.scene && times.end > times.start) {
      doc.seek(times.start + Math.min(1.2, (times.end - times.start) / 2));
    }
    doc.emit("select", doc.selection);
  };

  doc.seek = (t) => {
    const duration = (doc.result && doc.result.preview && doc.result.preview.duration) || 0;
    const fps = (doc.result && doc.result.preview && doc.result.preview.fps) || 25;
    doc.t = Math.max(0, Math.min(t, Math.max(duration - 1 / fps, 0)));
    const scene = doc.sceneAt(doc.t);
    if (doc.selection.kind !== "board" && scene !== doc.selection.scene) {
      doc.selection = { kind: "scene", scene, layer: null };
      doc.emit("select", doc.selection);
    }
    doc.emit("time", doc.t);
  };

  /* --- saving -------------------------------------------------------------------------------------- */

  doc.save = async (force) => {
    const text = doc.text;
    doc.emit("saving");
    let res;
    try {
      res = await json(await doc.post("saveUrl", doc.ask({ base: doc.base, force: !!force })));
    } catch (e) {
      doc.emit("saved", { status: 0, body: { error: "could not reach the studio" } });
      return;
    }
    if (res.status === 200) {
      doc.base = res.body.saved.base;
      doc.saved = text;
      doc.draft = false;
    } else if (res.status === 422 && res.body.draft) {
      doc.saved = text;
      doc.draft = true;
    }
    if (res.body.errors) { doc.result = Object.assign({}, doc.result, { ok: res.body.ok, errors: res.body.errors }); }
    doc.emit("saved", res);
  };

  doc.discardDraft = async () => {
    const res = await json(await doc.post("discardUrl", {}));
    if (res.status !== 200) { return; }
    doc.base = res.body.base;
    doc.draft = false;
    doc.saved = res.body.text;
    doc.replace(res.body.text, "replace");
    doc.emit("discarded");
  };

  return doc;
}
