// The task page's actions: resume a wait (the task's or a branch's), cancel, redrive. Each is one
// GraphQL mutation; its answer goes to `onAnswer` (the page takes it as a new state), its error
// is shown as the API returned it. The forms are rebuilt only when what they offer changes, so
// what the user is typing survives the live updates.

import { errorBox, h } from "./dom.js";
import { actionsKey, allowedActions, resumeTargets } from "./task-state.js";

/** The actions section of task `taskId`; `render(state, waiting)` after every change. */
export function actionsPanel(api, taskId, onAnswer) {
  const section = h("section", { class: "actions", "aria-labelledby": "actions-heading" });
  const errors = h("div", { class: "errors", id: "action-errors" });
  const live = h("p", { class: "live-note", "aria-live": "polite" });
  let shownFor = null;

  async function act(label, run) {
    errors.replaceChildren();
    try {
      const state = await run();
      live.textContent = `${label}: ${state.status}`;
      onAnswer(state);
    } catch (error) {
      errors.replaceChildren(errorBox(error));
    }
  }
  const showError = (error) => errors.replaceChildren(errorBox(error));

  function render(state, waiting) {
    const key = actionsKey(state, waiting);
    if (shownFor === key) return; // keep what the user is typing
    shownFor = key;
    const allowed = allowedActions(state, waiting);
    const parts = [h("h2", { id: "actions-heading" }, "Actions")];
    if (allowed.resume) parts.push(resumeForm(resumeTargets(taskId, state, waiting), api, act, showError));
    if (allowed.cancel) parts.push(cancelForm(api, taskId, act));
    if (allowed.redrive) parts.push(redriveForm(api, taskId, act));
    if (parts.length === 1) parts.push(h("p", {}, "None: the task succeeded."));
    parts.push(errors, live);
    section.replaceChildren(...parts);
  }

  return { section, render };
}

function submitted(run) {
  return (e) => {
    e.preventDefault();
    run();
  };
}

function cancelForm(api, taskId, act) {
  const reason = h("input", { id: "cancel-reason", type: "text", placeholder: "optional" });
  return h(
    "form",
    { class: "action-form", onsubmit: submitted(() => act("cancel", () => api.cancelTask(taskId, reason.value.trim()))) },
    h("label", { for: "cancel-reason" }, "Cancel reason"),
    reason,
    h("button", { type: "submit", class: "danger", id: "cancel-button" }, "Cancel task"),
  );
}

function redriveForm(api, taskId, act) {
  return h(
    "form",
    { class: "action-form", onsubmit: submitted(() => act("redrive", () => api.redriveTask(taskId))) },
    h("p", {}, "Go on from the step that failed; steps that succeeded are not run again."),
    h("button", { type: "submit", id: "redrive-button" }, "Redrive task"),
  );
}

/** `targets`: [record id, label] of each waiting record, the first prefilled. */
function resumeForm(targets, api, act, showError) {
  const token = h("input", { id: "resume-token", type: "text", required: true, autocomplete: "off", spellcheck: "false" });
  const record = h("input", { id: "resume-record", type: "text", value: targets[0][0], spellcheck: "false" });
  const succeeded = h("input", { type: "radio", name: "resume-status", id: "resume-succeeded", value: "SUCCEEDED", checked: true });
  const failed = h("input", { type: "radio", name: "resume-status", id: "resume-failed", value: "FAILED" });
  const output = h("textarea", { id: "resume-output", rows: 4, spellcheck: "false" }, "{}");
  const errorName = h("input", { id: "resume-error-name", type: "text", value: "Rejected" });
  const errorMessage = h("input", { id: "resume-error-message", type: "text" });
  const outputBox = h("div", { class: "when-succeeded" }, h("label", { for: "resume-output" }, "Output (JSON)"), output);
  const errorFields = h(
    "div",
    { class: "when-failed", hidden: true },
    h("label", { for: "resume-error-name" }, "Error name"),
    errorName,
    h("label", { for: "resume-error-message" }, "Error message"),
    errorMessage,
  );
  const toggle = () => {
    outputBox.hidden = failed.checked;
    errorFields.hidden = !failed.checked;
  };
  succeeded.addEventListener("change", toggle);
  failed.addEventListener("change", toggle);

  function resume() {
    const resumeTask = (status, value, error) => api.resumeTask(record.value.trim(), token.value.trim(), status, value, error);
    if (failed.checked) {
      act("resume", () => resumeTask("FAILED", undefined, { errorName: errorName.value.trim(), errorMessage: errorMessage.value.trim() || null }));
      return;
    }
    let value;
    try {
      value = JSON.parse(output.value || "null");
    } catch (error) {
      showError({ errors: [{ errorType: "InvalidJSON", message: error.message }] });
      return;
    }
    act("resume", () => resumeTask("SUCCEEDED", value));
  }

  return h(
    "form",
    { class: "action-form resume", "aria-labelledby": "resume-heading", onsubmit: submitted(resume) },
    h("h3", { id: "resume-heading" }, "Resume the wait"),
    h("p", { class: "hint" }, `Waiting: ${targets.map((r) => r[1]).join("; ")}. The resume token is the one the wait's notification carried.`),
    h("label", { for: "resume-record" }, "Task or branch record id"),
    record,
    h("label", { for: "resume-token" }, "Resume token"),
    token,
    h("fieldset", {}, h("legend", {}, "Outcome"), succeeded, h("label", { for: "resume-succeeded" }, "Succeeded"), failed, h("label", { for: "resume-failed" }, "Failed")),
    outputBox,
    errorFields,
    h("button", { type: "submit", id: "resume-button" }, "Resume"),
  );
}
