// Unmodified aws-amplify v6 (package.json pins it) against the local stack's TLS twin, in Node.
//
// Driven by tests/e2e/test_e2e_amplify_tls.py, which passes one JSON argument (the TLS GraphQL URL,
// region, API key, local credentials, a flow document, a task name and the taskId it will get) and
// runs this with NODE_EXTRA_CA_CERTS set to the stack's CA file, as docs/local.md tells a user to.
// It prints one JSON object of what Amplify answered; the Python test makes the assertions.
//
// The only addition to Amplify: Node 20 has no global WebSocket (browsers and Node 22 do), so the
// `ws` package provides it, as Amplify's maintainers advise for Node (aws-amplify/amplify-js#9769).
import { Amplify } from "aws-amplify";
import { CONNECTION_STATE_CHANGE, ConnectionState, generateClient } from "aws-amplify/api";
import { Hub } from "aws-amplify/utils";
import WebSocket from "ws";

globalThis.WebSocket ??= WebSocket;

const scenario = JSON.parse(process.argv[2]);
const FINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);
const STATE = "taskId flowId status seq currentStep output error { errorName errorMessage }";

setTimeout(() => {
  console.error("amplify_tls.mjs: no final state within 90 s");
  process.exit(2);
}, 90_000).unref();

Amplify.configure(
  {
    API: {
      GraphQL: {
        endpoint: scenario.graphqlUrl, // https://127.0.0.1:<tls port>/graphql; Amplify derives wss://.../graphql/realtime
        region: scenario.region,
        defaultAuthMode: "apiKey",
        apiKey: scenario.apiKey,
      },
    },
  },
  {
    // IAM mode without Cognito: Amplify's documented custom credentials provider hands it the local credentials.
    Auth: {
      credentialsProvider: {
        getCredentialsAndIdentityId: async () => ({ credentials: scenario.credentials }),
        clearCredentialsAndIdentityId: () => {},
      },
    },
  },
);
const client = generateClient();

/** A GraphQL call's data, or its errors (Amplify rejects with `{data, errors}`). */
async function call(options) {
  try {
    const result = await client.graphql(options);
    return { data: result.data, errors: result.errors ?? null };
  } catch (failure) {
    if (failure && Array.isArray(failure.errors)) {
      return { data: failure.data ?? null, errors: failure.errors.map((e) => ({ message: e.message, errorType: e.errorType })) };
    }
    throw failure;
  }
}

const document = JSON.stringify(scenario.flow);
const flowId = scenario.flow.id;
const report = {};

// IAM mode (SigV4 with the local credentials): register the flow (IAM only), then read it back.
report.iamPutFlow = await call({
  query: "mutation Put($d: AWSJSON!) { putFlow(document: $d) { flowId version } }",
  variables: { d: document },
  authMode: "iam",
});
report.iamGetFlow = await call({
  query: "query Get($f: String!) { getFlow(flowId: $f) { flowId version retired } }",
  variables: { f: flowId },
  authMode: "iam",
});
// API key mode (the default): the same query, and the IAM-only mutation refused.
report.apiKeyGetFlow = await call({
  query: "query Get($f: String!) { getFlow(flowId: $f) { flowId version retired } }",
  variables: { f: flowId },
});
report.apiKeyPutFlow = await call({
  query: "mutation Put($d: AWSJSON!) { putFlow(document: $d) { flowId version } }",
  variables: { d: document },
});

// The subscription, filtered by the taskId the named task will get, over wss:// (Amplify's own choice).
const connected = new Promise((resolve) => {
  const stop = Hub.listen("api", ({ payload }) => {
    if (payload.event === CONNECTION_STATE_CHANGE && payload.data.connectionState === ConnectionState.Connected) {
      stop();
      resolve();
    }
  });
});
const states = [];
let subscription;
const ended = new Promise((resolve, reject) => {
  subscription = client
    .graphql({
      query: `subscription Watch($t: ID) { workflowStateUpdated(taskId: $t) { ${STATE} } }`,
      variables: { t: scenario.taskId },
    })
    .subscribe({
      next: ({ data }) => {
        states.push(data.workflowStateUpdated);
        if (FINAL.has(data.workflowStateUpdated.status)) resolve();
      },
      error: (error) => reject(new Error(`subscription failed: ${JSON.stringify(error)}`)),
    });
});
await connected; // start_ack received: nothing the task does from now on can be missed

report.startTask = await call({
  query: `mutation Start($f: String!, $i: AWSJSON, $n: String) { startTask(flowId: $f, input: $i, name: $n) { ${STATE} } }`,
  variables: { f: flowId, i: JSON.stringify(scenario.input), n: scenario.taskName },
});
await ended;
subscription.unsubscribe();
report.states = states;
report.history = await call({
  query: `query History($t: ID!) { getWorkflowHistory(taskId: $t) { ${STATE} } }`,
  variables: { t: scenario.taskId },
});

console.log(JSON.stringify(report));
process.exit(0);
