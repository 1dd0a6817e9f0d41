// The Workflow State API over GraphQL (HTTP POST, with the credential of the console's caller: a
// signed-in user's ID token, an operator's SigV4 signature or the API key, see caller.js), and
// where its settings come from: the local stack serves `config.json`; on a deployed stage the user
// enters the stage's outputs, kept only in this browser session (sessionStorage).

const SESSION_KEY = "aiwf.console.config";
const CALLER_KEY = "aiwf.console.caller"; // the caller chosen in Settings: {kind: "key"} or {kind: "operator", credentials}

export const STATE_FIELDS = `taskId flowId flowVersion status seq currentStep branchId waitingFor output
  error { errorName errorMessage errorDetails retryable stepId branchId } startedAt updatedAt redriveCount tenantId`;

/** An answer with GraphQL errors, kept as the API returned them ({errorType, message, ...}). */
export class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => `${e.errorType || "Error"}: ${e.message}`).join("\n"));
    this.errors = errors;
  }
}

/** The session's settings (the user pointed this tab at a stage), else the local stack's. */
export async function loadConfig() {
  const chosen = sessionConfig();
  if (chosen) return chosen;
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) {
      const config = await response.json();
      if (config.graphqlUrl && config.realtimeUrl && (config.apiKey || config.userPoolId)) return { ...config, source: "local stack" };
    }
  } catch {
    // not served by a local stack: the user enters a stage's settings
  }
  return null;
}

export function sessionConfig() {
  try {
    const config = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return config && config.graphqlUrl && config.realtimeUrl && (config.apiKey || config.userPoolId) ? { ...config, source: "session" } : null;
  } catch {
    return null;
  }
}

/** Accept the JSON of `pulumi stack output --json --show-secrets`, or the fields alone: the two
 * URLs, and the user pool (`userPoolId`, `userPoolClientId`) or the API key or both. */
export function parseSettings(outputsText, fields) {
  let config = {};
  if (outputsText.trim()) {
    const outputs = JSON.parse(outputsText);
    for (const key of ["graphqlUrl", "realtimeUrl", "apiKey", "stage", "userPoolId", "userPoolClientId"]) {
      if (outputs[key]) config[key] = outputs[key];
    }
  }
  for (const [key, value] of Object.entries(fields)) if (value && value.trim()) config[key] = value.trim();
  for (const key of ["graphqlUrl", "realtimeUrl"]) {
    if (!config[key]) throw new Error(`${key} is missing`);
  }
  if (!config.apiKey && !(config.userPoolId && config.userPoolClientId)) throw new Error("apiKey (or userPoolId and userPoolClientId) is missing");
  return config;
}

export function saveSessionConfig(config) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(config));
}

export function forgetSessionConfig() {
  sessionStorage.removeItem(SESSION_KEY);
  sessionStorage.removeItem(CALLER_KEY);
}

/** The caller chosen in this browser session (operator credentials stay in sessionStorage only). */
export function chosenCaller() {
  try {
    return JSON.parse(sessionStorage.getItem(CALLER_KEY) || "null");
  } catch {
    return null;
  }
}

export function chooseCaller(chosen) {
  if (chosen) sessionStorage.setItem(CALLER_KEY, JSON.stringify(chosen));
  else sessionStorage.removeItem(CALLER_KEY);
}

export class Api {
  constructor(config, caller) {
    this.config = config;
    this.caller = caller;
  }

