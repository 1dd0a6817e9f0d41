// The task page's read-only parts, each drawn from the task state alone: the summary, the
// history table (task and branch records together) and the output or error.

import { age, h, json, statusBadge, time } from "./dom.js";

const HISTORY_COLUMNS = ["Seq", "Record", "Time", "Status", "Step", "Error"];

/** The summary's rows (status, flow, step, times, seq, redrives) for the task's latest state. */
export function summaryRows(state) {
  return [
    ["Status", statusBadge(state.status)],
    ["Flow", h("a", { href: `#/flows/${encodeURIComponent(state.flowId)}?version=${state.flowVersion}` }, `${state.flowId} v${state.flowVersion}`)],
    ["Current step", state.currentStep || "—"],
    ["Started", `${time(state.startedAt)} (${age(state.startedAt)} ago)`],
    ["Updated", time(state.updatedAt)],
    ["Seq", String(state.seq)],
    ["Redrives", String(state.redriveCount || 0)],
  ].map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", { "data-field": k.toLowerCase().replace(" ", "-") }, v)));
}

/** The history section; `body` is the tbody that historyRowsOf fills. */
export function historySection(body) {
  return h(
    "section",
    { "aria-labelledby": "history-heading" },
    h("h2", { id: "history-heading" }, "History"),
    h(
      "div",
      { class: "table-wrap" },
      h("table", { class: "history" }, h("thead", {}, h("tr", {}, HISTORY_COLUMNS.map((c) => h("th", { scope: "col" }, c)))), body),
    ),
  );
}

/** One table row per state of task-state.js's historyRows (task rows carry `data-seq`). */
export function historyRowsOf(rows) {
  return rows.map((s) =>
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
  );
}

/** The output of a succeeded task, the error of a failed one, and what a wait waits for. */
export function outcomeParts(state) {
  const parts = [h("h2", { id: "outcome-heading" }, state.error ? "Error" : "Output")];
  if (state.error) {
    parts.push(h("p", { class: "error-summary" }, h("strong", {}, state.error.errorName), `: ${state.error.errorMessage || ""}`));
    parts.push(h("pre", { class: "task-error" }, json(state.error)));
  } else if (state.status === "SUCCEEDED") parts.push(h("pre", { class: "task-output" }, json(state.output)));
  else parts.push(h("p", {}, "Not finished yet."));
  if (state.waitingFor) parts.push(h("h3", {}, "Waiting for"), h("pre", {}, json(state.waitingFor)));
  return parts;
}
