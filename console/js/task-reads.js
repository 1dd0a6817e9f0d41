// What the task page asks the API, taken into its state (task-state.js): the task's history and
// the states it missed, the flow document of the version the task runs, and its branch records
// (task-branches.js). No DOM: `api` is anything with the Api methods used here.

import { readBranches } from "./task-branches.js";
import { lastSeq, latest, mergeStates, setBranches } from "./task-state.js";

/** `fn` run once at a time: calls while it runs make one more run after it, not one run each. */
export function coalesced(fn) {
  let running = null;
  let again = false;
  return function run() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await fn();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
}

export function taskReads(api, taskId, model) {
  /** The flow document of the version the task runs, read again only when that version changes. */
  async function loadDocument() {
    const state = latest(model);
    if (!state || (model.document && model.flowVersion === state.flowVersion)) return;
    const flow = await api.getFlow(state.flowId, state.flowVersion);
    model.document = flow ? flow.document : null;
    model.flowVersion = state.flowVersion;
  }

  /** The states after the last one the page has (after a jump in seq, or a reconnection). */
  async function fillGap() {
    const missed = await api.history(taskId, lastSeq(model));
    if (missed.length) model.history = mergeStates(model.history, missed);
  }

  // A forEach step's items may all appear on the subscription at once: one read serves them all.
  const loadBranches = coalesced(async () => {
    setBranches(model, await readBranches(api, taskId, model.document, model.history));
  });

  /** Everything the page shows at first; false when there is no such task. */
  async function load() {
    model.history = await api.history(taskId, 0);
    if (!model.history.length) {
      const state = await api.getTask(taskId);
      if (!state) return false;
      model.history = [state];
    }
    await loadDocument();
    await loadBranches();
    return true;
  }

  return { load, fillGap, loadDocument, loadBranches };
}
