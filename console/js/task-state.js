// A task page's state as data (no DOM, no requests): the task record's history, its parallel
// branch records and the flow document the task runs, and what the views show from them.
//
// A branch record is {stepId, branchId, recordId, states}, keyed "<parallel step>/<branchId>";
// `recordId` is null while only the subscription told of it (its states carry the parent's taskId
// and the branchId, not the record's own id): task-branches.js reads it then.

import { parallelOf } from "./model.js";
import { FINAL } from "./state.js";

/** Keep each seq once, in order. */
export function mergeStates(list, states) {
  const bySeq = new Map(list.map((s) => [s.seq, s]));
  for (const s of states) bySeq.set(s.seq, s);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

export function emptyTaskState() {
  return { history: [], branches: new Map(), document: null, flowVersion: null };
}

/** The task record's latest state, or undefined before the first read. */
export function latest(model) {
  return model.history[model.history.length - 1];
}

export function lastSeq(model) {
  return model.history.length ? latest(model).seq : 0;
}

/** "<parallel step>/<branchId>" of a branch state, or null when the flow has no parallel step it fits. */
export function branchKey(model, state) {
  const now = latest(model);
  const stepId = model.document && parallelOf(model.document, state.branchId, state.currentStep, now && now.currentStep);
  return stepId ? `${stepId}/${state.branchId}` : null;
}

/**
 * Take one state (from the subscription or an action's answer) into the model. Answers true when
 * the task record's seq jumped past the next one: the states in between are to be read.
 */
export function applyState(model, state) {
  if (state.branchId) {
    applyBranchState(model, state);
    return false;
  }
  if (state.seq <= lastSeq(model)) return false;
  const gap = state.seq > lastSeq(model) + 1;
  model.history = mergeStates(model.history, [state]);
  return gap;
}

function applyBranchState(model, state) {
  const key = branchKey(model, state);
  if (!key) return;
  const known = model.branches.get(key);
  // seq 1 again after more: a new fork (the step ran again) replaces the branch's earlier record
  const refork = known && state.seq === 1 && known.states.some((s) => s.seq > 1);
  if (!known || refork) {
    const stepId = key.slice(0, -state.branchId.length - 1);
    model.branches.set(key, { stepId, branchId: state.branchId, recordId: null, states: [state] });
  } else known.states = mergeStates(known.states, [state]);
}

/** True when the branch of this state is known only from the subscription (its record id is to be read). */
export function lacksRecordId(model, state) {
  const key = state.branchId && branchKey(model, state);
  return Boolean(key && model.branches.has(key) && !model.branches.get(key).recordId);
}

/** Take the branch records read from the API (task-branches.js), keeping live states of the same record. */
export function setBranches(model, records) {
  for (const { stepId, branchId, recordId, states } of records) {
    const key = `${stepId}/${branchId}`;
    const known = model.branches.get(key);
    const same = known && (known.recordId === recordId || !known.recordId);
    model.branches.set(key, { stepId, branchId, recordId, states: same ? mergeStates(known.states, states) : states });
  }
}

/** Parallel step id -> (branchId -> that branch record's states), as state.js's taskView takes them. */
export function branchStatesByStep(model) {
  const byStep = new Map();
  for (const b of model.branches.values()) {
    if (!byStep.has(b.stepId)) byStep.set(b.stepId, new Map());
    byStep.get(b.stepId).set(b.branchId, b.states);
  }
  return byStep;
}

/** The history table: the task's and every branch's states, oldest first, each naming its record. */
export function historyRows(model) {
  return [
    ...model.history.map((s) => ({ ...s, record: "task" })),
    ...[...model.branches.values()].flatMap((b) => b.states.map((s) => ({ ...s, record: `branch ${b.branchId}` }))),
  ].sort((a, b) => (a.updatedAt || "").localeCompare(b.updatedAt || "") || a.seq - b.seq);
}

/** The branch records whose latest state is WAITING (each may be resumed). */
export function waitingBranches(model) {
  return [...model.branches.values()].filter((b) => b.states.length && b.states[b.states.length - 1].status === "WAITING");
}

/** What the actions depend on: while it is the same, the forms stay (and what the user typed in them). */
export function actionsKey(state, waiting) {
  return `${state.status} ${state.currentStep} ${waiting.map((b) => `${b.branchId}=${b.recordId}`).join(",")}`;
}

/** Which actions the task's state allows. */
export function allowedActions(state, waiting) {
  const final = FINAL.includes(state.status);
  return {
    resume: state.status === "WAITING" || waiting.length > 0,
    cancel: !final,
    redrive: final && state.status !== "SUCCEEDED",
  };
}

/** [record id, label] of each record a resume may be for: the task when it waits, then each waiting branch. */
export function resumeTargets(taskId, state, waiting) {
  return [
    ...(state.status === "WAITING" ? [[taskId, `the task (step ${state.currentStep})`]] : []),
    ...waiting.map((b) => [b.recordId || "", `branch ${b.branchId}${b.recordId ? "" : " (record id from the notification)"}`]),
  ];
}
