// One task: its flow's graph coloured by what happened to each step, live over the subscription
// (gaps filled from getWorkflowHistory(afterSeq)), its history, output or error, and the actions.
// This module wires the parts together: the state is task-state.js, what is read task-reads.js
// (branch records: task-branches.js), the views task-graph.js, task-views.js and task-actions.js.

import { STATE_FIELDS, decoded } from "./api.js";
import { errorBox, h } from "./dom.js";
import { taskView } from "./state.js";
import { actionsPanel } from "./task-actions.js";
import { graphPanel } from "./task-graph.js";
import { taskReads } from "./task-reads.js";
import { applyState, branchStatesByStep, emptyTaskState, historyRows, lacksRecordId, latest, waitingBranches } from "./task-state.js";
import { historyRowsOf, historySection, outcomeParts, summaryRows } from "./task-views.js";

const SUBSCRIPTION = `subscription($t: ID) { workflowStateUpdated(taskId: $t) { ${STATE_FIELDS} } }`;

export async function taskPage(ctx, taskId) {
  const heading = h("h1", { tabindex: -1 }, "Task ", h("span", { class: "mono" }, taskId));
  const errors = h("div", { class: "errors" });
  ctx.mount(heading, errors, h("p", {}, "Loading…"));
  heading.focus();

  const model = emptyTaskState();
  let disposed = false;
  const summary = h("dl", { class: "summary" });
  const graph = graphPanel();
  const historyBody = h("tbody");
  const outcome = h("section", { class: "outcome", "aria-labelledby": "outcome-heading" });
  const actions = actionsPanel(ctx.api, taskId, (state) => {
    applyState(model, state);
    render();
  });
  const showError = (error) => errors.replaceChildren(errorBox(error));
  const reads = taskReads(ctx.api, taskId, model);

  function render() {
    const state = latest(model);
    if (disposed || !state) return;
    summary.replaceChildren(...summaryRows(state));
    if (model.document) graph.render(model.document, taskView(model.document, model.history, branchStatesByStep(model)));
    historyBody.replaceChildren(...historyRowsOf(historyRows(model)));
    outcome.replaceChildren(...outcomeParts(state));
    actions.render(state, waitingBranches(model));
  }

  // Subscribe first, then read: a change committed in between arrives over one or the other.
  let started = false;
  const unsubscribe = ctx.realtime.subscribe(SUBSCRIPTION, { t: taskId }, {
    onData: async (data) => {
      if (!data.workflowStateUpdated || !started) return;
      const state = decoded(data.workflowStateUpdated); // AWSJSON fields arrive as JSON text
      const gap = applyState(model, state);
      try {
        if (gap) await reads.fillGap();
        if (!state.branchId) await reads.loadDocument();
        if (lacksRecordId(model, state)) await reads.loadBranches();
      } catch (error) {
        showError(error);
      }
      render();
    },
    onStarted: async () => {
      // after every (re)connection: fill whatever was committed while not subscribed
      if (!started) return;
      try {
        await reads.fillGap();
        await reads.loadBranches();
        render();
      } catch (error) {
        showError(error);
      }
    },
    onError: (errs) => showError({ errors: errs }),
  });

  let found = false;
  try {
    found = await reads.load();
    if (!found) showError({ errors: [{ errorType: "NOT_FOUND", message: `no task ${taskId}` }] });
  } catch (error) {
    showError(error);
  }
  if (!found) {
    ctx.mount(heading, errors);
    return unsubscribe;
  }
  started = true;
  await reads.fillGap().catch(() => {});

  ctx.mount(
    heading,
    errors,
    summary,
    h("div", { class: "split" }, graph.graph, h("aside", {}, actions.section, outcome, h("h2", {}, "Step"), graph.detail)),
    historySection(historyBody),
  );
  heading.focus();
  render();
  return () => {
    disposed = true;
    unsubscribe();
  };
}
