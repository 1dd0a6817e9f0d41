// The task page's state (task-state.js) and how it finds its branch records (task-branches.js),
// with a fake API that answers histories from a table of records and counts what it was asked.

import assert from "node:assert/strict";
import { test } from "node:test";

import { coalesced, taskReads } from "../js/task-reads.js";
import { FOR_EACH_BATCH, branchRecordId, forkSeqs, readBranches, staticBranchIds } from "../js/task-branches.js";
import {
  actionsKey,
  allowedActions,
  applyState,
  branchStatesByStep,
  emptyTaskState,
  historyRows,
  lacksRecordId,
  resumeTargets,
  setBranches,
  waitingBranches,
} from "../js/task-state.js";

const FLOW = {
  id: "f",
  startAt: "prepare",
  steps: {
    prepare: { type: "transform", value: {}, next: "fan" },
    fan: {
      type: "parallel",
      branches: [
        { id: "a", startAt: "a1", steps: { a1: { type: "succeed" } } },
        { id: "b", startAt: "b1", steps: { b1: { type: "wait_for_event", timeoutSeconds: 5, next: "b2" }, b2: { type: "succeed" } } },
      ],
      next: "each",
    },
    each: { type: "parallel", forEach: { items: "{{ input.items }}", branch: { startAt: "p", steps: { p: { type: "poll" } } } }, next: "done" },
    done: { type: "succeed" },
  },
};

/** The task's history: one state per [status, step, redriveCount?], seq 1, 2, ... */
const task = (...rows) => rows.map(([status, currentStep, redriveCount = 0], i) => ({ seq: i + 1, status, currentStep, branchId: null, redriveCount }));
const branchStates = (branchId, ...rows) => rows.map(([status, currentStep], i) => ({ seq: i + 1, status, currentStep, branchId, updatedAt: `t${i}` }));

function fakeApi(records) {
  const asked = [];
  return {
    asked,
    async histories(recordIds) {
      asked.push(...recordIds);
      return recordIds.map((id) => records.get(id) || []);
    },
  };
}

test("the fork is at the first state of the task's latest stay at the parallel step", () => {
  const history = task(["PENDING", null], ["RUNNING", "prepare"], ["RUNNING", "fan"], ["RUNNING", "fan"], ["RUNNING", "each"]);
  assert.deepEqual(forkSeqs(history, "fan"), [3]);
  assert.deepEqual(forkSeqs(history, "each"), [5]);
  assert.deepEqual(forkSeqs(history, "done"), []);
  // the step ran again (a loop back into it): the latest stay forked afresh
  const again = task(["RUNNING", "fan"], ["RUNNING", "fan"], ["RUNNING", "prepare"], ["RUNNING", "fan"], ["RUNNING", "fan"]);
  assert.deepEqual(forkSeqs(again, "fan"), [4]);
  // a redrive inside the stay may have forked afresh (no records yet) or re-run the old ones
  const redriven = task(["RUNNING", "prepare"], ["RUNNING", "fan"], ["RUNNING", "fan"], ["FAILED", "fan"], ["RUNNING", "fan", 1], ["RUNNING", "fan", 1]);
  assert.deepEqual(forkSeqs(redriven, "fan"), [5, 2]);
});

test("branch ids come from the flow document: a branches step's own, a forEach step's item indexes", () => {
  assert.deepEqual(staticBranchIds(FLOW.steps.fan), ["a", "b"]);
  assert.equal(staticBranchIds(FLOW.steps.each), null);
  assert.deepEqual(staticBranchIds(FLOW.steps.done), []);
  assert.equal(branchRecordId("t1", 3, "a"), "t1~3~a");
});

test("a page opened after the fork reads exactly the branch records the task wrote", async () => {
  const history = task(["RUNNING", "prepare"], ["RUNNING", "fan"], ["RUNNING", "fan"]);
  const a = branchStates("a", ["RUNNING", "a1"], ["SUCCEEDED", "a1"]);
  const b = branchStates("b", ["RUNNING", "b1"], ["WAITING", "b1"]);
  const api = fakeApi(new Map([["t~2~a", a], ["t~2~b", b]]));
  const found = await readBranches(api, "t", FLOW, history);
  assert.deepEqual(api.asked, ["t~2~a", "t~2~b"]); // no guess at other seqs
  assert.deepEqual(
    found.map((r) => [r.stepId, r.branchId, r.recordId, r.states.length]),
    [
      ["fan", "a", "t~2~a", 2],
      ["fan", "b", "t~2~b", 2],
    ],
  );
});

test("a redrive that re-ran the old branches finds them at the stay's first seq", async () => {
  const history = task(["RUNNING", "fan"], ["RUNNING", "fan"], ["FAILED", "fan"], ["RUNNING", "fan", 1]);
  const api = fakeApi(new Map([["t~1~a", branchStates("a", ["RUNNING", "a1"])], ["t~1~b", branchStates("b", ["RUNNING", "b1"])]]));
  const found = await readBranches(api, "t", FLOW, history);
  assert.deepEqual(api.asked, ["t~4~a", "t~4~b", "t~1~a", "t~1~b"]);
  assert.deepEqual(
    found.map((r) => r.recordId),
    ["t~1~a", "t~1~b"],
  );
});

