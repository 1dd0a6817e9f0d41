// The pure modules of the console (no DOM): a flow document as a graph, and a task's states as
// the state of each node. Run by `node --test console/test` (tests/unit/test_console_js.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import { flowGraph, parallelOf } from "../js/model.js";
import { recordStepStates, stateText, taskView } from "../js/state.js";

const FLOW = {
  id: "f",
  startAt: "prepare",
  steps: {
    prepare: { type: "transform", value: {}, next: "route", catch: "oops" },
    route: { type: "choice", choices: [{ path: "x", equals: 1, next: "fan" }], default: "oops" },
    fan: {
      type: "parallel",
      branches: [
        { id: "a", startAt: "a1", steps: { a1: { type: "transform", value: {}, next: "a2" }, a2: { type: "succeed" } } },
        { id: "b", startAt: "b1", steps: { b1: { type: "wait_for_event", timeoutSeconds: 5, next: "b2" }, b2: { type: "succeed" } } },
      ],
      next: "each",
    },
    each: { type: "parallel", forEach: { items: "{{ input.items }}", branch: { startAt: "p", steps: { p: { type: "poll" } } } }, next: "done" },
    done: { type: "succeed" },
    oops: { type: "fail", error: "Oops" },
  },
};

let seq = 0;
const at = (status, currentStep, extra = {}) => ({ seq: ++seq, status, currentStep, branchId: null, ...extra });

test("every step is a node, and every kind of edge is drawn", () => {
  const graph = flowGraph(FLOW);
  assert.deepEqual(
    graph.nodes.map((n) => n.id),
    ["prepare", "route", "fan", "fan/a/a1", "fan/a/a2", "fan/b/b1", "fan/b/b2", "each", "each/each/p", "done", "oops"],
  );
  const edges = graph.edges.map((e) => `${e.kind}:${e.from}>${e.to}`);
  for (const edge of [
    "next:prepare>route",
    "catch:prepare>oops",
    "choice:route>fan",
    "default:route>oops",
    "branch:fan>fan/a/a1",
    "branch:fan>fan/b/b1",
    "next:fan/a/a1>fan/a/a2",
    "branch:each>each/each/p",
    "next:fan>each",
  ]) {
    assert.ok(edges.includes(edge), edge);
  }
  assert.equal(graph.edges.find((e) => e.kind === "choice").label, "x equals 1");
  assert.deepEqual(graph.clusters.map((c) => c.id), ["fan/a", "fan/b", "each/each"]);
});

test("steps left behind are done, the current one says what it does", () => {
  seq = 0;
  const states = [at("PENDING", null), at("RUNNING", "prepare"), at("RUNNING", "route"), at("POLLING", "fan"), at("POLLING", "fan")];
  const steps = recordStepStates(states);
  assert.deepEqual(steps.get("prepare"), { state: "done" });
  assert.deepEqual(steps.get("route"), { state: "done" });
  assert.deepEqual(steps.get("fan"), { state: "polling", attempts: 2 });
  assert.equal(stateText(steps.get("fan")), "polling · attempt 2");
  assert.equal(steps.has("done"), false);
});

test("a failed task marks the step of its error; a cancelled one the step it was on", () => {
  seq = 0;
  const failed = recordStepStates([at("RUNNING", "prepare"), at("FAILED", "prepare", { error: { errorName: "E", stepId: "prepare" } })]);
  assert.deepEqual(failed.get("prepare"), { state: "failed" });
  const aborted = recordStepStates([at("RUNNING", "prepare"), at("WAITING", "route"), at("ABORTED", "route")]);
  assert.deepEqual(aborted.get("route"), { state: "cancelled" });
  assert.deepEqual(aborted.get("prepare"), { state: "done" });
  const succeeded = recordStepStates([at("RUNNING", "done"), at("SUCCEEDED", "done")]);
  assert.deepEqual(succeeded.get("done"), { state: "done" });
});

test("parallel branches have their own progress, forEach items are counted", () => {
  seq = 0;
  const task = [at("RUNNING", "prepare"), at("RUNNING", "route"), at("RUNNING", "fan")];
  const branch = (branchId, ...steps) => steps.map(([status, step], i) => ({ seq: i + 1, status, currentStep: step, branchId }));
  const view = taskView(
    FLOW,
    task,
    new Map([
      [
        "fan",
        new Map([
          ["a", branch("a", ["RUNNING", "a1"], ["RUNNING", "a2"], ["SUCCEEDED", "a2"])],
          ["b", branch("b", ["RUNNING", "b1"], ["WAITING", "b1"])],
        ]),
      ],
    ]),
  );
  assert.equal(view.progress.each, undefined);
  assert.equal(view.nodes.get("fan/a/a1").state, "done");
  assert.equal(view.nodes.get("fan/a/a2").state, "done");
  assert.equal(view.nodes.get("fan/b/b1").state, "waiting");
  assert.equal(view.nodes.get("fan/b/b2").state, "not-reached");
  assert.equal(view.nodes.get("fan").state, "running");
  assert.equal(stateText(view.nodes.get("fan"), view.progress.fan), "running · 1/2 branches done");
  assert.equal(view.branches["fan/a"], "succeeded");
  assert.equal(view.branches["fan/b"], "waiting");
  assert.equal(view.nodes.get("done").state, "not-reached");

  const items = taskView(
    FLOW,
    [...task, at("RUNNING", "each")],
    new Map([
      [
        "each",
        new Map([
          ["0", branch("0", ["RUNNING", "p"], ["SUCCEEDED", "p"])],
          ["1", branch("1", ["POLLING", "p"])],
          ["2", branch("2", ["RUNNING", "p"], ["FAILED", "p"])],
        ]),
      ],
    ]),
  );
  assert.equal(items.nodes.get("each/each/p").state, "failed");
  assert.equal(stateText(items.nodes.get("each/each/p")), "1 done, 1 polling, 1 failed");
  assert.equal(items.branches["each/each"], "1 of 3 items done, 1 failed");
});

test("a branch state belongs to the parallel step whose branch has its step", () => {
  assert.equal(parallelOf(FLOW, "b", "b1", "fan"), "fan");
  assert.equal(parallelOf(FLOW, "b", "b1", null), "fan");
  assert.equal(parallelOf(FLOW, "7", "p", "fan"), "each");
  assert.equal(parallelOf(FLOW, "a", "b1", null), null);
});
