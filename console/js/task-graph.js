// The task page's graph panel: the flow's graph with each step in its state, the selected step's
// definition, and the same as a text list. Redrawn on every change; keyboard focus stays on the
// node it was on, and once the graph is wider than its box it is scrolled to the step that most
// needs a look.

import { h, json } from "./dom.js";
import { legend, stepDefinition } from "./flows.js";
import { renderGraph } from "./graph.js";

const NEEDS_A_LOOK = ["waiting", "failed", "polling", "running"];

export function graphPanel() {
  const graphBox = h("div", { class: "graph-scroll" });
  const detail = h("pre", { class: "step-detail", "aria-live": "polite" }, "Select a step to see its definition.");
  const stepList = h("ul", { class: "step-list" });
  let focused = null;
  let centred = false;

  /** Once, bring the step that most needs a look into view when the graph is wider than its box. */
  function centre(svg) {
    const wanted = NEEDS_A_LOOK.map((state) => svg.querySelector(`.node.state-${state}`)).find(Boolean);
    if (!wanted || !graphBox.isConnected) return false;
    const box = graphBox.getBoundingClientRect();
    const at = wanted.getBoundingClientRect();
    graphBox.scrollLeft += at.left + at.width / 2 - (box.left + box.width / 2);
    graphBox.scrollTop += at.top + at.height / 2 - (box.top + box.height / 2);
    return true;
  }

  /** Draw `view` (state.js's taskView of `document`). */
  function render(document, view) {
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
    stepList.replaceChildren(...view.graph.nodes.map((node) => stepItem(node, view.nodes.get(node.id))));
  }

  const graph = h(
    "section",
    { class: "graph-panel", "aria-label": "flow graph with step states" },
    graphBox,
    legend(true),
    h("details", { class: "steps-text" }, h("summary", {}, "Steps as text"), stepList),
  );
  return { graph, detail, render };
}

function stepItem(node, value) {
  return h(
    "li",
    { "data-step": node.id },
    h("span", { class: `swatch state-${value.state}` }),
    `${node.id} (${node.type}): `,
    h("span", { class: "step-state" }, value.state.replace("-", " ")),
  );
}
