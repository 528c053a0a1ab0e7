/* The storyboard list: start a new storyboard from a starter (a minimal one, or a copy of a shipped one). */
const form = document.getElementById("new-form");
const open = document.getElementById("new-open");
const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");

open.addEventListener("click", () => {
  form.hidden = !form.hidden;
  open.setAttribute("aria-expanded", String(!form.hidden));
  if (!form.hidden) { document.getElementById("new-name").focus(); }
});

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const error = document.getElementById("new-error");
  const data = new FormData(form);
  const r = await fetch(form.dataset.url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ name: String(data.get("name") || "").trim(), starter: data.get("starter") }),
  });
  const body = await r.json().catch(() => ({}));
  if (r.status === 201) { window.location.assign(body.url); return; }
  error.hidden = false;
  error.textContent = body.error || "The storyboard could not be created.";
});

/* Times are written in UTC by the server; show them in the reader's own time. */
document.querySelectorAll("time[datetime]").forEach((node) => {
  const d = new Date(node.getAttribute("datetime"));
  if (!isNaN(d)) { node.textContent = d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }); }
});
