// DOM and fetch helpers. User data only ever reaches the page as text (textContent,
// attributes set through the DOM API): never as markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "href") node.setAttribute("href", safeHref(value));
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function safeHref(value) {
  const text = String(value);
  return text.startsWith("#") || text.startsWith("/") ? text : "#";
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
  return node;
}

export class ApiError extends Error {}

export async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) throw new ApiError((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, item);
  }
  return search.toString();
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return "";
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 19);
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function fmtValue(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(5).replace(/\.?0+($|e)/, "$1");
  return value === null || value === undefined ? "" : String(value);
}

export function runLink(runId, name) {
  return el("a", { href: `#/run/${encodeURIComponent(runId)}` }, name || runId.slice(0, 8));
}

export function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c)))))));
}

export function keyValueTable(mapping, emptyText) {
  const keys = Object.keys(mapping || {}).sort();
  if (!keys.length) return el("p", { class: "muted" }, emptyText);
  return table(["key", "value"], keys.map((k) => [k, el("td", { class: "wrap" }, fmtValue(mapping[k]))]));
}

export function hashParams() {
  const hash = location.hash.slice(1);
  const q = hash.indexOf("?");
  return new URLSearchParams(q >= 0 ? hash.slice(q + 1) : "");
}