  async query(query, variables = {}) {
    const url = this.config.graphqlUrl;
    const body = JSON.stringify({ query, variables });
    let response;
    try {
      const credential = await this.caller.headers({ url, body });
      response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...credential }, body });
    } catch (error) {
      throw new ApiError([{ errorType: "NetworkError", message: String(error.message || error) }]);
    }
    let answer;
    try {
      answer = await response.json();
    } catch {
      throw new ApiError([{ errorType: `HTTP ${response.status}`, message: response.statusText || "not JSON" }]);
    }
    if (answer.errors && answer.errors.length) throw new ApiError(answer.errors);
    if (!response.ok) throw new ApiError([{ errorType: `HTTP ${response.status}`, message: JSON.stringify(answer) }]);
    return answer.data;
  }

  async listFlows(nextToken) {
    const data = await this.query(
      "query($n: String) { listFlows(limit: 50, nextToken: $n) { items { flowId version retired updatedAt } nextToken } }",
      { n: nextToken || null },
    );
    return data.listFlows;
  }

  async allFlows() {
    const items = [];
    let token = null;
    do {
      const page = await this.listFlows(token);
      items.push(...page.items);
      token = page.nextToken;
    } while (token);
    return items;
  }

  async getFlow(flowId, version) {
    const data = await this.query(
      "query($f: String!, $v: Int) { getFlow(flowId: $f, version: $v) { flowId version retired updatedAt document } }",
      { f: flowId, v: version ?? null },
    );
    const flow = data.getFlow;
    if (flow && typeof flow.document === "string") flow.document = JSON.parse(flow.document);
    return flow;
  }

  async listTasks({ status, flowId, limit, nextToken }) {
    const data = await this.query(
      `query($s: WorkflowStatus, $f: String, $l: Int, $n: String) {
        listWorkflowStates(status: $s, flowId: $f, limit: $l, nextToken: $n) { items { ${STATE_FIELDS} } nextToken } }`,
      { s: status || null, f: flowId || null, l: limit, n: nextToken || null },
    );
    return { items: data.listWorkflowStates.items.map(decoded), nextToken: data.listWorkflowStates.nextToken };
  }

  async getTask(taskId) {
    const data = await this.query(`query($t: ID!) { getWorkflowState(taskId: $t) { ${STATE_FIELDS} } }`, { t: taskId });
    return data.getWorkflowState && decoded(data.getWorkflowState);
  }

  /** Every state after `afterSeq`; an answer is bounded in size, so ask again until none is new. */
  async history(taskId, afterSeq = 0) {
    const all = [];
    let after = afterSeq;
    for (;;) {
      const data = await this.query(
        `query($t: ID!, $a: Int) { getWorkflowHistory(taskId: $t, afterSeq: $a) { ${STATE_FIELDS} } }`,
        { t: taskId, a: after },
      );
      const page = data.getWorkflowHistory.map(decoded);
      if (!page.length) return all;
      all.push(...page);
      after = Math.max(...page.map((s) => s.seq));
    }
  }

  /** Each record's whole history, several records per request (aliases); [] for no such record. */
  async histories(recordIds) {
    const all = recordIds.map(() => []);
    let open = recordIds.map((_, i) => i); // records whose last answer was not empty
    while (open.length) {
      const vars = open.map((i) => `$r${i}: ID!, $a${i}: Int`).join(", ");
      const fields = open.map((i) => `r${i}: getWorkflowHistory(taskId: $r${i}, afterSeq: $a${i}) { ${STATE_FIELDS} }`).join("\n");
      const variables = {};
      for (const i of open) {
        variables[`r${i}`] = recordIds[i];
        variables[`a${i}`] = Math.max(0, ...all[i].map((s) => s.seq));
      }
      const data = await this.query(`query(${vars}) { ${fields} }`, variables);
      open = open.filter((i) => {
        const page = (data[`r${i}`] || []).map(decoded);
        all[i].push(...page);
        return page.length > 0;
      });
    }
    return all;
  }

  async startTask(flowId, input, name) {
    const data = await this.query(
      `mutation($f: String!, $i: AWSJSON, $n: String) { startTask(flowId: $f, input: $i, name: $n) { ${STATE_FIELDS} } }`,
      { f: flowId, i: JSON.stringify(input), n: name || null },
    );
    return decoded(data.startTask);
  }

  async resumeTask(taskId, resumeToken, status, output, error) {
    const data = await this.query(
      `mutation($t: ID!, $k: String!, $s: ResumeStatus!, $o: AWSJSON, $e: WorkflowErrorInput) {
        resumeTask(taskId: $t, resumeToken: $k, status: $s, output: $o, error: $e) { ${STATE_FIELDS} } }`,
      { t: taskId, k: resumeToken, s: status, o: output === undefined ? null : JSON.stringify(output), e: error || null },
    );
    return decoded(data.resumeTask);
  }

  async cancelTask(taskId, reason) {
    const data = await this.query(`mutation($t: ID!, $r: String) { cancelTask(taskId: $t, reason: $r) { ${STATE_FIELDS} } }`, {
      t: taskId,
      r: reason || null,
    });
    return decoded(data.cancelTask);
  }

  async redriveTask(taskId) {
    const data = await this.query(`mutation($t: ID!) { redriveTask(taskId: $t) { ${STATE_FIELDS} } }`, { t: taskId });
    return decoded(data.redriveTask);
  }
}

/** AWSJSON fields arrive as JSON text: keep them as values. */
export function decoded(state) {
  const shown = { ...state };
  for (const name of ["output", "waitingFor"]) {
    if (typeof shown[name] === "string") {
      try {
        shown[name] = JSON.parse(shown[name]);
      } catch {
        // left as text
      }
    }
  }
  if (shown.error && typeof shown.error.errorDetails === "string") {
    try {
      shown.error = { ...shown.error, errorDetails: JSON.parse(shown.error.errorDetails) };
    } catch {
      // left as text
    }
  }
  return shown;
}
