// Which branch records a task's parallel steps wrote, from what the API answers (no DOM).
//
// A branch record's id is "<taskId>~<the task's seq at the fork>~<branchId>" (the runtime derives
// it so that a retried fork finds its own records). No answer names these ids: the task's
// history says which steps it was at, the flow document says each step's branch ids. So:
// - the fork seq: the runtime forks from the state that brought the task to the parallel step,
//   so it is the first seq of the task's latest stay at that step (a run of consecutive states at
//   it). A redrive inside that stay (`redriveCount` went up) re-runs the branches that did not
//   succeed in their records, unless the step had not forked yet, or a record was gone: then it
//   forked afresh at the redrive's seq. So the candidates are the stay's redrive seqs, newest
//   first, then its first seq; the first whose records have a history is the fork.
// - the branch ids: a `branches` step's own ids; a `forEach` step's items are "0", "1", ... up to
//   the number of items, which no answer carries: its records are read in batches of
//   FOR_EACH_BATCH until the first item that has no record (the fork writes them all at once).
// Every read is `getWorkflowHistory` of a record id derived this way; a record that does not exist
// answers an empty history.

import { branchesOf } from "./model.js";

export const FOR_EACH_BATCH = 32;

export function branchRecordId(taskId, forkSeq, branchId) {
  return `${taskId}~${forkSeq}~${branchId}`;
}

/** The seqs the task may have forked `stepId` at, the likeliest first (see above); [] if never there. */
export function forkSeqs(history, stepId) {
  const sorted = [...history].sort((a, b) => a.seq - b.seq);
  let end = sorted.length - 1;
  while (end >= 0 && sorted[end].currentStep !== stepId) end--;
  if (end < 0) return [];
  let start = end;
  while (start > 0 && sorted[start - 1].currentStep === stepId && sorted[start - 1].seq === sorted[start].seq - 1) start--;
  const redrives = [];
  for (let i = start + 1; i <= end; i++) {
    if ((sorted[i].redriveCount || 0) > (sorted[i - 1].redriveCount || 0)) redrives.push(sorted[i].seq);
  }
  return [...redrives.reverse(), sorted[start].seq];
}

/** A `branches` step's branch ids in order; null for a `forEach` step (its ids are its items' indexes). */
export function staticBranchIds(step) {
  const defined = branchesOf(step);
  if (!defined.length) return [];
  return defined[0].forEach ? null : defined.map((d) => d.id);
}

/** "start", "start + 1", ... : a batch of forEach item ids. */
export function itemIds(start, count = FOR_EACH_BATCH) {
  return Array.from({ length: count }, (_, i) => String(start + i));
}

/**
 * Every branch record of the task's parallel steps (each step's latest fork) with its states:
 * [{stepId, branchId, recordId, states}]. `api.histories(recordIds)` answers each record's whole
 * history (empty for no record), in order.
 */
export async function readBranches(api, taskId, document, history) {
  const found = [];
  for (const [stepId, step] of Object.entries((document && document.steps) || {})) {
    if (step.type !== "parallel") continue;
    const ids = staticBranchIds(step);
    for (const forkSeq of forkSeqs(history, stepId)) {
      const records = ids ? await readIds(api, taskId, forkSeq, ids) : await readItems(api, taskId, forkSeq);
      if (!records.length) continue;
      found.push(...records.map((r) => ({ stepId, ...r })));
      break;
    }
  }
  return found;
}

async function readIds(api, taskId, forkSeq, branchIds) {
  const recordIds = branchIds.map((b) => branchRecordId(taskId, forkSeq, b));
  const histories = await api.histories(recordIds);
  return branchIds
    .map((branchId, i) => ({ branchId, recordId: recordIds[i], states: histories[i] }))
    .filter((r) => r.states.length);
}

async function readItems(api, taskId, forkSeq) {
  const records = [];
  for (let start = 0; ; start += FOR_EACH_BATCH) {
    const batch = await readIds(api, taskId, forkSeq, itemIds(start));
    records.push(...batch);
    if (batch.length < FOR_EACH_BATCH) return records;
  }
}
