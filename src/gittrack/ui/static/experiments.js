// Experiments with their run counts and last activity.
import { api, clear, el, fmtTime, table } from "./dom.js";

export async function experimentsPage(main) {
  const { experiments } = await api("/api/experiments");
  clear(main, el("h1", {}, "Experiments"),
    table(["name", "id", "runs", "last activity"], experiments.map((e) => [
      el("a", { href: `#/runs?experiment_id=${encodeURIComponent(e.experiment_id)}` }, e.name),
      e.experiment_id, el("td", { class: "num" }, e.run_count), fmtTime(e.last_activity),
    ])),
    el("p", {}, el("a", { href: "#/runs" }, "All runs")));
  return { refresh: () => experimentsPage(main) };
}
