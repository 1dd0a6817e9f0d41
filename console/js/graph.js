// Draws a flow graph (model.js) as SVG, laid out by dagre (vendored, see local/console.py).
// Every node is focusable and carries its id, type and, on a task page, its state as text (the
// colour only repeats what the text says).

import dagre from "../vendor/dagre.esm.js";
import { stateText } from "./state.js";

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 212;
const NODE_H = 58;

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * An <svg> of `graph`. `view` (optional): {nodes: Map(id -> {state, ...}), progress} from
 * state.js; `onSelect(node)` is called when a node is clicked or Enter/Space is pressed on it.
 */
export function renderGraph(graph, view, onSelect = () => {}) {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 44, edgesep: 12, marginx: 24, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const cluster of graph.clusters) g.setNode(cluster.id, { label: cluster.label, clusterLabelPos: "top" });
  for (const node of graph.nodes) {
    g.setNode(node.id, { width: NODE_W, height: NODE_H });
    if (node.parent) g.setParent(node.id, node.parent);
  }
  graph.edges.forEach((edge, i) => {
    const label = edge.label ? clip(edge.label, 28) : "";
    g.setEdge(edge.from, edge.to, { label, width: label ? label.length * 7 + 12 : 0, height: label ? 16 : 0, labelpos: "c" }, `e${i}`);
  });
  dagre.layout(g);

  const { width, height } = g.graph();
  const svg = el("svg", {
    viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
    width: Math.ceil(width),
    class: "flow-graph",
    role: "group",
    "aria-label": "flow graph",
  });
  const defs = el("defs");
  for (const kind of ["next", "choice", "default", "catch", "branch"]) {
    const marker = el("marker", { id: `arrow-${kind}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: `arrow arrow-${kind}` }));
    defs.append(marker);
  }
  svg.append(defs);

  for (const cluster of graph.clusters) {
    const box = g.node(cluster.id);
    const group = el("g", { class: "cluster", "data-cluster": cluster.id });
    group.append(el("rect", { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: 8 }));
    let label = cluster.label;
    const progress = view && view.branches && view.branches[cluster.id];
    if (progress) label += ` · ${progress}`;
    group.append(el("text", { x: box.x - box.width / 2 + 8, y: box.y - box.height / 2 + 14, class: "cluster-label" }, clip(label, 40)));
    svg.append(group);
  }

  const edgeLayer = el("g", { class: "edges" });
  graph.edges.forEach((edge, i) => {
    const laid = g.edge({ v: edge.from, w: edge.to, name: `e${i}` });
    if (!laid) return;
    const d = laid.points.map((p, j) => `${j ? "L" : "M"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(" ");
    const group = el("g", { class: `edge edge-${edge.kind}`, "data-from": edge.from, "data-to": edge.to, "data-kind": edge.kind });
    group.append(el("title", {}, `${edge.kind}: ${edge.from} → ${edge.to}${edge.label ? ` (${edge.label})` : ""}`));
    group.append(el("path", { d, "marker-end": `url(#arrow-${edge.kind})` }));
    if (laid.label) {
      group.append(el("rect", { x: laid.x - laid.width / 2, y: laid.y - 8, width: laid.width, height: 16, rx: 3, class: "edge-label-bg" }));
      group.append(el("text", { x: laid.x, y: laid.y + 4, "text-anchor": "middle", class: "edge-label" }, laid.label));
    }
    edgeLayer.append(group);
  });
  svg.append(edgeLayer);

  for (const node of graph.nodes) {
    const box = g.node(node.id);
    const value = view ? view.nodes.get(node.id) || { state: "not-reached" } : null;
    const status = value ? stateText(value, view.progress[node.id]) : "";
    const group = el("g", {
      class: `node type-${node.type}${value ? ` state-${value.state}` : ""}`,
      "data-node": node.id,
      "data-state": value ? value.state : "",
      tabindex: 0,
      role: "button",
      "aria-label": `step ${node.stepId}, ${node.type}${node.branchId ? `, in branch ${node.branchId}` : ""}${value ? `: ${status}` : ""}${node.id === graph.startAt ? ", start" : ""}`,
      transform: `translate(${box.x - NODE_W / 2}, ${box.y - NODE_H / 2})`,
    });
    group.append(el("title", {}, `${node.stepId} (${node.type})${status ? `: ${status}` : ""}`));
    group.append(el("rect", { width: NODE_W, height: NODE_H, rx: 6, class: "node-box" }));
    group.append(el("text", { x: 10, y: 18, class: "node-id" }, clip(node.stepId, 24)));
    group.append(el("text", { x: NODE_W - 10, y: 18, "text-anchor": "end", class: "node-type" }, node.type));
    if (value) group.append(el("text", { x: 10, y: 44, class: "node-state" }, clip(status, 32)));
    else if (node.id === graph.startAt) group.append(el("text", { x: 10, y: 44, class: "node-state" }, "start"));
    const select = () => onSelect(node);
    group.addEventListener("click", select);
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select();
      }
    });
    svg.append(group);
  }
  return svg;
}
