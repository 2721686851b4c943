// Commits: one metric along the first-parent history of a branch, one point per commit that
// has runs (the best, latest or mean of its runs).
import { plotText, plotly } from "./charts.js";
import { api, clear, el, fmtValue, hashParams, query, runLink } from "./dom.js";

const AGGREGATES = { min: (v) => Math.min(...v), max: (v) => Math.max(...v), mean: (v) => v.reduce((a, b) => a + b, 0) / v.length, latest: (v) => v[0] };
const state = { rev: "HEAD", metric: null, agg: "min" };

export async function commitsPage(main) {
  const Plotly = await plotly();
  const wanted = hashParams().get("rev");
  if (wanted) state.rev = wanted;
  const error = el("div", { class: "error", id: "commits-error" });
  const chart = el("div", { class: "chart", id: "commit-chart" });
  const list = el("div", { id: "commit-list" });
  const rev = el("input", { type: "search", value: state.rev, placeholder: "branch, tag or commit", onkeydown: (e) => { if (e.key === "Enter") { state.rev = rev.value || "HEAD"; load(); } } });
  const metricSelect = el("select", { id: "commit-metric", onchange: (e) => { state.metric = e.target.value; draw(last); } });
  const aggSelect = el("select", { onchange: (e) => { state.agg = e.target.value; draw(last); } }, Object.keys(AGGREGATES).map((a) => el("option", { value: a, selected: a === state.agg }, a)));
  clear(main, el("h1", {}, "Metric along the commit history"),
    el("div", { class: "toolbar" }, "history of ", rev, " metric ", metricSelect, " per commit ", aggSelect), error, chart, list);
  let last = null;

  async function load() {
    try { last = await api("/api/commits?" + query({ rev: state.rev, limit: 200 })); } catch (err) { error.textContent = err.message; return; }
    error.textContent = "";
    if (!last.metric_keys.includes(state.metric)) state.metric = last.metric_keys[0] || null;
    clear(metricSelect, last.metric_keys.map((k) => el("option", { value: k, selected: k === state.metric }, k)));
    draw(last);
  }

  function draw(data) {
    if (!data) return;
    const history = [...data.commits].reverse(); // oldest first, along the x axis
    const xs = [], ys = [], texts = [];
    history.forEach((c, i) => {
      const v = c.runs.map((r) => r.metrics[state.metric]).filter((x) => typeof x === "number");
      if (!v.length) return;
      xs.push(i); ys.push(AGGREGATES[state.agg](v)); texts.push(plotText(`${c.commit.slice(0, 8)} ${c.subject} (${v.length} runs)`));
    });
    Plotly.react(chart, [{ x: xs, y: ys, text: texts, mode: "lines+markers", type: "scatter", hoverinfo: "text+y" }], {
      margin: { l: 55, r: 20, t: 20, b: 60 }, height: 340, yaxis: { title: { text: plotText(state.metric) } },
      xaxis: { title: { text: plotText(`first-parent history of ${state.rev} (oldest → newest)`) }, tickvals: xs, ticktext: xs.map((i) => history[i].commit.slice(0, 7)) },
    }, { displaylogo: false, responsive: true });
    clear(list, el("table", {}, el("thead", {}, el("tr", {}, ["commit", "subject", "runs"].map((h) => el("th", {}, h)))),
      el("tbody", {}, data.commits.map((c) => el("tr", {}, el("td", {}, c.commit.slice(0, 10)), el("td", { class: "wrap" }, c.subject),
        el("td", { class: "wrap" }, c.runs.map((r, i) => [i ? ", " : "", runLink(r.run_id, r.run_name), state.metric in r.metrics ? ` (${fmtValue(r.metrics[state.metric])})` : ""])))))));
  }

  await load();
  return { refresh: load };
}