test("forEach items are read in batches up to the first index without a record", async () => {
  const count = FOR_EACH_BATCH + 3;
  const records = new Map();
  for (let i = 0; i < count; i++) records.set(`t~2~${i}`, branchStates(String(i), ["POLLING", "p"]));
  const api = fakeApi(records);
  const history = task(["RUNNING", "prepare"], ["RUNNING", "each"], ["RUNNING", "each"]);
  const found = await readBranches(api, "t", FLOW, history);
  assert.equal(found.length, count);
  assert.deepEqual(
    found.slice(0, 3).map((r) => [r.stepId, r.branchId]),
    [
      ["each", "0"],
      ["each", "1"],
      ["each", "2"],
    ],
  );
  assert.equal(api.asked.length, 2 * FOR_EACH_BATCH);
  assert.ok(api.asked.every((id) => id.startsWith("t~2~")));
});

test("live states: the task's seq jumping says a gap, a branch state joins its parallel step", () => {
  const model = emptyTaskState();
  model.document = FLOW;
  assert.equal(applyState(model, { seq: 1, status: "RUNNING", currentStep: "prepare", branchId: null }), false);
  assert.equal(applyState(model, { seq: 3, status: "RUNNING", currentStep: "fan", branchId: null }), true);
  assert.equal(applyState(model, { seq: 2, status: "RUNNING", currentStep: "fan", branchId: null }), false); // older: kept out
  assert.deepEqual(
    model.history.map((s) => s.seq),
    [1, 3],
  );

  const b1 = { seq: 1, status: "RUNNING", currentStep: "b1", branchId: "b" };
  applyState(model, b1);
  assert.equal(lacksRecordId(model, b1), true);
  setBranches(model, [{ stepId: "fan", branchId: "b", recordId: "t~3~b", states: branchStates("b", ["RUNNING", "b1"], ["WAITING", "b1"]) }]);
  assert.equal(lacksRecordId(model, b1), false);
  assert.equal(model.branches.get("fan/b").states.length, 2);
  applyState(model, { seq: 3, status: "SUCCEEDED", currentStep: "b2", branchId: "b" });
  assert.deepEqual(
    branchStatesByStep(model).get("fan").get("b").map((s) => s.status),
    ["RUNNING", "WAITING", "SUCCEEDED"],
  );
  // seq 1 again: the step forked afresh, the branch's earlier record is replaced
  applyState(model, { seq: 1, status: "RUNNING", currentStep: "b1", branchId: "b" });
  assert.deepEqual(model.branches.get("fan/b"), { stepId: "fan", branchId: "b", recordId: null, states: [b1] });
  // a branch id that fits no parallel step of the flow is left out
  applyState(model, { seq: 1, status: "RUNNING", currentStep: "zz", branchId: "zz" });
  assert.equal(model.branches.size, 1);
});

test("the history table, the waiting branches and the actions follow the state", () => {
  const model = emptyTaskState();
  model.document = FLOW;
  model.history = task(["RUNNING", "prepare"], ["RUNNING", "fan"]).map((s, i) => ({ ...s, updatedAt: `t${i}` }));
  setBranches(model, [{ stepId: "fan", branchId: "b", recordId: "t~2~b", states: branchStates("b", ["RUNNING", "b1"], ["WAITING", "b1"]) }]);
  assert.deepEqual(
    historyRows(model).map((r) => `${r.record} ${r.seq}`),
    ["task 1", "branch b 1", "task 2", "branch b 2"],
  );
  const state = model.history[1];
  const waiting = waitingBranches(model);
  assert.deepEqual(
    waiting.map((b) => b.recordId),
    ["t~2~b"],
  );
  assert.deepEqual(allowedActions(state, waiting), { resume: true, cancel: true, redrive: false });
  assert.deepEqual(resumeTargets("t", state, waiting), [["t~2~b", "branch b"]]);
  assert.equal(actionsKey(state, waiting), "RUNNING fan b=t~2~b");
  assert.deepEqual(allowedActions({ status: "FAILED" }, []), { resume: false, cancel: false, redrive: true });
  assert.deepEqual(allowedActions({ status: "SUCCEEDED" }, []), { resume: false, cancel: false, redrive: false });
  assert.deepEqual(resumeTargets("t", { status: "WAITING", currentStep: "w" }, []), [["t", "the task (step w)"]]);
});

test("the page's first read: the history, else the state alone; the flow; the branch records", async () => {
  const history = task(["RUNNING", "prepare"], ["RUNNING", "fan"], ["RUNNING", "fan"]).map((s) => ({ ...s, flowId: "f", flowVersion: 2 }));
  const api = {
    ...fakeApi(new Map([["t~2~a", branchStates("a", ["RUNNING", "a1"])]])),
    history: async (taskId, afterSeq) => (taskId === "t" ? history.filter((s) => s.seq > afterSeq) : []),
    getTask: async (taskId) => (taskId === "alone" ? { ...history[0], taskId } : null),
    getFlow: async (flowId, version) => ({ flowId, version, document: FLOW }),
  };
  const model = emptyTaskState();
  assert.equal(await taskReads(api, "t", model).load(), true);
  assert.equal(model.document, FLOW);
  assert.deepEqual([...model.branches.keys()], ["fan/a"]);
  const alone = emptyTaskState();
  assert.equal(await taskReads(api, "alone", alone).load(), true);
  assert.equal(alone.history.length, 1);
  assert.equal(await taskReads(api, "none", emptyTaskState()).load(), false);
});

test("calls while a read runs make one more read, not one each", async () => {
  let runs = 0;
  let release;
  const read = coalesced(async () => {
    runs++;
    if (runs === 1) await new Promise((resolve) => (release = resolve));
  });
  const first = read();
  const more = [read(), read(), read()];
  release();
  await Promise.all([first, ...more]);
  assert.equal(runs, 2);
  await read();
  assert.equal(runs, 3);
});
