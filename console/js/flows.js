// The flows pages: every registered flow (latest version, retired or not), and one flow's graph,
// its versions and a form to start a task.

import { errorBox, h, json, time } from "./dom.js";
import { renderGraph } from "./graph.js";
import { flowGraph } from "./model.js";

export async function flowsPage(ctx) {
  const heading = h("h1", { tabindex: -1 }, "Flows");
  const errors = h("div", { class: "errors" });
  const body = h("tbody");
  const tokens = [null];
  let page = 0;
  let nextToken = null;
  const previous = h("button", { type: "button", disabled: true }, "← Previous");
  const next = h("button", { type: "button", disabled: true }, "Next →");
  ctx.mount(
    heading,
    errors,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "flows" },
        h("caption", {}, "Registered flows, latest version of each"),
        h("thead", {}, h("tr", {}, ["Flow", "Latest version", "Retired", "Updated", "Tasks"].map((c) => h("th", { scope: "col" }, c)))),
        body,
      ),
    ),
    h("nav", { class: "pager", "aria-label": "pages" }, previous, next),
  );
  heading.focus();
  async function load() {
    try {
      const answer = await ctx.api.listFlows(tokens[page]);
      nextToken = answer.nextToken;
      body.replaceChildren(
        ...answer.items.map((flow) =>
          h(
            "tr",
            { "data-flow": flow.flowId },
            h("td", {}, h("a", { href: `#/flows/${encodeURIComponent(flow.flowId)}` }, flow.flowId)),
            h("td", {}, `v${flow.version}`),
            h("td", {}, flow.retired ? h("span", { class: "badge status-aborted" }, "retired") : "no"),
            h("td", {}, time(flow.updatedAt)),
            h("td", {}, h("a", { href: `#/tasks?flow=${encodeURIComponent(flow.flowId)}` }, "tasks")),
          ),
        ),
      );
      if (!answer.items.length) body.append(h("tr", {}, h("td", { colspan: 5 }, "No flows registered.")));
      previous.disabled = page === 0;
      next.disabled = !nextToken;
    } catch (error) {
      errors.replaceChildren(errorBox(error));
    }
  }
  previous.addEventListener("click", () => {
    page = Math.max(0, page - 1);
    load();
  });
  next.addEventListener("click", () => {
    tokens[page + 1] = nextToken;
    page += 1;
    load();
  });
  await load();
}

export async function flowPage(ctx, flowId, params) {
  const heading = h("h1", { tabindex: -1 }, "Flow ", h("span", { class: "mono" }, flowId));
  const errors = h("div", { class: "errors" });
  ctx.mount(heading, errors);
  heading.focus();
  const wanted = params.get("version") ? Number(params.get("version")) : null;
  let latest;
  let flow;
  try {
    latest = await ctx.api.getFlow(flowId, null);
    flow = wanted && latest && wanted !== latest.version ? await ctx.api.getFlow(flowId, wanted) : latest;
  } catch (error) {
    errors.replaceChildren(errorBox(error));
    return;
  }
  if (!flow) {
    errors.replaceChildren(errorBox({ errors: [{ errorType: "NOT_FOUND", message: `no flow ${flowId}${wanted ? ` version ${wanted}` : ""}` }] }));
    return;
  }
  const versions = h(
    "nav",
    { class: "versions", "aria-label": "versions" },
    h("span", {}, "Versions: "),
    Array.from({ length: latest.version }, (_, i) => latest.version - i).map((v) =>
      h(
        "a",
        { href: `#/flows/${encodeURIComponent(flowId)}?version=${v}`, "aria-current": v === flow.version ? "page" : null, class: "version" },
        `v${v}${v === latest.version ? " (latest)" : ""}`,
      ),
    ),
  );
  const graph = flowGraph(flow.document);
  const detail = h("pre", { class: "step-detail", "aria-live": "polite" }, "Select a step to see its definition.");
  const svg = renderGraph(graph, null, (node) => {
    detail.textContent = `${node.id}\n${json(stepDefinition(flow.document, node))}`;
  });

  const input = h("textarea", { id: "start-input", rows: 6, spellcheck: "false" }, "{}");
  const name = h("input", { id: "start-name", type: "text", placeholder: "optional idempotency key" });
  const startErrors = h("div", { class: "errors" });
  const startButton = h("button", { type: "submit", disabled: latest.retired || null }, "Start task");
  const startForm = h(
    "form",
    { class: "action-form", "aria-labelledby": "start-heading" },
    h("h2", { id: "start-heading" }, "Start a task"),
    latest.retired ? h("p", {}, "This flow is retired: no new tasks.") : null,
    h("label", { for: "start-input" }, "Input (JSON object)"),
    input,
    h("label", { for: "start-name" }, "Name"),
    name,
    startButton,
    startErrors,
  );
  startForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    startErrors.replaceChildren();
    let value;
    try {
      value = JSON.parse(input.value || "{}");
    } catch (error) {
      startErrors.replaceChildren(errorBox({ errors: [{ errorType: "InvalidJSON", message: error.message }] }));
      return;
    }
    try {
      const state = await ctx.api.startTask(flowId, value, name.value.trim());
      ctx.navigate(`#/tasks/${encodeURIComponent(state.taskId)}`);
    } catch (error) {
      startErrors.replaceChildren(errorBox(error));
    }
  });

  ctx.mount(
    heading,
    h(
      "p",
      { class: "meta" },
      `version ${flow.version} · `,
      latest.retired ? h("span", { class: "badge status-aborted" }, "retired") : "active",
      ` · updated ${time(flow.updatedAt)} · `,
      h("a", { href: `#/tasks?flow=${encodeURIComponent(flowId)}` }, "tasks of this flow"),
    ),
    versions,
    errors,
    h(
      "div",
      { class: "split" },
      h("section", { class: "graph-panel", "aria-label": "graph" }, h("div", { class: "graph-scroll" }, svg), legend(false)),
      h("aside", {}, startForm, h("h2", {}, "Step"), detail, h("details", {}, h("summary", {}, "Flow document"), h("pre", {}, json(flow.document)))),
    ),
  );
  heading.focus();
}

export function stepDefinition(document, node) {
  if (!node.parent) return document.steps[node.stepId];
  const step = document.steps[node.parallel];
  const branch = step.branches ? step.branches.find((b) => b.id === node.branchId) : step.forEach.branch;
  return branch.steps[node.stepId];
}

export function legend(withStates) {
  const edges = [
    ["next", "next"],
    ["choice", "choice"],
    ["default", "default"],
    ["catch", "catch"],
    ["branch", "parallel branch"],
  ];
  const states = [
    ["done", "done"],
    ["running", "running"],
    ["waiting", "waiting"],
    ["polling", "polling"],
    ["failed", "failed"],
    ["cancelled", "cancelled"],
    ["not-reached", "not reached"],
  ];
  return h(
    "div",
    { class: "legend", "aria-label": "legend" },
    withStates ? h("ul", { class: "legend-states" }, states.map(([cls, label]) => h("li", {}, h("span", { class: `swatch state-${cls}` }), label))) : null,
    h("ul", { class: "legend-edges" }, edges.map(([cls, label]) => h("li", {}, h("span", { class: `line edge-${cls}` }), label))),
  );
}
