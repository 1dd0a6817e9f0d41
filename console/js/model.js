// The flow graph as data: nodes and edges drawn from a flow document (no layout, no DOM).
//
// A top-level step's node id is its step id; a step inside a parallel branch is
// "<parallel step>/<branch id>/<step id>", inside a cluster "<parallel step>/<branch id>"
// (a forEach branch has the one branch id "each"). Edge kinds: next, choice, default, catch, branch.

export const EACH = "each";

export function branchesOf(step) {
  if (step.branches) return step.branches.map((b) => ({ id: b.id, branch: b, forEach: false }));
  if (step.forEach) return [{ id: EACH, branch: step.forEach.branch, forEach: true }];
  return [];
}

function conditionLabel(condition) {
  for (const op of ["equals", "notEquals", "greaterThan", "lessThan", "isPresent", "matches"]) {
    if (op in condition) return `${condition.path} ${op} ${JSON.stringify(condition[op])}`;
  }
  return condition.path;
}

function stepEdges(steps, prefix, from, step) {
  const edges = [];
  const to = (id) => (id in steps ? prefix + id : null);
  const add = (target, kind, label) => {
    const t = to(target);
    if (t) edges.push({ from, to: t, kind, label });
  };
  if (step.next) add(step.next, "next", "");
  (step.choices || []).forEach((c) => add(c.next, "choice", conditionLabel(c)));
  if (step.default) add(step.default, "default", "default");
  if (step.catch) add(step.catch, "catch", "catch");
  return edges;
}

/** Nodes, clusters and edges of a flow document. */
export function flowGraph(document) {
  const nodes = [];
  const clusters = [];
  const edges = [];
  const steps = document.steps || {};
  for (const [id, step] of Object.entries(steps)) {
    nodes.push({ id, stepId: id, type: step.type, parent: null, branchId: null, parallel: null });
    edges.push(...stepEdges(steps, "", id, step));
    if (step.type !== "parallel") continue;
    for (const { id: branchId, branch, forEach } of branchesOf(step)) {
      const cluster = `${id}/${branchId}`;
      clusters.push({
        id: cluster,
        parallel: id,
        branchId,
        forEach,
        label: forEach ? `for each item of ${step.forEach.items}` : `branch ${branchId}`,
      });
      const inner = branch.steps || {};
      for (const [innerId, innerStep] of Object.entries(inner)) {
        const nodeId = `${cluster}/${innerId}`;
        nodes.push({ id: nodeId, stepId: innerId, type: innerStep.type, parent: cluster, branchId, parallel: id });
        edges.push(...stepEdges(inner, `${cluster}/`, nodeId, innerStep));
      }
      if (branch.startAt in inner) {
        edges.push({ from: id, to: `${cluster}/${branch.startAt}`, kind: "branch", label: forEach ? "each item" : branchId });
      }
    }
  }
  return { nodes, clusters, edges, startAt: document.startAt };
}

/**
 * The parallel step a branch record belongs to, from its branch id and a step it is at: the
 * `preferred` step (the task's current step) when it fits, else the first that fits; null if none.
 */
export function parallelOf(document, branchId, stepId, preferred) {
  const fits = (id) => {
    const step = (document.steps || {})[id];
    if (!step || step.type !== "parallel") return false;
    return branchesOf(step).some(
      (b) => (b.forEach || b.id === branchId) && (!stepId || stepId in (b.branch.steps || {})),
    );
  };
  if (preferred && fits(preferred)) return preferred;
  return Object.keys(document.steps || {}).find(fits) || null;
}
