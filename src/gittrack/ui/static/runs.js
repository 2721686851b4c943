// The runs table: server-side search, sort and paging, a column chooser, nested runs
// collapsible under their parent, selection for Compare, CSV export.
import { api, clear, el, fmtDuration, fmtTime, fmtValue, hashParams, query, runLink } from "./dom.js";

const PAGE = 50;
const state = {
  experiments: null, filter: "", order: "attributes.start_time DESC", offset: 0,
  columns: null, selected: new Set(), expanded: new Set(), keys: null,
};

const FIXED = [
  { label: "Name", order: "attributes.run_name" },
  { label: "Status", order: "attributes.status" },
  { label: "Start", order: "attributes.start_time" },
  { label: "Duration", order: null },
  { label: "User", order: "attributes.user_id" },
  { label: "Commit", order: "tags.`mlflow.source.git.commit`" },
];

function quoteKey(key) {
  return /^[A-Za-z0-9_.]+$/.test(key) ? key : "`" + key + "`";
}

function orderKey(kind, key) { return `${kind}.${quoteKey(key)}`; }

function searchParams() {
  const [field, direction] = splitOrder(state.order);
  return {
    experiment_id: state.experiments || [], filter: state.filter,
    order_by: [`${field} ${direction}`, "attributes.run_id ASC"],
  };
}

function splitOrder(order) {
  const at = order.lastIndexOf(" ");
  return [order.slice(0, at), order.slice(at + 1)];
}

