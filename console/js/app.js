// The console's entry point: settings, the live connection, and a hash router over the pages.

import { Api, loadConfig } from "./api.js";
import { h } from "./dom.js";
import { flowPage, flowsPage } from "./flows.js";
import { Realtime } from "./realtime.js";
import { settingsPage } from "./settings.js";
import { taskPage } from "./task.js";
import { tasksPage } from "./tasks.js";

const main = document.getElementById("main");
const connection = document.getElementById("connection");
const ctx = {
  config: null,
  api: null,
  realtime: null,
  mount: (...children) => main.replaceChildren(...children.filter(Boolean)),
  navigate: (hash) => {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  reconnect: (config) => {
    connect(config);
    ctx.navigate("#/tasks");
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

function connect(config) {
  if (ctx.realtime) ctx.realtime.close();
  ctx.config = config;
  ctx.api = config ? new Api(config) : null;
  ctx.realtime = config ? new Realtime(config, showConnection, (n) => (connection.dataset.subscriptions = n)) : null;
  document.getElementById("stage").textContent = config && config.stage ? `stage ${config.stage}` : "";
  if (!config) showConnection("none");
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
  connect(await loadConfig());
  window.addEventListener("hashchange", route);
  await route();
}

start();
