// Compare: fields side by side with "differences only", overlaid metric curves,
// parallel coordinates (SVG, one line per run) and a scatter of any two fields.
import { drawChart, fetchSeries, plotText, plotly } from "./charts.js";
import { api, clear, el, fmtTime, fmtValue, hashParams, query, runLink } from "./dom.js";

const state = { diffOnly: false, metric: null, x: null, y: null, xAxis: "step" };

export async function comparePage(main) {
  const ids = hashParams().getAll("run_id");
  if (ids.length < 2) {
    clear(main, el("h1", {}, "Compare"), el("p", { class: "muted" }, "Select two or more runs in the ", el("a", { href: "#/runs" }, "runs table"), " and press Compare."));
    return {};
  }
  const [all, Plotly] = await Promise.all([api("/api/compare?" + query({ run_id: ids })), plotly()]);
  const names = all.runs.map((r) => plotText(r.run_name));
  const numeric = all.rows.filter((r) => /^(metrics|params)\./.test(r.field));
  const metrics = all.rows.filter((r) => r.field.startsWith("metrics.")).map((r) => r.field.slice(8));
  state.metric = metrics.includes(state.metric) ? state.metric : metrics[0];
  const fields = numeric.map((r) => r.field);
  state.x = fields.includes(state.x) ? state.x : fields.find((f) => f.startsWith("params.")) || fields[0];
  state.y = fields.includes(state.y) ? state.y : fields.find((f) => f.startsWith("metrics.")) || fields[0];

  const sideBySide = el("div", { id: "compare-table" });
  const curves = el("div", { class: "chart", id: "overlay" });
  const parallel = el("div", { class: "chart", id: "parallel" });
  const scatter = el("div", { class: "chart", id: "scatter" });
  const fieldSelect = (id, current, onchange) => el("select", { id, onchange }, fields.map((f) => el("option", { value: f, selected: f === current }, f)));
  clear(main,
    el("h1", {}, `Compare ${ids.length} runs`),
    el("label", {}, el("input", { type: "checkbox", id: "diff-only", checked: state.diffOnly, onchange: async (e) => { state.diffOnly = e.target.checked; await drawTable(); } }), " differences only"),
    sideBySide,
    metrics.length ? [
      el("h2", {}, "Metric curves"),
      el("div", { class: "toolbar" },
        el("select", { id: "overlay-metric", onchange: (e) => { state.metric = e.target.value; drawCurves(); } }, metrics.map((m) => el("option", { value: m, selected: m === state.metric }, m))),
        el("select", { onchange: (e) => { state.xAxis = e.target.value; drawCurves(); } }, ["step", "time", "relative"].map((v) => el("option", { value: v, selected: v === state.xAxis }, v)))),
      curves,
    ] : null,
    fields.length ? [
      el("h2", {}, "Parallel coordinates"), parallel,
      el("h2", {}, "Scatter"),
      el("div", { class: "toolbar" }, "x ", fieldSelect("scatter-x", state.x, (e) => { state.x = e.target.value; drawScatter(); }),
        " y ", fieldSelect("scatter-y", state.y, (e) => { state.y = e.target.value; drawScatter(); })),
      scatter,
    ] : null);

  async function drawTable() {
    const data = state.diffOnly ? await api("/api/compare?" + query({ run_id: ids, diff_only: 1 })) : all;
    const head = el("tr", {}, el("th", {}, "field"), all.runs.map((r) => el("th", {}, runLink(r.run_id, r.run_name))));
    const rows = data.rows.map((r) => el("tr", { class: r.differs ? "differs" : "" }, el("td", {}, r.field),
      r.values.map((v) => el("td", { class: "wrap" }, /_time$/.test(r.field) ? fmtTime(v) : fmtValue(v)))));
    clear(sideBySide, el("table", {}, el("thead", {}, head), el("tbody", {}, rows)));
  }

  async function drawCurves() {
    if (!state.metric) return;
    const list = await Promise.all(all.runs.map(async (r) => {
      try { return { name: r.run_name, series: await fetchSeries(r.run_id, state.metric, state.xAxis) }; } catch { return null; }
    }));
    await drawChart(curves, state.metric, list.filter(Boolean), { xAxis: state.xAxis });
  }

  function values(field) {
    const row = all.rows.find((r) => r.field === field);
    return row ? row.values : ids.map(() => null);
  }

  function drawParallel() {
    const dims = fields.slice(0, 12);
    const traces = all.runs.map((r, i) => ({
      x: dims.map((_, d) => d), y: dims.map((f) => scaled(f)[i]), name: names[i], mode: "lines+markers", type: "scatter",
      text: dims.map((f) => plotText(`${f}: ${fmtValue(values(f)[i])}`)), hoverinfo: "text+name",
    }));
    const ends = dims.flatMap((f, d) => axisEnds(f).map(([y, text]) => ({
      x: d, y, text: plotText(text), showarrow: false, font: { size: 10, color: "#656d76" }, yshift: y > 0.5 ? 10 : -10,
    })));
    Plotly.react(parallel, traces, {
      annotations: ends,
      margin: { l: 40, r: 20, t: 25, b: 90 }, height: 360, yaxis: { range: [-0.1, 1.1], showticklabels: false, zeroline: false },
      xaxis: { tickvals: dims.map((_, d) => d), ticktext: dims.map(plotText), tickangle: -30 }, legend: { orientation: "h", y: -0.45 },
    }, { displaylogo: false, responsive: true });
  }

  function axisType(list) {
    // Numbers (or numeric strings, as params are) on a linear axis; anything else as categories.
    return list.every((v) => v === null || Number.isFinite(Number(v))) ? "linear" : "category";
  }

  function axisEnds(field) {
    // The values at the bottom and top of one axis (lowest and highest, or first and last level).
    const raw = values(field);
    const nums = raw.map((v) => (typeof v === "number" ? v : Number(v)));
    if (nums.every((n) => Number.isFinite(n))) return [[0, fmtValue(Math.min(...nums))], [1, fmtValue(Math.max(...nums))]];
    const levels = [...new Set(raw.map(String))].sort();
    return [[0, levels[0]], [1, levels[levels.length - 1]]];
  }

  function scaled(field) {
    const raw = values(field);
    const nums = raw.map((v) => (typeof v === "number" ? v : Number(v)));
    if (nums.every((n) => Number.isFinite(n))) {
      const lo = Math.min(...nums), hi = Math.max(...nums);
      return nums.map((n) => (hi > lo ? (n - lo) / (hi - lo) : 0.5));
    }
    const levels = [...new Set(raw.map(String))].sort();
    return raw.map((v) => (levels.length > 1 ? levels.indexOf(String(v)) / (levels.length - 1) : 0.5));
  }

  function drawScatter() {
    const shown = (v) => (typeof v === "string" ? plotText(v) : v);
    const xs = values(state.x).map(shown), ys = values(state.y).map(shown);
    Plotly.react(scatter, [{ x: xs, y: ys, text: names, mode: "markers+text", textposition: "top center", type: "scatter", marker: { size: 10 } }], {
      margin: { l: 55, r: 20, t: 20, b: 45 }, height: 340, xaxis: { title: { text: plotText(state.x) }, type: axisType(xs) }, yaxis: { title: { text: plotText(state.y) }, type: axisType(ys) },
    }, { displaylogo: false, responsive: true });
  }

  await drawTable();
  if (fields.length) { drawParallel(); drawScatter(); }
  await drawCurves();
  document.dispatchEvent(new CustomEvent("compare-rendered"));
  return { refresh: drawCurves };
}