export async function runsPage(main) {
  const params = hashParams();
  const exp = params.getAll("experiment_id");
  const wantedFilter = params.get("filter");
  if (JSON.stringify(exp) !== JSON.stringify(state.experiments || [])) {
    state.experiments = exp; state.offset = 0; state.columns = null; state.selected.clear();
  }
  if (wantedFilter !== null) state.filter = wantedFilter;
  const search = el("input", { type: "search", id: "filter", placeholder: "filter, e.g. metrics.rmse < 0.8 and params.alpha = '0.5'", value: state.filter });
  const error = el("div", { class: "error", id: "filter-error", role: "alert" });
  const chooser = el("details", { class: "chooser" }, el("summary", { class: "button" }, "Columns"), el("div", { id: "column-list" }));
  const compare = el("button", { id: "compare-selected", disabled: true }, "Compare selected");
  const csv = el("a", { class: "button", id: "csv", href: "/api/runs.csv", download: "runs.csv" }, "CSV");
  const pager = el("span", { class: "pager" });
  const body = el("div", { id: "runs" });
  clear(main,
    el("h1", {}, "Runs"),
    el("div", { class: "toolbar" }, search, chooser, compare, csv),
    error, body, el("div", { class: "toolbar" }, pager));
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { state.filter = search.value; state.offset = 0; load(); }
  });
  compare.addEventListener("click", () => {
    location.hash = "#/compare?" + query({ run_id: [...state.selected] });
  });

  async function load() {
    const started = performance.now();
    let page;
    try {
      page = await api("/api/runs?" + query({ ...searchParams(), offset: state.offset, limit: PAGE }));
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    error.textContent = "";
    csv.setAttribute("href", "/api/runs.csv?" + query(searchParams()));
    if (state.columns === null) {
      state.columns = [
        ...page.metric_keys.slice(0, 4).map((k) => ["metrics", k]),
        ...page.param_keys.slice(0, 4).map((k) => ["params", k]),
      ];
    }
    state.keys = page;
    renderChooser(chooser.querySelector("#column-list"), page, () => render(page));
    render(page);
    renderPager(pager, page, load);
    main.dataset.renderMs = String(Math.round(performance.now() - started));
    document.dispatchEvent(new CustomEvent("runs-rendered"));
  }

  function render(page) {
    const headers = [el("th", {}, el("input", { type: "checkbox", title: "select all on this page", onchange: (e) => {
      for (const run of page.runs) e.target.checked ? state.selected.add(run.run_id) : state.selected.delete(run.run_id);
      render(page);
    } }))];
    const [field, direction] = splitOrder(state.order);
    const sortable = (label, order) => {
      if (!order) return el("th", {}, label);
      const cls = "sortable" + (order === field ? (direction === "ASC" ? " sorted-asc" : " sorted-desc") : "");
      return el("th", { class: cls, dataset: { order }, onclick: () => {
        state.order = `${order} ${order === field && direction === "DESC" ? "ASC" : "DESC"}`;
        state.offset = 0; load();
      } }, label);
    };
    for (const { label, order } of FIXED) headers.push(sortable(label, order));
    for (const [kind, key] of state.columns) headers.push(sortable(key, orderKey(kind, key)));
    const onPage = new Set(page.runs.map((r) => r.run_id));
    const children = new Map();
    for (const run of page.runs) {
      if (run.parent_run_id && onPage.has(run.parent_run_id)) {
        if (!children.has(run.parent_run_id)) children.set(run.parent_run_id, []);
        children.get(run.parent_run_id).push(run);
      }
    }
    const rows = [];
    for (const run of page.runs) {
      if (run.parent_run_id && onPage.has(run.parent_run_id)) continue;
      const kids = children.get(run.run_id) || [];
      rows.push(row(run, kids.length, false));
      if (state.expanded.has(run.run_id)) for (const kid of kids) rows.push(row(kid, 0, true));
    }
    clear(body, el("table", { id: "runs-table" }, el("thead", {}, el("tr", {}, headers)), el("tbody", {}, rows)));
    compareButtonState();

    function row(run, nKids, isChild) {
      const toggle = nKids
        ? el("button", { class: "toggle", title: `${nKids} nested runs`, onclick: () => {
          state.expanded.has(run.run_id) ? state.expanded.delete(run.run_id) : state.expanded.add(run.run_id);
          render(page);
        } }, state.expanded.has(run.run_id) ? "▾" : "▸")
        : el("span", { class: "toggle" });
      const cells = [
        el("td", {}, el("input", { type: "checkbox", checked: state.selected.has(run.run_id), onchange: (e) => {
          e.target.checked ? state.selected.add(run.run_id) : state.selected.delete(run.run_id);
          compareButtonState();
        } })),
        el("td", {}, toggle, runLink(run.run_id, run.run_name)),
        el("td", { class: `status-${run.status}` }, run.status),
        el("td", {}, fmtTime(run.start_time)),
        el("td", { class: "num" }, fmtDuration(run.duration_ms)),
        el("td", {}, run.user),
        el("td", { title: run.commit ? `${run.branch || ""} ${run.commit}${run.dirty ? " (uncommitted changes)" : ""}` : "" },
          run.commit ? run.commit.slice(0, 8) : "", run.dirty ? el("span", { class: "dirty", title: "made with uncommitted changes" }, "*") : null),
      ];
      for (const [kind, key] of state.columns) {
        const value = run[kind][key];
        cells.push(el("td", { class: kind === "metrics" ? "num" : "" }, fmtValue(value)));
      }
      return el("tr", { class: isChild ? "child" : "", dataset: { runId: run.run_id } }, cells);
    }
  }

  function compareButtonState() {
    compare.disabled = state.selected.size < 2;
    compare.textContent = `Compare selected (${state.selected.size})`;
  }

  await load();
  return { refresh: load };
}

function renderChooser(node, page, onChange) {
  const groups = [["metrics", page.metric_keys], ["params", page.param_keys], ["tags", page.tag_keys.filter((k) => !k.startsWith("mlflow."))]];
  clear(node, groups.map(([kind, keys]) => keys.length ? [
    el("strong", {}, kind),
    keys.map((key) => el("label", {}, el("input", {
      type: "checkbox", checked: state.columns.some(([k, c]) => k === kind && c === key),
      onchange: (e) => {
        state.columns = state.columns.filter(([k, c]) => !(k === kind && c === key));
        if (e.target.checked) state.columns.push([kind, key]);
        onChange();
      },
    }), " ", key)),
  ] : null));
}

function renderPager(node, page, load) {
  const last = Math.min(page.offset + PAGE, page.total);
  clear(node,
    el("button", { disabled: page.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE); load(); } }, "‹ Previous"),
    el("span", { id: "page-info" }, ` ${page.total ? page.offset + 1 : 0}–${last} of ${page.total} runs `),
    el("button", { disabled: last >= page.total, onclick: () => { state.offset += PAGE; load(); } }, "Next ›"));
}
