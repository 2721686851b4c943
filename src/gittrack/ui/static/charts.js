// Metric charts on plotly.js (its basic bundle, served by this server: no CDN).
import { api, query } from "./dom.js";

let loading = null;

export function plotly() {
  // The chart library is the largest file: it is loaded when the first chart is drawn.
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/vendor/plotly-basic.min.js";
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { loading = null; reject(new Error("the chart library could not be loaded")); };
      document.head.append(script);
    });
  }
  return loading;
}

export function plotText(value) {
  // Plotly reads a few HTML tags in names, titles, labels and hover text; user data must show
  // as typed, so its markup characters go in as entities (which plotly shows as characters).
  return String(value ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function smooth(values, weight) {
  // TensorBoard's debiased exponential moving average; weight 0 draws the raw series.
  if (!weight) return values;
  const out = [];
  let last = 0;
  let n = 0;
  for (const v of values) {
    last = last * weight + (1 - weight) * v;
    n += 1;
    out.push(last / (1 - Math.pow(weight, n)));
  }
  return out;
}

export async function fetchSeries(runId, key, xAxis, maxPoints = 2000) {
  return api(`/api/runs/${encodeURIComponent(runId)}/metric?` + query({ key, x: xAxis, max_points: maxPoints }));
}

function xValues(series) {
  return series.x_axis === "time" ? series.x.map((ms) => new Date(ms)) : series.x;
}

const AXIS_TITLES = { step: "step", time: "wall time", relative: "seconds since start" };

export async function drawChart(node, title, seriesList, { xAxis = "step", logY = false, smoothing = 0 } = {}) {
  const Plotly = await plotly();
  const traces = [];
  for (let { name, series } of seriesList) {
    const x = xValues(series);
    name = plotText(name);
    if (smoothing > 0) {
      traces.push({ x, y: series.y, name: `${name} (raw)`, mode: "lines", opacity: 0.25, showlegend: false, hoverinfo: "skip" });
    }
    traces.push({ x, y: smooth(series.y, smoothing), name, mode: series.y.length > 1 ? "lines" : "markers", type: "scatter" });
  }
  const layout = {
    title: { text: plotText(title), font: { size: 14 } },
    margin: { l: 55, r: 15, t: 35, b: 40 },
    xaxis: { title: { text: AXIS_TITLES[xAxis] } },
    yaxis: { type: logY ? "log" : "linear" },
    showlegend: seriesList.length > 1,
    legend: { orientation: "h" },
    height: 320,
  };
  return Plotly.react(node, traces, layout, { displaylogo: false, responsive: true });
}

export function purge(node) {
  if (window.Plotly && node) window.Plotly.purge(node);
}
