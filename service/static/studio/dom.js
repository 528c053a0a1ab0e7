/* One way to make an element: `el("button", {type: "button", class: "x", text: "Hi"}, ...children)`.
   Attributes are set as attributes (never `style`: the page's CSP refuses inline styles; use element.style). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) { continue; }
    if (k === "class") { node.className = v; } else if (k === "text") { node.textContent = v; } else { node.setAttribute(k, v === true ? "" : v); }
  }
  children.flat().forEach((c) => { if (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); } });
  return node;
}
