// What happened to each step of a task, from its recorded states (no DOM).
//
// The task's own record (branchId null) and each parallel branch's record have their own `seq`.
// A record's history says which steps it went through: every step it left is done, the step of its
// latest state is running / waiting / polling (with the number of checks so far) / failed /
// cancelled / done, and a step it never recorded is not reached.

import { EACH, branchesOf, flowGraph } from "./model.js";

export const FINAL = ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];

export const STATE_LABELS = {
  done: "done",
  running: "running",
  waiting: "waiting",
  polling: "polling",
  failed: "failed",
  cancelled: "cancelled",
  "not-reached": "not reached",
};

const PRIORITY = ["failed", "cancelled", "waiting", "polling", "running", "done", "not-reached"];

/** Step id -> {state, attempts} for one record's states (sorted by seq). */
export function recordStepStates(states) {
  const result = new Map();
  const sorted = [...states].sort((a, b) => a.seq - b.seq);
  let previous = null;
  for (const state of sorted) {
    if (!state.currentStep) continue;
    if (previous && previous !== state.currentStep) result.set(previous, { state: "done" });
    previous = state.currentStep;
  }
  const last = sorted[sorted.length - 1];
  if (!last || !last.currentStep) return result;
  const step = last.currentStep;
  let outcome;
  switch (last.status) {
    case "SUCCEEDED":
      outcome = { state: "done" };
      break;
    case "FAILED":
    case "TIMED_OUT": {
      const failedStep = (last.error && !last.error.branchId && last.error.stepId) || step;
      result.set(failedStep, { state: "failed" });
      if (failedStep !== step) outcome = { state: "done" };
      else return result;
      break;
    }
    case "ABORTED":
      outcome = { state: "cancelled" };
      break;
    case "WAITING":
      outcome = { state: "waiting" };
      break;
    case "POLLING": {
      let attempts = 0;
      for (let i = sorted.length - 1; i >= 0 && sorted[i].currentStep === step; i--) {
        if (sorted[i].status === "POLLING") attempts++;
      }
      outcome = { state: "polling", attempts };
      break;
    }
    default:
      outcome = { state: "running" };
  }
  result.set(step, outcome);
  return result;
}

/** The most telling of several states (a forEach template step shows the worst of its items). */
function worst(a, b) {
  return PRIORITY.indexOf(a) <= PRIORITY.indexOf(b) ? a : b;
}

/**
 * Node id -> {state, label, counts?} for every node of the flow graph, and each parallel step's
 * branch progress: {parallelId: {total, done, failed, running}}.
 * `taskStates`: the task record's states; `branches`: parallel step id -> (branchId -> that branch
 * record's states).
 */
export function taskView(document, taskStates, branches) {
  const graph = flowGraph(document);
  const top = recordStepStates(taskStates);
  const nodes = new Map();
  for (const node of graph.nodes) nodes.set(node.id, { state: "not-reached" });
  for (const [stepId, value] of top) if (nodes.has(stepId)) nodes.set(stepId, value);
  const progress = {};
  const clusters = {}; // cluster id -> what its branch records say, e.g. "SUCCEEDED" or "3 of 5 done"
  for (const [stepId, step] of Object.entries(document.steps || {})) {
    if (step.type !== "parallel") continue;
    const defined = branchesOf(step);
    const counts = { total: 0, done: 0, failed: 0, running: 0 };
    const perNode = new Map(); // node id -> {state, counts}
    for (const [branchId, states] of branches.get(stepId) || []) {
      const isStatic = defined.some((d) => !d.forEach && d.id === branchId);
      const cluster = isStatic ? branchId : defined.some((d) => d.forEach) ? EACH : null;
      if (cluster === null) continue;
      const sorted = [...states].sort((a, b) => a.seq - b.seq);
      const last = sorted[sorted.length - 1];
      if (!last) continue;
      counts.total++;
      if (last.status === "SUCCEEDED") counts.done++;
      else if (FINAL.includes(last.status)) counts.failed++;
      else counts.running++;
      if (isStatic) clusters[`${stepId}/${cluster}`] = last.status.toLowerCase().replace("_", " ");
      for (const [inner, value] of recordStepStates(sorted)) {
        const id = `${stepId}/${cluster}/${inner}`;
        if (!nodes.has(id)) continue;
        const seen = perNode.get(id) || { state: value.state, counts: {}, attempts: value.attempts };
        seen.state = worst(seen.state, value.state);
        seen.counts[value.state] = (seen.counts[value.state] || 0) + 1;
        perNode.set(id, seen);
      }
    }
    for (const [id, seen] of perNode) nodes.set(id, seen);
    if (counts.total) progress[stepId] = counts;
    if (counts.total && defined.some((d) => d.forEach)) {
      clusters[`${stepId}/${EACH}`] = `${counts.done} of ${counts.total} items done${counts.failed ? `, ${counts.failed} failed` : ""}`;
    }
  }
  return { graph, nodes, progress, branches: clusters };
}

/** The text a node shows under its id and type: its state, attempts, and counts for forEach steps. */
export function stateText(value, progress) {
  let text = STATE_LABELS[value.state] || value.state;
  if (value.state === "polling" && value.attempts) text += ` · attempt ${value.attempts}`;
  if (value.counts && Object.values(value.counts).reduce((a, b) => a + b, 0) > 1) {
    text = Object.entries(value.counts)
      .map(([state, n]) => `${n} ${STATE_LABELS[state] || state}`)
      .join(", ");
  }
  if (progress) {
    text += ` · ${progress.done}/${progress.total} branches done`;
    if (progress.failed) text += `, ${progress.failed} failed`;
  }
  return text;
}
