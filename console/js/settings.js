// Where the console gets its API: the local stack serves config.json; for a deployed stage, the
// user pastes the stage's outputs here, and they stay in this browser session only.

import { forgetSessionConfig, parseSettings, saveSessionConfig } from "./api.js";
import { errorBox, h } from "./dom.js";

export function settingsPage(ctx) {
  const heading = h("h1", { tabindex: -1 }, "Settings");
  const outputs = h("textarea", { id: "settings-outputs", rows: 8, spellcheck: "false", placeholder: '{"graphqlUrl": "...", "realtimeUrl": "...", "apiKey": "..."}' });
  const graphqlUrl = h("input", { id: "settings-graphql", type: "url", placeholder: "https://….appsync-api.….amazonaws.com/graphql" });
  const realtimeUrl = h("input", { id: "settings-realtime", type: "url", placeholder: "wss://….appsync-realtime-api.….amazonaws.com/graphql" });
  const apiKey = h("input", { id: "settings-key", type: "password", autocomplete: "off" });
  const errors = h("div", { class: "errors" });
  const current = ctx.config
    ? h("p", {}, `Connected to ${ctx.config.graphqlUrl} (from the ${ctx.config.source}${ctx.config.stage ? `, stage ${ctx.config.stage}` : ""}).`)
    : h("p", {}, "Not connected yet.");
  const form = h(
    "form",
    { class: "action-form settings" },
    h("label", { for: "settings-outputs" }, "Stack outputs (the JSON of pulumi stack output --json --show-secrets)"),
    outputs,
    h("p", { class: "hint" }, "or the three values:"),
    h("label", { for: "settings-graphql" }, "graphqlUrl"),
    graphqlUrl,
    h("label", { for: "settings-realtime" }, "realtimeUrl"),
    realtimeUrl,
    h("label", { for: "settings-key" }, "apiKey (kept in this browser session only)"),
    apiKey,
    h("button", { type: "submit" }, "Connect"),
    errors,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      const config = parseSettings(outputs.value, { graphqlUrl: graphqlUrl.value, realtimeUrl: realtimeUrl.value, apiKey: apiKey.value });
      saveSessionConfig(config);
      ctx.reconnect({ ...config, source: "session" });
    } catch (error) {
      errors.replaceChildren(errorBox({ errors: [{ errorType: "InvalidSettings", message: error.message }] }));
    }
  });
  const forget = h(
    "button",
    {
      type: "button",
      onclick: () => {
        forgetSessionConfig();
        location.hash = "#/tasks";
        location.reload();
      },
    },
    "Forget the session's settings",
  );
  ctx.mount(heading, current, ctx.config && ctx.config.source === "local stack" ? h("p", {}, "The local stack configures this page by itself; the form below points it at another stage for this session.") : null, form, forget);
  heading.focus();
}
