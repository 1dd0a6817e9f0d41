// One task: its flow's graph coloured by what happened to each step, live over the subscription
// (gaps filled from getWorkflowHistory(afterSeq)), its history, output or error, and the actions.
// This module wires the parts together: the state is task-state.js, the branch records are read
// by task-branches.js, the views are task-graph.js, task-views.js and task-actions.js.

import { STATE_FIELDS, decoded } from "./api.js";
import { errorBox, h } from "./dom.js";
import { taskView } from "./state.js";
import { actionsPanel } from "./task-actions.js";
import { readBranches } from "./task-branches.js";
import { graphPanel } from "./task-graph.js";
import {
  applyState,
  branchStatesByStep,
  emptyTaskState,
  historyRows,
  lacksRecordId,
  lastSeq,
  latest,
  mergeStates,
  setBranches,
  waitingBranches,
} from "./task-state.js";
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

  async function fillGap() {
    const missed = await ctx.api.history(taskId, lastSeq(model));
    if (missed.length) model.history = mergeStates(model.history, missed);
  }

  async function loadBranches() {
    setBranches(model, await readBranches(ctx.api, taskId, model.document, model.history));
  }

  async function loadDocument() {
    const state = latest(model);
    if (!state || (model.document && model.flowVersion === state.flowVersion)) return;
    const flow = await ctx.api.getFlow(state.flowId, state.flowVersion);
    model.document = flow ? flow.document : null;
    model.flowVersion = state.flowVersion;
  }

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
        if (gap) await fillGap();
        if (!state.branchId) await loadDocument();
        if (lacksRecordId(model, state)) await loadBranches();
      } catch (error) {
        showError(error);
      }
      render();
    },
    onStarted: async () => {
      // after every (re)connection: fill whatever was committed while not subscribed
      if (!started) return;
      try {
        await fillGap();
        await loadBranches();
        render();
      } catch (error) {
        showError(error);
      }
    },
    onError: (errs) => showError({ errors: errs }),
  });

  try {
    model.history = await ctx.api.history(taskId, 0);
    if (!model.history.length) {
      const state = await ctx.api.getTask(taskId);
      if (!state) {
        showError({ errors: [{ errorType: "NOT_FOUND", message: `no task ${taskId}` }] });
        ctx.mount(heading, errors);
        return unsubscribe;
      }
      model.history = [state];
    }
    await loadDocument();
    await loadBranches();
  } catch (error) {
    showError(error);
    ctx.mount(heading, errors);
    return unsubscribe;
  }
  started = true;
  await fillGap().catch(() => {});

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
