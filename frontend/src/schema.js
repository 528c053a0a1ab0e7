// The storyboard's JSON Schema (from `billcast schema storyboard`, served by the studio) read for the code
// view: which keys a mapping takes, what a value may be, and a quick check of a parsed document.
// The server's check (`billcast check`) stays the judge; this answers while typing.

import { isMap, isScalar, isSeq } from "yaml";

export function deref(root, s) {
  let seen = 0;
  while (s && s.$ref && seen++ < 16) { s = root.$defs[s.$ref.split("/").pop()]; }
  return s || {};
}

// The alternatives a schema allows, `null` left out.
export function options(root, s) {
  s = deref(root, s);
  const list = s.anyOf || s.oneOf;
  if (!list) { return [s]; }
  return list.map((x) => deref(root, x)).filter((x) => x.type !== "null");
}

// One schema for an object: a union member picked by its `kind`, the only alternative, or the first object.
export function pick(root, s, kind) {
  s = deref(root, s);
  const opts = options(root, s);
  if (s.discriminator && kind && s.discriminator.mapping[kind]) {
    return deref(root, { $ref: s.discriminator.mapping[kind] });
  }
  return opts.find((o) => o.type === "object" || o.properties) || opts[0] || {};
}

// The schema of `key` (a name, or a number for a list item) inside `s`; `kind` picks a union member.
export function child(root, s, key, kind) {
  const opts = options(root, s);
  for (const o of opts) {
    if (typeof key === "number" && o.type === "array") {
      if (o.prefixItems) { return o.prefixItems[key] || {}; }
      return o.items || {};
    }
    if (typeof key === "string" && (o.type === "object" || o.properties || o.additionalProperties)) {
      const obj = pick(root, o, kind);
      if (obj.properties && obj.properties[key]) { return obj.properties[key]; }
      if (obj.additionalProperties && typeof obj.additionalProperties === "object") { return obj.additionalProperties; }
      return null;
    }
  }
  return null;
}

// The keys a mapping schema takes, each with its description and default.
export function keysOf(root, s, kind) {
  const obj = pick(root, s, kind);
  return Object.entries(obj.properties || {}).map(([name, p]) => {
    const d = deref(root, p);
    const alt = options(root, p)[0] || {};
    return { name, required: (obj.required || []).includes(name), default: p.default, type: d.type || alt.type,
      title: p.title || d.title || name, description: p.description || d.description || "" };
  });
}

// The values a scalar schema allows outright (const, enum, booleans).
export function choices(root, s) {
  const out = [];
  for (const o of options(root, s)) {
    if (o.const !== undefined) { out.push(o.const); }
    if (o.enum) { out.push(...o.enum); }
    if (o.type === "boolean") { out.push(true, false); }
  }
  return out;
}

function describe(value) {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

// Problems of one scalar against its schema, phrased as the server's check phrases them.
function scalarProblems(root, s, value) {
  const opts = options(root, s);
  if (!opts.length || opts.some((o) => !o.type && !o.const && !o.enum)) { return []; }
  const messages = [];
  for (const o of opts) {
    const problems = [];
    if (o.const !== undefined && value !== o.const) { problems.push(`should be ${describe(o.const)}`); }
    if (o.enum && !o.enum.includes(value)) { problems.push(`should be one of: ${o.enum.join(", ")}`); }
    const isNumber = typeof value === "number";
    if ((o.type === "number" || o.type === "integer") && !isNumber) { problems.push("should be a number"); }
    if (o.type === "integer" && isNumber && !Number.isInteger(value)) { problems.push("should be a whole number"); }
    if (o.type === "string" && typeof value !== "string") { problems.push("should be a text"); }
    if (o.type === "boolean" && typeof value !== "boolean") { problems.push("should be true or false"); }
    if (o.type === "array" || o.type === "object") { problems.push(o.type === "array" ? "should be a list" : "should be a mapping"); }
    if (isNumber) {
      if (o.exclusiveMinimum !== undefined && !(value > o.exclusiveMinimum)) { problems.push(`must be > ${o.exclusiveMinimum}`); }
      if (o.minimum !== undefined && value < o.minimum) { problems.push(`must be ≥ ${o.minimum}`); }
      if (o.maximum !== undefined && value > o.maximum) { problems.push(`must be ≤ ${o.maximum}`); }
    }
    if (!problems.length) { return []; }
    messages.push(problems[0]);
  }
  return [messages[0] + `, got ${describe(value)}`];
}

// Every problem the schema sees in a parsed document (the `yaml` package's nodes), with its source range.
export function schemaProblems(root, doc) {
  const found = [];
  const add = (node, message) => {
    const range = node && node.range ? node.range : [0, 0];
    found.push({ from: range[0], to: Math.max(range[1], range[0] + 1), message });
  };
  const walk = (node, s, where) => {
    if (!node || !s) { return; }
    if (isMap(node)) {
      const kindPair = node.items.find((p) => p.key && p.key.value === "kind");
      const kind = kindPair && kindPair.value ? kindPair.value.value : undefined;
      const opts = options(root, s);
      if (!opts.some((o) => o.type === "object" || o.properties || o.additionalProperties)) {
        add(node, scalarProblems(root, s, {})[0] || "should not be a mapping");
        return;
      }
      const ds = deref(root, s);
      if (ds.discriminator && !kind) { add(node.items[0] ? node.items[0].key : node, "kind is required (text, image, rect, chart, table or qr)"); return; }
      if (ds.discriminator && !ds.discriminator.mapping[kind]) {
        add(kindPair.value, `does not match a layer kind: got ${describe(kind)}`);
        return;
      }
      const obj = pick(root, s, kind);
      const present = new Set();
      for (const pair of node.items) {
        const key = pair.key && pair.key.value;
        present.add(key);
        const sub = child(root, obj, String(key), kind);
        if (sub === null) {
          if (obj.additionalProperties === false || (obj.properties && obj.additionalProperties === undefined)) {
            add(pair.key, "unknown field (check its spelling)");
          }
          continue;
        }
        walk(pair.value, sub, where.concat(key));
      }
      for (const name of obj.required || []) {
        if (!present.has(name)) { add(node.items[0] ? node.items[0].key : node, `${name} is required`); }
      }
      return;
    }
    if (isSeq(node)) {
      const opts = options(root, s);
      const list = opts.find((o) => o.type === "array");
      if (!list) { add(node, scalarProblems(root, s, [])[0] || "should not be a list"); return; }
      if (list.minItems !== undefined && node.items.length < list.minItems) {
        add(node, list.minItems === list.maxItems ? `should have ${list.minItems} items` : `should have at least ${list.minItems} item(s)`);
      } else if (list.maxItems !== undefined && node.items.length > list.maxItems) {
        add(node, `should have at most ${list.maxItems} items`);
      }
      node.items.forEach((item, i) => walk(item, child(root, list, i), where.concat(i)));
      return;
    }
    if (isScalar(node) && node.value !== null) {
      for (const message of scalarProblems(root, s, node.value)) { add(node, message); }
    }
  };
  walk(doc.contents, root, []);
  return found;
}
