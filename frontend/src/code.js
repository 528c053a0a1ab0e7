// The studio's code view: CodeMirror 6 with YAML highlighting, the server's problems as diagnostics,
// and lint and completion from the storyboard's JSON Schema. Bundled by esbuild into
// service/static/studio/code.js (see docs/STUDIO.md); the page imports `createCode` from it.

import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, indentWithTab } from "@codemirror/commands";
import { yaml } from "@codemirror/lang-yaml";
import { bracketMatching, foldGutter, foldKeymap, indentOnInput, syntaxHighlighting, HighlightStyle } from "@codemirror/language";
import { forceLinting, lintGutter, linter } from "@codemirror/lint";
import { highlightSelectionMatches, search, searchKeymap } from "@codemirror/search";
import { Annotation, EditorSelection, EditorState, StateEffect, StateField } from "@codemirror/state";
import { drawSelection, EditorView, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers } from "@codemirror/view";
import { tags } from "@lezer/highlight";
import { parseDocument } from "yaml";

import { child, choices, keysOf, schemaProblems } from "./schema.js";

const external = Annotation.define();  // a change the page made (a visual edit, undo), not typing
const setServer = StateEffect.define();

// The server's problems, kept at their places while the text changes around them until the next check.
const serverField = StateField.define({
  create: () => [],
  update(value, tr) {
    for (const e of tr.effects) { if (e.is(setServer)) { return e.value; } }
    if (!tr.docChanged) { return value; }
    return value.map((d) => ({ ...d, from: tr.changes.mapPos(d.from, -1), to: tr.changes.mapPos(d.to, 1) }));
  },
});

const style = HighlightStyle.define([
  { tag: tags.propertyName, color: "#0E4D64", fontWeight: "600" },
  { tag: [tags.string, tags.special(tags.string)], color: "#8A4B00" },
  { tag: [tags.number, tags.bool, tags.null], color: "#6A3FB5" },
  { tag: tags.comment, color: "#56707D", fontStyle: "italic" },
  { tag: [tags.punctuation, tags.separator, tags.squareBracket, tags.brace], color: "#4A6572" },
  { tag: [tags.labelName, tags.meta, tags.typeName], color: "#B3261E" },
]);

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "13px", backgroundColor: "#FBFCFD" },
  ".cm-scroller": { fontFamily: "\"DejaVu Sans Mono\", ui-monospace, Menlo, Consolas, monospace", lineHeight: "20px" },
  ".cm-gutters": { backgroundColor: "#EEF2F5", color: "#4A6572", borderRight: "1px solid #D5DEE4" },
  ".cm-activeLine": { backgroundColor: "#F1F6F8" },
  ".cm-activeLineGutter": { backgroundColor: "#E1EAEE", color: "#08303F" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": { backgroundColor: "#FBD9A6 !important" },
  ".cm-flash": { backgroundColor: "#F2A54155" },
  ".cm-tooltip-autocomplete ul li[aria-selected]": { backgroundColor: "#0E4D64", color: "#fff" },
  ".cm-completionDetail": { marginLeft: "0.6em", color: "#4A6572", fontStyle: "normal" },
  /* The lint package draws its marks with data: images, which the page's CSP (img-src 'self') refuses. */
  ".cm-lintRange-error, .cm-lintRange-warning": { backgroundImage: "none", textDecoration: "underline wavy", textDecorationSkipInk: "none" },
  ".cm-lintRange-error": { textDecorationColor: "#D11" },
  ".cm-lintRange-warning": { textDecorationColor: "#E08A00" },
  ".cm-lint-marker": { content: "none", width: "9px", height: "9px", borderRadius: "50%", margin: "5px 3px 0" },
  ".cm-lint-marker-error": { content: "none", backgroundColor: "#E5534B" },
  ".cm-lint-marker-warning": { content: "none", backgroundColor: "#F2A541" },
  ".cm-lint-marker-info": { content: "none", backgroundColor: "#9FC9D8" },
});

// --- where the cursor is, from the indentation above it ------------------------------------------------

