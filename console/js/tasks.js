// The tasks page: newest first, filtered by status and flow, paginated, live over the subscription.

import { STATE_FIELDS, decoded } from "./api.js";
import { STATUS_LABELS, age, errorBox, h, statusBadge } from "./dom.js";

const PAGE_SIZE = 20; // `limit=` in the address picks another (1-100, as the API allows)
const SUBSCRIPTION = `subscription($f: String) { workflowStateUpdated(flowId: $f) { ${STATE_FIELDS} } }`;

export async function tasksPage(ctx, params) {
  const status = params.get("status") || "";
  const flowId = params.get("flow") || "";
  const wanted = Number(params.get("limit"));
  const limit = Number.isInteger(wanted) && wanted >= 1 && wanted <= 100 ? wanted : PAGE_SIZE;
  const tokens = [null]; // the nextToken of each page seen so far (page i starts at tokens[i])
  let page = 0;
  let rows = [];
  let nextToken = null;

  const heading = h("h1", { tabindex: -1 }, "Tasks");
  const errors = h("div", { class: "errors" });
  const statusSelect = h(
    "select",
    { id: "filter-status", name: "status" },
    h("option", { value: "" }, "any status"),
    Object.entries(STATUS_LABELS).map(([value, label]) => h("option", { value, selected: value === status }, label)),
  );
  const flowSelect = h("select", { id: "filter-flow", name: "flow" }, h("option", { value: "" }, "any flow"));
  if (flowId) flowSelect.append(h("option", { value: flowId, selected: true }, flowId));
  const applyFilters = () => {
    const query = new URLSearchParams();
    if (statusSelect.value) query.set("status", statusSelect.value);
    if (flowSelect.value) query.set("flow", flowSelect.value);
    if (limit !== PAGE_SIZE) query.set("limit", String(limit));
    ctx.navigate(`#/tasks${query.toString() ? `?${query}` : ""}`);
  };
  statusSelect.addEventListener("change", applyFilters);
  flowSelect.addEventListener("change", applyFilters);
  const body = h("tbody");
  const summary = h("p", { class: "page-info", "aria-live": "polite" });
  const previous = h("button", { type: "button", disabled: true }, "← Newer");
  const next = h("button", { type: "button", disabled: true }, "Older →");
  const table = h(
    "table",
    { class: "tasks", "aria-describedby": "tasks-caption" },
    h("caption", { id: "tasks-caption" }, "Tasks, newest first"),
    h("thead", {}, h("tr", {}, ["Task", "Flow", "Status", "Current step", "Age"].map((c) => h("th", { scope: "col" }, c)))),
    body,
  );

  ctx.mount(
    heading,
    h(
      "form",
      { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "filter-status" }, "Status "),
      statusSelect,
      h("label", { for: "filter-flow" }, "Flow "),
      flowSelect,
    ),
    errors,
    h("div", { class: "table-wrap" }, table),
    h("nav", { class: "pager", "aria-label": "pages" }, previous, summary, next),
  );
  heading.focus();

  function row(state) {
    return h(
      "tr",
      { "data-task": state.taskId },
      h("td", {}, h("a", { href: `#/tasks/${encodeURIComponent(state.taskId)}`, class: "mono" }, state.taskId)),
      h("td", {}, h("a", { href: `#/flows/${encodeURIComponent(state.flowId)}` }, state.flowId), state.flowVersion ? ` v${state.flowVersion}` : ""),
      h("td", { class: "status" }, statusBadge(state.status)),
      h("td", { class: "step" }, state.currentStep || "—"),
      h("td", { class: "age", "data-started": state.startedAt || "" }, age(state.startedAt)),
    );
  }

  function render() {
    body.replaceChildren(...rows.map(row));
    if (!rows.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No tasks.")));
    summary.textContent = `Page ${page + 1} · ${rows.length} task${rows.length === 1 ? "" : "s"}`;
    previous.disabled = page === 0;
    next.disabled = !nextToken;
  }

  async function load() {
    errors.replaceChildren();
    try {
      const answer = await ctx.api.listTasks({ status, flowId, limit, nextToken: tokens[page] });
      rows = answer.items;
      nextToken = answer.nextToken;
      render();
    } catch (error) {
      errors.replaceChildren(errorBox(error));
    }
  }
  previous.addEventListener("click", () => {
    page = Math.max(0, page - 1);
    load();
  });
  next.addEventListener("click", () => {
    if (!nextToken) return;
    tokens[page + 1] = nextToken;
    page += 1;
    load();
  });

  ctx.api
    .allFlows()
    .then((flows) => {
      for (const flow of flows) if (flow.flowId !== flowId) flowSelect.append(h("option", { value: flow.flowId }, flow.flowId));
    })
    .catch((error) => errors.append(errorBox(error)));

  const unsubscribe = ctx.realtime.subscribe(SUBSCRIPTION, flowId ? { f: flowId } : {}, {
    onData: (data) => {
      if (!data.workflowStateUpdated || data.workflowStateUpdated.branchId) return;
      const state = decoded(data.workflowStateUpdated);
      const index = rows.findIndex((r) => r.taskId === state.taskId);
      if (index >= 0) {
        if (state.seq >= rows[index].seq) rows[index] = state;
      } else if (page === 0 && (!status || state.status === status)) {
        rows = [state, ...rows].slice(0, limit);
      } else return;
      render();
    },
    onStarted: () => load(), // after each (re)connection: what changed while not subscribed
    onError: (errs) => errors.replaceChildren(errorBox({ errors: errs })),
  });
  const ticker = setInterval(() => {
    for (const cell of body.querySelectorAll("td.age")) cell.textContent = age(cell.dataset.started);
  }, 5000);
  await load();
  return () => {
    unsubscribe();
    clearInterval(ticker);
  };
}
