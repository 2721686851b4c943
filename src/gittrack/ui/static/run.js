// The run page: params, metric summary, tags, description, parent and children, charts,
// artifacts with previews, and the source (commit, branch, uncommitted diff).
import { drawChart, fetchSeries, plotly, purge } from "./charts.js";
import { api, clear, el, fmtDuration, fmtTime, fmtValue, keyValueTable, runLink, table } from "./dom.js";

const chartState = { xAxis: "step", logY: false, smoothing: 0 };

export async function runPage(main, runId) {
  plotly().catch(() => {}); // start loading the chart library while the run is fetched
  const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
  const charts = el("div", { class: "grid", id: "charts" });
  const summaryKeys = Object.keys(run.metric_summaries).sort();
  const controls = el("div", { class: "toolbar" },
    el("label", {}, "x axis ", el("select", { id: "x-axis", onchange: (e) => { chartState.xAxis = e.target.value; drawAll(); } },
      [["step", "step"], ["time", "wall time"], ["relative", "relative time"]].map(([v, t]) => el("option", { value: v, selected: chartState.xAxis === v }, t)))),
    el("label", {}, el("input", { type: "checkbox", id: "log-y", checked: chartState.logY, onchange: (e) => { chartState.logY = e.target.checked; drawAll(); } }), " log y"),
    el("label", {}, "smoothing ", el("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: chartState.smoothing,
      oninput: (e) => { chartState.smoothing = Number(e.target.value); drawAll(); } })));
  const tags = Object.fromEntries(Object.entries(run.tags).filter(([k]) => k !== "mlflow.note.content"));
  const artifacts = el("div", { class: "split" }, el("div", { class: "tree", id: "artifact-tree" }), el("div", { class: "preview", id: "artifact-preview" }, el("p", { class: "muted" }, "Select a file to preview it.")));
  const source = el("div", { id: "source" });
  clear(main,
    el("h1", {}, run.run_name, " ", el("span", { class: `status-${run.status}` }, run.status)),
    el("p", { class: "muted" }, `run ${run.run_id} · experiment `,
      el("a", { href: `#/runs?experiment_id=${encodeURIComponent(run.experiment_id)}` }, run.experiment_id),
      ` · ${run.user} · started ${fmtTime(run.start_time)} · ${run.end_time ? "took " + fmtDuration(run.duration_ms) : "still running"}`),
    run.description ? el("p", { class: "wrap", id: "description" }, run.description) : null,
    run.parent ? el("p", {}, "Parent: ", runLink(run.parent.run_id, run.parent.run_name)) : null,
    run.children.length ? el("p", {}, "Nested runs: ", run.children.map((c, i) => [i ? ", " : "", runLink(c.run_id, c.run_name)])) : null,
    el("h2", {}, "Metrics"),
    summaryKeys.length ? table(["key", "latest", "step", "min", "max", "points"], summaryKeys.map((k) => {
      const s = run.metric_summaries[k];
      return [k, fmtValue(s.value), s.step, fmtValue(s.min), fmtValue(s.max), s.count];
    })) : el("p", { class: "muted" }, "No metrics."),
    summaryKeys.length ? [controls, charts] : null,
    el("div", { class: "cols" },
      el("section", {}, el("h2", {}, "Parameters"), keyValueTable(run.params, "No parameters.")),
      el("section", {}, el("h2", {}, "Tags"), keyValueTable(tags, "No tags."))),
    el("h2", {}, "Artifacts"), artifacts,
    el("h2", {}, "Source"), source);

  const nodes = new Map();
  async function drawAll() {
    await Promise.all(summaryKeys.slice(0, 12).map(async (key) => {
      let node = nodes.get(key);
      if (!node) { node = el("div", { class: "chart", dataset: { metric: key } }); nodes.set(key, node); charts.append(node); }
      try {
        const started = performance.now();
        const series = await fetchSeries(run.run_id, key, chartState.xAxis);
        await drawChart(node, key, [{ name: key, series }], chartState);
        node.dataset.points = String(series.points);
        node.dataset.renderMs = String(Math.round(performance.now() - started));
      } catch (err) {
        clear(node, el("p", { class: "error" }, err.message));
      }
    }));
    document.dispatchEvent(new CustomEvent("charts-rendered"));
  }

  await Promise.all([drawAll(), loadTree(run.run_id, "", artifacts.querySelector("#artifact-tree"), artifacts.querySelector("#artifact-preview")), showSource(run, source)]);
  return {
    refresh: async () => { if (run.status === "RUNNING") await drawAll(); },
    leave: () => nodes.forEach(purge),
  };
}

async function loadTree(runId, path, node, preview) {
  const { files } = await api(`/api/runs/${encodeURIComponent(runId)}/artifacts?path=${encodeURIComponent(path)}`);
  if (!files.length && !path) { clear(node, el("p", { class: "muted" }, "No artifacts.")); return; }
  clear(node, el("ul", {}, files.map((f) => {
    const name = f.path.split("/").pop();
    const item = el("li", {});
    if (f.is_dir) {
      const sub = el("div", {});
      let open = false;
      item.append(el("a", { onclick: async () => { open = !open; if (open) await loadTree(runId, f.path, sub, preview); else clear(sub); } }, name, "/"), sub);
    } else {
      item.append(el("a", { dataset: { path: f.path }, onclick: () => showPreview(runId, f.path, preview) }, name, " "), el("span", { class: "muted" }, sizeText(f.size)));
    }
    return item;
  })));
}

function sizeText(size) {
  if (size === null || size === undefined) return "";
  return size < 1024 ? `${size} B` : size < 1 << 20 ? `${(size / 1024).toFixed(1)} KB` : `${(size / (1 << 20)).toFixed(1)} MB`;
}

async function showPreview(runId, path, node) {
  const base = `/api/runs/${encodeURIComponent(runId)}`;
  let p;
  try { p = await api(`${base}/artifact?path=${encodeURIComponent(path)}`); } catch (err) { clear(node, el("p", { class: "error" }, err.message)); return; }
  const head = el("p", {}, el("strong", {}, p.path), el("span", { class: "muted" }, ` · ${sizeText(p.size)}${p.truncated ? " · preview cut" : ""}`));
  let body;
  if (p.kind === "image") body = el("img", { src: `${base}/image?path=${encodeURIComponent(path)}`, alt: path });
  else if (p.kind === "csv" && p.rows && p.rows.length) body = table(p.rows[0], p.rows.slice(1));
  else if (p.data !== undefined && p.data !== null) body = el("pre", {}, JSON.stringify(p.data, null, 2));
  else if (p.text !== undefined) body = el("pre", {}, p.text);
  else body = el("p", { class: "muted" }, "Binary file: no preview.");
  clear(node, head, p.kind === "mlmodel" ? el("p", { class: "muted" }, "MLmodel (model format)") : null, body);
}

async function showSource(run, node) {
  const s = run.source || {};
  const rows = [
    ["commit", s.commit || "(none)"], ["branch", s.branch || ""],
    ["uncommitted changes", s.dirty ? "yes" : "no"], ["entry point", s.entry_point || ""],
  ];
  if (s.snapshot) rows.push(["snapshot", s.snapshot]);
  const parts = [table(["source", ""], rows)];
  if (s.dirty) {
    const { diff } = await api(`/api/runs/${encodeURIComponent(run.run_id)}/diff`);
    parts.push(diff ? el("pre", { id: "diff" }, diff) : el("p", { class: "muted" }, "The snapshot of the uncommitted changes was not kept."));
  }
  clear(node, parts);
}
