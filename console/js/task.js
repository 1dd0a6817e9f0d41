// One task: its flow's graph coloured by what happened to each step, live over the subscription
// (gaps filled from getWorkflowHistory(afterSeq)), its history, output or error, and the actions.

import { STATE_FIELDS, decoded } from "./api.js";
import { age, errorBox, h, json, statusBadge, time } from "./dom.js";
import { legend, stepDefinition } from "./flows.js";
import { renderGraph } from "./graph.js";
import { branchesOf, parallelOf } from "./model.js";
import { FINAL, taskView } from "./state.js";

const SUBSCRIPTION = `subscription($t: ID) { workflowStateUpdated(taskId: $t) { ${STATE_FIELDS} } }`;
const FOR_EACH_PROBE = 32; // forEach branch records looked up per request

/** Keep each seq once, in order. */
function merge(list, states) {
  const bySeq = new Map(list.map((s) => [s.seq, s]));
  for (const s of states) bySeq.set(s.seq, s);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

export async function taskPage(ctx, taskId) {
  const heading = h("h1", { tabindex: -1 }, "Task ", h("span", { class: "mono" }, taskId));
  const errors = h("div", { class: "errors" });
  ctx.mount(heading, errors, h("p", {}, "Loading…"));
  heading.focus();

  let history = []; // the task record's states
  const branches = new Map(); // "<parallel step>/<branchId>" -> {stepId, branchId, recordId, states}
  let document = null;
  let flowVersion = null;
  let focused = null;
  let disposed = false;

  const summary = h("dl", { class: "summary" });
  const graphBox = h("div", { class: "graph-scroll" });
  const detail = h("pre", { class: "step-detail", "aria-live": "polite" }, "Select a step to see its definition.");
  const historyBody = h("tbody");
  const outcome = h("section", { class: "outcome", "aria-labelledby": "outcome-heading" });
  const actionErrors = h("div", { class: "errors", id: "action-errors" });
  const actions = h("section", { class: "actions", "aria-labelledby": "actions-heading" });
  const live = h("p", { class: "live-note", "aria-live": "polite" });

  const latest = () => history[history.length - 1];
  const lastSeq = () => (history.length ? latest().seq : 0);

  async function fillGap() {
    const missed = await ctx.api.history(taskId, lastSeq());
    if (missed.length) history = merge(history, missed);
  }

  /** Branch records of parallel steps, so a page opened late still shows every branch. */
  async function discoverBranches() {
    if (!document) return;
    for (const [stepId, step] of Object.entries(document.steps || {})) {
      if (step.type !== "parallel") continue;
      const atStep = history.filter((s) => s.currentStep === stepId).map((s) => s.seq);
      if (!atStep.length) continue;
      // A branch record's id is "<taskId>~<the task's seq at the fork>~<branchId>".
      const candidates = [...new Set(atStep.flatMap((seq) => [seq - 1, seq]))].sort((a, b) => b - a);
      const defined = branchesOf(step);
      const firstIds = defined[0].forEach ? ["0"] : defined.map((d) => d.id);
      const probes = candidates.flatMap((seq) => firstIds.map((b) => `${taskId}~${seq}~${b}`));
      const found = await ctx.api.statesOf(probes);
      const hit = probes.find((_, i) => found[i]);
      if (!hit) continue;
      const forkSeq = hit.split("~").slice(-2)[0];
      let ids = firstIds;
      if (defined[0].forEach) {
        ids = [];
        for (let start = 0; ; start += FOR_EACH_PROBE) {
          const batch = Array.from({ length: FOR_EACH_PROBE }, (_, i) => String(start + i));
          const states = await ctx.api.statesOf(batch.map((b) => `${taskId}~${forkSeq}~${b}`));
          const present = batch.filter((_, i) => states[i]);
          ids.push(...present);
          if (present.length < FOR_EACH_PROBE) break;
        }
      }
      for (const branchId of ids) {
        const recordId = `${taskId}~${forkSeq}~${branchId}`;
        const key = `${stepId}/${branchId}`;
        const known = branches.get(key);
        const states = await ctx.api.history(recordId, 0);
        if (!states.length) continue;
        const kept = known && (known.recordId === recordId || !known.recordId) ? merge(known.states, states) : states;
        branches.set(key, { stepId, branchId, recordId, states: kept });
      }
    }
  }

  /** The branch's entry, or null when the flow has no parallel step it fits (an unknown version). */
  function branchOf(state) {
    const stepId = document && parallelOf(document, state.branchId, state.currentStep, latest() && latest().currentStep);
    return stepId ? `${stepId}/${state.branchId}` : null;
  }

  function applyLive(state) {
    if (state.branchId) {
      const key = branchOf(state);
      if (!key) return false;
      const known = branches.get(key);
      // seq 1 again after more: a new fork (the step ran again) replaces the branch's earlier record
      const refork = known && state.seq === 1 && known.states.some((s) => s.seq > 1);
      if (!known || refork) {
        branches.set(key, { stepId: key.slice(0, -state.branchId.length - 1), branchId: state.branchId, recordId: null, states: [state] });
      } else known.states = merge(known.states, [state]);
      return false;
    }
    if (state.seq <= lastSeq()) return false;
    const gap = state.seq > lastSeq() + 1;
    history = merge(history, [state]);
    return gap;
  }

  async function loadDocument() {
    const state = latest();
    if (!state || (document && flowVersion === state.flowVersion)) return;
    const flow = await ctx.api.getFlow(state.flowId, state.flowVersion);
    document = flow ? flow.document : null;
    flowVersion = state.flowVersion;
  }

  function render() {
    if (disposed) return;
    const state = latest();
    if (!state) return;
    summary.replaceChildren(
      ...[
        ["Status", statusBadge(state.status)],
        ["Flow", h("a", { href: `#/flows/${encodeURIComponent(state.flowId)}?version=${state.flowVersion}` }, `${state.flowId} v${state.flowVersion}`)],
        ["Current step", state.currentStep || "—"],
        ["Started", `${time(state.startedAt)} (${age(state.startedAt)} ago)`],
        ["Updated", time(state.updatedAt)],
        ["Seq", String(state.seq)],
        ["Redrives", String(state.redriveCount || 0)],
      ].map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", { "data-field": k.toLowerCase().replace(" ", "-") }, v))),
    );
    if (document) {
      const byStep = new Map();
      for (const b of branches.values()) {
        if (!byStep.has(b.stepId)) byStep.set(b.stepId, new Map());
        byStep.get(b.stepId).set(b.branchId, b.states);
      }
      const view = taskView(document, history, byStep);
      const active = window.document.activeElement;
      focused = active && active.dataset && active.dataset.node ? active.dataset.node : focused;
      const hadFocus = active && active.closest && active.closest(".graph-scroll");
      const svg = renderGraph(view.graph, view, (node) => {
        focused = node.id;
        detail.textContent = `${node.id}\n${json(stepDefinition(document, node))}`;
      });
      graphBox.replaceChildren(svg);
      if (!centred) centred = centre(svg);
      if (hadFocus && focused) {
        const again = svg.querySelector(`[data-node="${CSS.escape(focused)}"]`);
        if (again) again.focus();
      }
      renderStepList(view);
    }
    renderHistory();
    renderOutcome(state);
    renderActions(state);
  }

  let centred = false;
  /** Once, bring the step that most needs a look into view when the graph is wider than its box. */
  function centre(svg) {
    const wanted = ["waiting", "failed", "polling", "running"]
      .map((state) => svg.querySelector(`.node.state-${state}`))
      .find(Boolean);
    if (!wanted || !graphBox.isConnected) return false;
    const box = graphBox.getBoundingClientRect();
    const at = wanted.getBoundingClientRect();
    graphBox.scrollLeft += at.left + at.width / 2 - (box.left + box.width / 2);
    graphBox.scrollTop += at.top + at.height / 2 - (box.top + box.height / 2);
    return true;
  }

  const stepList = h("ul", { class: "step-list" });
  function renderStepList(view) {
    stepList.replaceChildren(
      ...view.graph.nodes.map((node) => {
        const value = view.nodes.get(node.id);
        return h("li", { "data-step": node.id }, h("span", { class: `swatch state-${value.state}` }), `${node.id} (${node.type}): `, h("span", { class: "step-state" }, value.state.replace("-", " ")));
      }),
    );
  }

  function renderHistory() {
    const rows = [
      ...history.map((s) => ({ ...s, record: "task" })),
      ...[...branches.values()].flatMap((b) => b.states.map((s) => ({ ...s, record: `branch ${b.branchId}` }))),
    ].sort((a, b) => (a.updatedAt || "").localeCompare(b.updatedAt || "") || a.seq - b.seq);
    historyBody.replaceChildren(
      ...rows.map((s) =>
        h(
          "tr",
          { "data-seq": s.record === "task" ? s.seq : null },
          h("td", {}, String(s.seq)),
          h("td", {}, s.record),
          h("td", { class: "mono" }, time(s.updatedAt)),
          h("td", {}, statusBadge(s.status)),
          h("td", {}, s.currentStep || "—"),
          h("td", {}, s.error ? `${s.error.errorName}: ${s.error.errorMessage || ""}` : ""),
        ),
      ),
    );
  }

  function renderOutcome(state) {
    const parts = [h("h2", { id: "outcome-heading" }, state.error ? "Error" : "Output")];
    if (state.error) {
      parts.push(h("p", { class: "error-summary" }, h("strong", {}, state.error.errorName), `: ${state.error.errorMessage || ""}`));
      parts.push(h("pre", { class: "task-error" }, json(state.error)));
    } else if (state.status === "SUCCEEDED") parts.push(h("pre", { class: "task-output" }, json(state.output)));
    else parts.push(h("p", {}, "Not finished yet."));
    if (state.waitingFor) parts.push(h("h3", {}, "Waiting for"), h("pre", {}, json(state.waitingFor)));
    outcome.replaceChildren(...parts);
  }

  async function act(label, run) {
    actionErrors.replaceChildren();
    try {
      const state = await run();
      applyLive(state);
      live.textContent = `${label}: ${state.status}`;
      render();
    } catch (error) {
      actionErrors.replaceChildren(errorBox(error));
    }
  }

  let actionsFor = null;
  function renderActions(state) {
    const waitingBranches = [...branches.values()].filter((b) => b.states.length && b.states[b.states.length - 1].status === "WAITING");
    const key = `${state.status} ${state.currentStep} ${waitingBranches.map((b) => `${b.branchId}=${b.recordId}`).join(",")}`;
    if (actionsFor === key) return; // keep what the user is typing
    actionsFor = key;
    const parts = [h("h2", { id: "actions-heading" }, "Actions")];
    const final = FINAL.includes(state.status);
    if (state.status === "WAITING" || waitingBranches.length) parts.push(resumeForm(state, waitingBranches));
    if (!final) {
      const reason = h("input", { id: "cancel-reason", type: "text", placeholder: "optional" });
      parts.push(
        h(
          "form",
          {
            class: "action-form",
            onsubmit: (e) => {
              e.preventDefault();
              act("cancel", () => ctx.api.cancelTask(taskId, reason.value.trim()));
            },
          },
          h("label", { for: "cancel-reason" }, "Cancel reason"),
          reason,
          h("button", { type: "submit", class: "danger", id: "cancel-button" }, "Cancel task"),
        ),
      );
    }
    if (final && state.status !== "SUCCEEDED") {
      parts.push(
        h(
          "form",
          {
            class: "action-form",
            onsubmit: (e) => {
              e.preventDefault();
              act("redrive", () => ctx.api.redriveTask(taskId));
            },
          },
          h("p", {}, "Go on from the step that failed; steps that succeeded are not run again."),
          h("button", { type: "submit", id: "redrive-button" }, "Redrive task"),
        ),
      );
    }
    if (parts.length === 1) parts.push(h("p", {}, "None: the task succeeded."));
    parts.push(actionErrors, live);
    actions.replaceChildren(...parts);
  }

  function resumeForm(state, waitingBranches) {
    const token = h("input", { id: "resume-token", type: "text", required: true, autocomplete: "off", spellcheck: "false" });
    const records = [
      ...(state.status === "WAITING" ? [[taskId, `the task (step ${state.currentStep})`]] : []),
      ...waitingBranches.map((b) => [b.recordId || "", `branch ${b.branchId}${b.recordId ? "" : " (record id from the notification)"}`]),
    ];
    const record = h("input", { id: "resume-record", type: "text", value: records[0][0], spellcheck: "false" });
    const succeeded = h("input", { type: "radio", name: "resume-status", id: "resume-succeeded", value: "SUCCEEDED", checked: true });
    const failed = h("input", { type: "radio", name: "resume-status", id: "resume-failed", value: "FAILED" });
    const output = h("textarea", { id: "resume-output", rows: 4, spellcheck: "false" }, "{}");
    const errorName = h("input", { id: "resume-error-name", type: "text", value: "Rejected" });
    const errorMessage = h("input", { id: "resume-error-message", type: "text" });
    const outputBox = h("div", { class: "when-succeeded" }, h("label", { for: "resume-output" }, "Output (JSON)"), output);
    const errorFields = h(
      "div",
      { class: "when-failed", hidden: true },
      h("label", { for: "resume-error-name" }, "Error name"),
      errorName,
      h("label", { for: "resume-error-message" }, "Error message"),
      errorMessage,
    );
    const toggle = () => {
      outputBox.hidden = failed.checked;
      errorFields.hidden = !failed.checked;
    };
    succeeded.addEventListener("change", toggle);
    failed.addEventListener("change", toggle);
    return h(
      "form",
      {
        class: "action-form resume",
        "aria-labelledby": "resume-heading",
        onsubmit: (e) => {
          e.preventDefault();
          if (failed.checked) {
            act("resume", () =>
              ctx.api.resumeTask(record.value.trim(), token.value.trim(), "FAILED", undefined, {
                errorName: errorName.value.trim(),
                errorMessage: errorMessage.value.trim() || null,
              }),
            );
            return;
          }
          let value;
          try {
            value = JSON.parse(output.value || "null");
          } catch (error) {
            actionErrors.replaceChildren(errorBox({ errors: [{ errorType: "InvalidJSON", message: error.message }] }));
            return;
          }
          act("resume", () => ctx.api.resumeTask(record.value.trim(), token.value.trim(), "SUCCEEDED", value));
        },
      },
      h("h3", { id: "resume-heading" }, "Resume the wait"),
      h("p", { class: "hint" }, `Waiting: ${records.map((r) => r[1]).join("; ")}. The resume token is the one the wait's notification carried.`),
      h("label", { for: "resume-record" }, "Task or branch record id"),
      record,
      h("label", { for: "resume-token" }, "Resume token"),
      token,
      h("fieldset", {}, h("legend", {}, "Outcome"), succeeded, h("label", { for: "resume-succeeded" }, "Succeeded"), failed, h("label", { for: "resume-failed" }, "Failed")),
      outputBox,
      errorFields,
      h("button", { type: "submit", id: "resume-button" }, "Resume"),
    );
  }

  // Subscribe first, then read: a change committed in between arrives over one or the other.
  let started = false;
  const unsubscribe = ctx.realtime.subscribe(SUBSCRIPTION, { t: taskId }, {
    onData: async (data) => {
      if (!data.workflowStateUpdated || !started) return;
      const state = decoded(data.workflowStateUpdated); // AWSJSON fields arrive as JSON text
      const gap = applyLive(state);
      try {
        if (gap) await fillGap();
        if (!state.branchId) await loadDocument();
        const key = state.branchId && branchOf(state);
        if (key && branches.has(key) && !branches.get(key).recordId) await discoverBranches();
      } catch (error) {
        errors.replaceChildren(errorBox(error));
      }
      render();
    },
    onStarted: async () => {
      // after every (re)connection: fill whatever was committed while not subscribed
      if (!started) return;
      try {
        await fillGap();
        await discoverBranches();
        render();
      } catch (error) {
        errors.replaceChildren(errorBox(error));
      }
    },
    onError: (errs) => errors.replaceChildren(errorBox({ errors: errs })),
  });

  try {
    history = await ctx.api.history(taskId, 0);
    if (!history.length) {
      const state = await ctx.api.getTask(taskId);
      if (!state) {
        errors.replaceChildren(errorBox({ errors: [{ errorType: "NOT_FOUND", message: `no task ${taskId}` }] }));
        ctx.mount(heading, errors);
        return unsubscribe;
      }
      history = [state];
    }
    await loadDocument();
    await discoverBranches();
  } catch (error) {
    errors.replaceChildren(errorBox(error));
    ctx.mount(heading, errors);
    return unsubscribe;
  }
  started = true;
  await fillGap().catch(() => {});

  ctx.mount(
    heading,
    errors,
    summary,
    h(
      "div",
      { class: "split" },
      h(
        "section",
        { class: "graph-panel", "aria-label": "flow graph with step states" },
        graphBox,
        legend(true),
        h("details", { class: "steps-text" }, h("summary", {}, "Steps as text"), stepList),
      ),
      h("aside", {}, actions, outcome, h("h2", {}, "Step"), detail),
    ),
    h(
      "section",
      { "aria-labelledby": "history-heading" },
      h("h2", { id: "history-heading" }, "History"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "history" },
          h("thead", {}, h("tr", {}, ["Seq", "Record", "Time", "Status", "Step", "Error"].map((c) => h("th", { scope: "col" }, c)))),
          historyBody,
        ),
      ),
    ),
  );
  heading.focus();
  render();
  return () => {
    disposed = true;
    unsubscribe();
  };
}

