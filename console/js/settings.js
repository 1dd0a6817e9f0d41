// Where the console gets its API: the local stack serves config.json; for a deployed stage, the
// user pastes the stage's outputs here, and they stay in this browser session only. Also who the
// console acts as when not as the signed-in user: an operator (AWS credentials, SigV4) or the API key.

import { forgetSessionConfig, parseSettings, saveSessionConfig } from "./api.js";
import { describeCaller, parseCredentials } from "./caller.js";
import { errorBox, h } from "./dom.js";

export function settingsPage(ctx) {
  const heading = h("h1", { tabindex: -1 }, "Settings");
  const outputs = h("textarea", { id: "settings-outputs", rows: 8, spellcheck: "false", placeholder: '{"graphqlUrl": "...", "realtimeUrl": "...", "apiKey": "..."}' });
  const graphqlUrl = h("input", { id: "settings-graphql", type: "url", placeholder: "https://….appsync-api.….amazonaws.com/graphql" });
  const realtimeUrl = h("input", { id: "settings-realtime", type: "url", placeholder: "wss://….appsync-realtime-api.….amazonaws.com/graphql" });
  const apiKey = h("input", { id: "settings-key", type: "password", autocomplete: "off" });
  const userPoolId = h("input", { id: "settings-pool", placeholder: "eu-west-1_AbCdEf123" });
  const userPoolClientId = h("input", { id: "settings-pool-client" });
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
    h("label", { for: "settings-pool" }, "userPoolId (people sign in to it)"),
    userPoolId,
    h("label", { for: "settings-pool-client" }, "userPoolClientId"),
    userPoolClientId,
    h("button", { type: "submit" }, "Connect"),
    errors,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      const config = parseSettings(outputs.value, {
        graphqlUrl: graphqlUrl.value,
        realtimeUrl: realtimeUrl.value,
        apiKey: apiKey.value,
        userPoolId: userPoolId.value,
        userPoolClientId: userPoolClientId.value,
      });
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
  ctx.mount(
    heading,
    current,
    ctx.config && ctx.config.source === "local stack" ? h("p", {}, "The local stack configures this page by itself; the form below points it at another stage for this session.") : null,
    form,
    forget,
    ctx.config ? callerSection(ctx) : null,
  );
  heading.focus();
}

/** Act as an operator (AWS credentials: every tenant, SigV4 on each request), or with the API key. */
function callerSection(ctx) {
  const credentialsJson = h("textarea", { id: "settings-credentials", rows: 4, spellcheck: "false", placeholder: "the JSON of aws configure export-credentials" });
  const accessKeyId = h("input", { id: "settings-access-key", autocomplete: "off" });
  const secretAccessKey = h("input", { id: "settings-secret-key", type: "password", autocomplete: "off" });
  const sessionToken = h("input", { id: "settings-session-token", type: "password", autocomplete: "off" });
  const errors = h("div", { class: "errors" });
  const form = h(
    "form",
    { class: "action-form settings-operator" },
    h("label", { for: "settings-credentials" }, "AWS credentials (kept in this browser session only)"),
    credentialsJson,
    h("p", { class: "hint" }, "or:"),
    h("label", { for: "settings-access-key" }, "accessKeyId"),
    accessKeyId,
    h("label", { for: "settings-secret-key" }, "secretAccessKey"),
    secretAccessKey,
    h("label", { for: "settings-session-token" }, "sessionToken (temporary credentials)"),
    sessionToken,
    h("button", { type: "submit" }, "Act as this operator"),
    errors,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const credentials = parseCredentials(credentialsJson.value, {
        accessKeyId: accessKeyId.value,
        secretAccessKey: secretAccessKey.value,
        sessionToken: sessionToken.value,
      });
      await ctx.choose({ kind: "operator", credentials });
    } catch (error) {
      errors.replaceChildren(errorBox({ errors: [{ errorType: "InvalidCredentials", message: error.message }] }));
    }
  });
  const useKey = ctx.config.apiKey ? h("button", { type: "button", id: "settings-use-key", onclick: () => ctx.choose({ kind: "key" }) }, "Use the API key (tenant default)") : null;
  return h(
    "section",
    { "aria-labelledby": "settings-caller" },
    h("h2", { id: "settings-caller" }, "Who the console acts as"),
    h("p", {}, ctx.caller ? `Now: ${describeCaller(ctx.caller)}.` : "Now: nobody (sign in, or choose below)."),
    h("p", { class: "hint" }, "A signed-in user sees its tenant's tasks only; an operator's IAM policy needs appsync:GraphQL on the fields it uses."),
    form,
    useKey,
  );
}
