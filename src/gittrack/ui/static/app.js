// Router and refresh: pages by URL hash; the data version is polled every 2 s and the page
// shown reloads its data when the tracking branch moves or a live run logs.
import { api, clear, el } from "./dom.js";
import { comparePage } from "./compare.js";
import { commitsPage } from "./commits.js";
import { experimentsPage } from "./experiments.js";
import { modelPage, registryPage } from "./registry.js";
import { runPage } from "./run.js";
import { runsPage } from "./runs.js";

const main = document.getElementById("main");
let current = {};
let version = null;

const ROUTES = [
  [/^\/?$/, "experiments", () => experimentsPage(main)],
  [/^\/runs$/, "runs", () => runsPage(main)],
  [/^\/run\/([0-9a-f]{32})$/, "runs", (m) => runPage(main, m[1])],
  [/^\/compare$/, "compare", () => comparePage(main)],
  [/^\/commits$/, "commits", () => commitsPage(main)],
  [/^\/registry$/, "registry", () => registryPage(main)],
  [/^\/model\/(.+)$/, "registry", (m) => modelPage(main, decodeURIComponent(m[1]))],
];

async function route() {
  if (current.leave) current.leave();
  current = {};
  const path = location.hash.slice(1).split("?")[0];
  for (const [pattern, page, show] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.page === page);
    try {
      current = (await show(match)) || {};
    } catch (err) {
      clear(main, el("p", { class: "error" }, err.message));
    }
    return;
  }
  clear(main, el("p", { class: "error" }, "No such page."));
}

async function poll() {
  try {
    const { data_version } = await api("/api/version");
    if (version !== null && data_version !== version && current.refresh) await current.refresh();
    version = data_version;
  } catch { /* the server is restarting or gone: try again at the next tick */ }
  setTimeout(poll, 2000);
}

async function start() {
  try {
    const info = await api("/api/info");
    document.getElementById("where").textContent = `${info.repository} · branch ${info.branch}${info.allow_write ? "" : " · read-only"}`;
    version = info.data_version;
  } catch (err) {
    document.getElementById("where").textContent = err.message;
  }
  window.addEventListener("hashchange", route);
  await route();
  setTimeout(poll, 2000);
}

start();