const LINE_RE = /^(\s*)(- )?(?:(["']?[\w.-]+["']?)\s*:(?:\s|$))?/;

function columns(text) {
  const m = LINE_RE.exec(text);
  return { dash: m[2] ? m[1].length : -1, key: m[1].length + (m[2] ? 2 : 0), name: m[3] ? m[3].replace(/["']/g, "") : null };
}

function skip(text) { return !text.trim() || /^\s*#/.test(text); }

// The path of the mapping the cursor's line belongs to (list items as 0), and that mapping's `kind`
// and keys, found by indentation: enough for completion in a half-typed document.
export function contextAt(doc, lineNumber, before) {
  const here = columns(before);
  const path = [];
  let target = here.key;
  let afterDash = here.dash >= 0;
  if (afterDash) { path.unshift(0); target = here.dash; }
  for (let n = lineNumber - 1; n >= 1 && (target > 0 || afterDash); n--) {
    const text = doc.line(n).text;
    if (skip(text)) { continue; }
    const c = columns(text);
    if (!afterDash && c.dash >= 0 && c.dash < target && c.key <= target) {
      path.unshift(0);
      target = c.dash;
      afterDash = true;
      continue;
    }
    if (c.name && (c.key < target || (afterDash && c.key === target && c.dash < 0))) {
      path.unshift(c.name);
      target = c.key;
      afterDash = false;
    } else if (c.key < target && c.dash < 0) {
      break;  // a line with a value at a shallower level: the structure is not what we can read
    }
  }
  const keys = new Set();
  let kind = null;
  const take = (text) => {
    const c = columns(text);
    if (c.key !== here.key || !c.name) { return; }
    keys.add(c.name);
    const m = /^\s*(?:- )?kind:\s*(\w+)/.exec(text);
    if (m) { kind = m[1]; }
  };
  for (let n = lineNumber - 1; n >= 1 && here.dash < 0; n--) {  // up to the mapping's first line
    const text = doc.line(n).text;
    if (skip(text)) { continue; }
    const c = columns(text);
    if (c.key < here.key) { break; }
    if (c.key === here.key) { take(text); if (c.dash >= 0) { break; } }
  }
  for (let n = lineNumber + 1; n <= doc.lines; n++) {  // down to its last
    const text = doc.line(n).text;
    if (skip(text)) { continue; }
    const c = columns(text);
    if (c.key < here.key || (c.dash >= 0 && c.key === here.key)) { break; }
    if (c.key === here.key) { take(text); }
  }
  return { path, kind, keys };
}

function schemaAt(root, path, kind) {
  let s = root;
  for (let i = 0; i < path.length && s; i++) {
    s = child(root, s, path[i], i === path.length - 1 ? kind : undefined);
  }
  return s;
}

const COLOR_KEYS = /(^|_)(color|fill|stroke|background)$/;

function completions(root, hints) {
  return (context) => {
    const line = context.state.doc.lineAt(context.pos);
    const before = line.text.slice(0, context.pos - line.from);
    const template = /(\{\{|\{%)(?:(?!\}\}|%\}).)*$/.exec(before);
    if (template) {
      const afterPipe = /\|\s*(\w*)$/.exec(before);
      if (afterPipe) {
        return { from: context.pos - afterPipe[1].length, validFor: /^\w*$/,
          options: hints.filters().map((f) => ({ label: f.use, type: "function", detail: f.about })) };
      }
      const word = /[\w.]*$/.exec(before)[0];
      return { from: context.pos - word.length, validFor: /^[\w.]*$/,
        options: hints.fields().map((f) => ({ label: f.path, type: f.kind === "translation" ? "text" : "variable",
          detail: f.value })) };
    }
    const key = /^(\s*)(- )?(\w*)$/.exec(before);
    const where = contextAt(context.state.doc, line.number, before);
    if (key) {
      const s = schemaAt(root, where.path, where.kind);
      if (!s) { return null; }
      const options = keysOf(root, s, where.kind).filter((k) => !where.keys.has(k.name) || k.name === key[3])
        .map((k) => ({ label: k.name, apply: k.name + ": ", type: "property", boost: k.required ? 1 : 0,
          detail: k.default !== undefined && k.default !== null && typeof k.default !== "object" ? `default ${k.default}` : (k.required ? "required" : ""),
          info: k.description || undefined }));
      return options.length ? { from: context.pos - key[3].length, options, validFor: /^\w*$/ } : null;
    }
    const value = /^\s*(?:- )?([\w]+):\s*(["']?)([^"'#{[]*)$/.exec(before);
    if (!value) { return null; }
    const name = value[1];
    const s = schemaAt(root, where.path.concat(name), name === "kind" ? undefined : where.kind);
    let options = (s ? choices(root, s) : []).map((c) => ({ label: String(c), type: "enum" }));
    if (COLOR_KEYS.test(name)) { options = options.concat(hints.palette().map((c) => ({ label: c.name, type: "constant", detail: c.value }))); }
    if (name === "src" || name === "image" || name === "bed") {
      options = options.concat(hints.assets().filter((a) => (name === "bed") === (a.kind === "audio"))
        .map((a) => ({ label: a.path, type: "text" })));
    }
    if (name === "link") { options = options.concat(hints.links().map((l) => ({ label: l, type: "constant" }))); }
    return options.length ? { from: context.pos - value[3].length, options, validFor: /^[\w./-]*$/ } : null;
  };
}

function lintSource(root) {
  return (view) => {
    const server = view.state.field(serverField).map((d) => ({ ...d, severity: "error", source: "billcast check" }));
    const text = view.state.doc.toString();
    const local = [];
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
    for (const e of doc.errors) {
      local.push({ from: e.pos[0], to: Math.max(e.pos[1], e.pos[0] + 1), message: e.message.split("\n")[0] });
    }
    if (!doc.errors.length && root) { local.push(...schemaProblems(root, doc)); }
    const lines = new Set(server.map((d) => view.state.doc.lineAt(Math.min(d.from, text.length)).number));
    const kept = local.filter((d) => !lines.has(view.state.doc.lineAt(Math.min(d.from, text.length)).number))
      .map((d) => ({ ...d, to: Math.min(d.to, text.length), from: Math.min(d.from, text.length), severity: "warning", source: "schema" }));
    return server.concat(kept);
  };
}

// The editor in `parent`; calls back on typing (`onChange(text)`), saving, undo and redo.
export function createCode(parent, opts) {
  const hints = Object.assign({ fields: () => [], filters: () => [], palette: () => [], assets: () => [], links: () => [] }, opts.hints || {});
  const appKeys = keymap.of([
    { key: "Mod-s", preventDefault: true, run: () => { opts.onSave(); return true; } },
    { key: "Mod-z", preventDefault: true, run: () => { opts.onUndo(); return true; } },
    { key: "Mod-Shift-z", preventDefault: true, run: () => { opts.onRedo(); return true; } },
    { key: "Mod-y", preventDefault: true, run: () => { opts.onRedo(); return true; } },
  ]);
  /* In a shadow root, CodeMirror's generated styles go to an adopted style sheet rather than a <style>
     element, which the studio's Content-Security-Policy (style-src 'self') would refuse. */
  const host = document.createElement("div");
  host.className = "code-host";
  parent.appendChild(host);
  const shadow = host.attachShadow({ mode: "open" });
  const view = new EditorView({
    parent: shadow,
    root: shadow,
    state: EditorState.create({
      doc: opts.text,
      extensions: [
        appKeys, lineNumbers(), highlightActiveLineGutter(), foldGutter(), drawSelection(), indentOnInput(),
        bracketMatching(), closeBrackets(), highlightActiveLine(), highlightSelectionMatches(), search({ top: true }),
        EditorState.tabSize.of(2), yaml(), syntaxHighlighting(style), theme, serverField,
        linter(lintSource(opts.schema), { delay: 250, needsRefresh: (u) => u.transactions.some((tr) => tr.effects.some((e) => e.is(setServer))) }),
        lintGutter(), autocompletion({ override: [completions(opts.schema, hints)], activateOnTyping: true }),
        keymap.of([...closeBracketsKeymap, ...searchKeymap, ...foldKeymap, ...completionKeymap, indentWithTab, ...defaultKeymap]),
        EditorView.contentAttributes.of({ "aria-label": opts.label || "Storyboard YAML", tabindex: "0" }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged && !u.transactions.some((tr) => tr.annotation(external))) { opts.onChange(u.state.doc.toString()); }
        }),
      ],
    }),
  });

  return {
    view,
    getText: () => view.state.doc.toString(),
    // Replace the text with as small a change as possible, so the cursor and scroll stay where they are.
    setText(text) {
      const old = view.state.doc.toString();
      if (old === text) { return; }
      let start = 0;
      while (start < old.length && start < text.length && old[start] === text[start]) { start++; }
      let endOld = old.length, endNew = text.length;
      while (endOld > start && endNew > start && old[endOld - 1] === text[endNew - 1]) { endOld--; endNew--; }
      view.dispatch({ changes: { from: start, to: endOld, insert: text.slice(start, endNew) }, annotations: external.of(true) });
    },
    // The server's problems: [{line, message}].
    setProblems(problems) {
      const doc = view.state.doc;
      const diagnostics = problems.filter((p) => p.line && p.line <= doc.lines).map((p) => {
        const line = doc.line(p.line);
        const indent = /^\s*/.exec(line.text)[0].length;
        return { from: line.from + Math.min(indent, line.length), to: Math.max(line.to, line.from + indent + 1) > doc.length ? doc.length : Math.max(line.to, line.from + indent), message: (p.field ? p.field + ": " : "") + p.message };
      });
      view.dispatch({ effects: setServer.of(diagnostics) });
      forceLinting(view);
    },
    goToLine(n) {
      const line = view.state.doc.line(Math.max(1, Math.min(n, view.state.doc.lines)));
      view.dispatch({ selection: EditorSelection.range(line.from, line.to), scrollIntoView: true,
        effects: EditorView.scrollIntoView(line.from, { y: "center" }) });
      view.focus();
    },
    caretLine: () => view.state.doc.lineAt(view.state.selection.main.head).number,
    selectedText: () => view.state.sliceDoc(view.state.selection.main.from, view.state.selection.main.to),
    focus: () => view.focus(),
  };
}
