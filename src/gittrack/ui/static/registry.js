// Registry: models, versions, stages and aliases, source runs, and each model's history.
import { api, clear, el, fmtTime, runLink, table } from "./dom.js";

function pills(version) {
  return [
    version.current_stage && version.current_stage !== "None" ? el("span", { class: "pill stage" }, version.current_stage) : null,
    version.aliases.map((a) => el("span", { class: "pill" }, "@" + a)),
  ];
}

export async function registryPage(main) {
  const { models } = await api("/api/models");
  clear(main, el("h1", {}, "Model registry"),
    models.length ? table(["model", "latest versions", "aliases", "updated"], models.map((m) => [
      el("a", { href: `#/model/${encodeURIComponent(m.name)}` }, m.name),
      el("td", {}, m.latest_versions.map((v) => [el("span", {}, `v${v.version} `), pills(v), " "])),
      Object.entries(m.aliases).map(([a, v]) => `@${a} → v${v}`).join(", "),
      fmtTime(m.last_updated_timestamp),
    ])) : el("p", { class: "muted" }, "No registered models."));
  return {};
}

export async function modelPage(main, name) {
  const data = await api(`/api/models/${encodeURIComponent(name)}`);
  clear(main, el("h1", {}, data.model.name),
    data.model.description ? el("p", { class: "wrap" }, data.model.description) : null,
    el("h2", {}, "Versions"),
    table(["version", "stage / aliases", "source run", "source", "by", "created"], data.versions.map((v) => [
      `v${v.version}`, el("td", {}, pills(v)), v.run_id ? runLink(v.run_id) : "", el("td", { class: "wrap" }, v.source || ""), v.user || "", fmtTime(v.creation_timestamp),
    ])),
    el("h2", {}, "History"),
    el("ul", { class: "timeline", id: "history" }, data.history.map((e) => el("li", {},
      el("strong", {}, fmtTime(e.when)), " ", e.who, ": ", e.kind, e.version !== null ? ` v${e.version}` : "", e.label ? ` → ${e.label}` : "",
      e.message ? el("span", { class: "muted" }, ` — ${e.message}`) : null))));
  return {};
}
