// Tiny DOM helpers shared by the views.

/** h("a", {href: "#/x", class: "c"}, "text", child, ...): an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const STATUS_LABELS = {
  PENDING: "pending",
  RUNNING: "running",
  WAITING: "waiting",
  POLLING: "polling",
  SUCCEEDED: "succeeded",
  FAILED: "failed",
  TIMED_OUT: "timed out",
  ABORTED: "aborted",
};

/** A status as text plus colour (the badge's class); the text alone says it all. */
export function statusBadge(status) {
  return h("span", { class: `badge status-${(status || "").toLowerCase()}` }, STATUS_LABELS[status] || status || "—");
}

export function age(iso, now = Date.now()) {
  if (!iso) return "—";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}

export function time(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().replace("T", " ").replace("Z", "").slice(0, 23);
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

/** The API's errors as it returned them: errorType and message of each, and the raw answer. */
export function errorBox(error) {
  const errors = error && error.errors ? error.errors : [{ errorType: error && error.name, message: String(error && error.message) }];
  return h(
    "div",
    { class: "api-error", role: "alert" },
    h("ul", {}, errors.map((e) => h("li", {}, h("strong", { class: "error-type" }, e.errorType || "Error"), ": ", h("span", { class: "error-message" }, e.message)))),
    error && error.errors ? h("details", {}, h("summary", {}, "as returned"), h("pre", {}, json(error.errors))) : null,
  );
}
