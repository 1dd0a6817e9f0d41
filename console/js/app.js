// The console's entry point: settings, who it acts as (caller.js), the live connection, and a hash
// router over the pages.

import { Api, chooseCaller, chosenCaller, loadConfig } from "./api.js";
import { callerKind, describeCaller, identityOf, makeCaller } from "./caller.js";
import { idToken, signOut } from "./cognito.js";
import { h } from "./dom.js";
import { flowPage, flowsPage } from "./flows.js";
import { Realtime } from "./realtime.js";
import { settingsPage } from "./settings.js";
import { signInPage } from "./signin.js";
import { taskPage } from "./task.js";
import { tasksPage } from "./tasks.js";

const main = document.getElementById("main");
const connection = document.getElementById("connection");
const who = document.getElementById("who");
const ctx = {
  config: null,
  caller: null, // null: the stage has a user pool and nobody is signed in yet
  api: null,
  realtime: null,
  mount: (...children) => main.replaceChildren(...children.filter(Boolean)),
  navigate: (hash) => {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  reconnect: async (config) => {
    await connect(config);
    ctx.navigate("#/tasks");
  },
  /** Act as another caller ({kind: "key"}, {kind: "operator", credentials}, or null: the user). */
  choose: async (chosen) => {
    chooseCaller(chosen);
    await ctx.reconnect(ctx.config);
  },
};
let dispose = null;
let generation = 0;

function showConnection(status) {
  const labels = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", error: "subscription error", none: "not connected" };
  connection.textContent = labels[status] || status;
  connection.className = `connection connection-${status}`;
  document.body.dataset.connection = status;
}

/** The caller the console acts as for this config: the chosen operator, the signed-in user, the
 * chosen (or only) API key; null when a sign-in is needed first. */
async function resolveCaller(config) {
  const chosen = chosenCaller();
  const token = chosen && chosen.kind === "operator" ? null : await idToken(config).catch(() => null);
  const kind = callerKind(config, { chosen, signedIn: Boolean(token) });
  if (kind === "signin") return null;
  const validToken = async () => {
    const fresh = await idToken(config); // refreshed by the library when it expired
    if (!fresh) throw new Error("the session has ended: sign in again");
    return fresh;
  };
  return makeCaller(kind, config, { idToken: validToken, identity: token && identityOf(token), credentials: chosen && chosen.credentials });
}

function showCaller() {
  const caller = ctx.caller;
  const leave = async () => {
    if (caller && caller.kind === "user") await signOut(ctx.config);
    chooseCaller(null);
    await ctx.reconnect(ctx.config);
  };
  who.replaceChildren(
    ...(caller
      ? [h("span", { id: "who-caller", dataset: { kind: caller.kind } }, describeCaller(caller)), " ", h("button", { type: "button", id: "sign-out", class: "link", onclick: leave }, caller.kind === "user" ? "Sign out" : "Sign in as a user")]
      : []),
  );
}

async function connect(config) {
  if (ctx.realtime) ctx.realtime.close();
  ctx.config = config;
  ctx.caller = config ? await resolveCaller(config) : null;
  ctx.api = ctx.caller ? new Api(config, ctx.caller) : null;
  ctx.realtime = ctx.caller ? new Realtime(config, ctx.caller, showConnection, (n) => (connection.dataset.subscriptions = n)) : null;
  document.getElementById("stage").textContent = config && config.stage ? `stage ${config.stage}` : "";
  showCaller();
  if (!ctx.caller) showConnection("none");
}

async function route() {
  const mine = ++generation;
  if (dispose) {
    const stop = dispose;
    dispose = null;
    stop();
  }
  const [path, query] = (location.hash.slice(1) || "/tasks").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const link of document.querySelectorAll("header nav a")) {
    if (link.getAttribute("href").slice(2).split("?")[0] === (parts[0] || "tasks")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!ctx.config && parts[0] !== "settings") {
    settingsPage(ctx);
    return;
  }
  if (!ctx.caller && parts[0] !== "settings") {
    signInPage(ctx);
    return;
  }
  let result;
  if (parts[0] === "tasks" && parts[1]) result = taskPage(ctx, parts[1]);
  else if (parts[0] === "flows" && parts[1]) result = flowPage(ctx, parts[1], params);
  else if (parts[0] === "flows") result = flowsPage(ctx);
  else if (parts[0] === "settings") result = settingsPage(ctx);
  else result = tasksPage(ctx, params);
  const stop = await result;
  if (typeof stop === "function") {
    if (mine === generation) dispose = stop;
    else stop(); // the user moved on while the page was loading
  }
}

async function start() {
  main.replaceChildren(h("p", {}, "Connecting…"));
  await connect(await loadConfig());
  window.addEventListener("hashchange", route);
  await route();
}

start();
