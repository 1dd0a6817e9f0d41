// Who the console acts as (caller.js) and the SigV4 signing of an operator (sigv4.js): pure
// modules, run by `node --test console/test` (tests/unit/test_console_js.py).

import assert from "node:assert/strict";
import { test } from "node:test";

import { callerKind, claimsOf, describeCaller, identityOf, makeCaller, parseCredentials, poolOf } from "../js/caller.js";
import { amzDate, regionOfHost, signedHeaders } from "../js/sigv4.js";

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const jwt = (claims) => `${b64url({ alg: "RS256", kid: "k" })}.${b64url(claims)}.sig`;
const ADA = jwt({ "cognito:username": "ada", "custom:tenant": "acme", "cognito:groups": ["approvers"], exp: 2000000000, token_use: "id" });
const LOCAL = { graphqlUrl: "http://127.0.0.1:4000/graphql", realtimeUrl: "ws://127.0.0.1:4000/graphql/realtime", apiKey: "da2-key" };
const POOL = { ...LOCAL, userPoolId: "us-east-1_abc", userPoolClientId: "client", awsEndpointUrl: "http://127.0.0.1:5001" };

test("an ID token's claims say who is signed in, its tenant and groups, and until when", () => {
  assert.equal(claimsOf(ADA).token_use, "id");
  assert.deepEqual(identityOf(ADA), { username: "ada", tenant: "acme", groups: ["approvers"], expiresAt: 2000000000000 });
  assert.equal(identityOf(jwt({ sub: "s-1" })).tenant, null);
  assert.throws(() => claimsOf("not-a-token"), /not a JWT/);
});

test("the user pool comes from the config, with the embedded AWS as Cognito's endpoint locally", () => {
  assert.equal(poolOf(LOCAL), null);
  assert.deepEqual(poolOf(POOL), { UserPoolId: "us-east-1_abc", ClientId: "client", endpoint: "http://127.0.0.1:5001/" });
  assert.deepEqual(poolOf({ ...POOL, awsEndpointUrl: undefined }), { UserPoolId: "us-east-1_abc", ClientId: "client" });
});

test("a stage with a user pool asks for a sign-in first; the key only when chosen or the only credential", () => {
  assert.equal(callerKind(POOL), "signin");
  assert.equal(callerKind(POOL, { signedIn: true }), "user");
  assert.equal(callerKind(POOL, { chosen: { kind: "key" } }), "key");
  assert.equal(callerKind({ ...POOL, apiKey: undefined }, { chosen: { kind: "key" } }), "signin");
  assert.equal(callerKind(POOL, { chosen: { kind: "operator", credentials: { accessKeyId: "a" } }, signedIn: true }), "operator");
  assert.equal(callerKind(LOCAL), "key"); // a stage without a user pool: the API key, as before
});

test("each caller sends exactly one credential, on HTTP and in the real-time header", async () => {
  const user = makeCaller("user", POOL, { idToken: async () => ADA, identity: identityOf(ADA) });
  assert.deepEqual(await user.headers({ url: POOL.graphqlUrl, body: "{}" }), { authorization: ADA });
  assert.deepEqual(await user.realtimeHeader({ url: `${POOL.graphqlUrl}/connect`, body: "{}" }), { host: "127.0.0.1:4000", Authorization: ADA });
  assert.equal(describeCaller(user), "ada · tenant acme · approvers");

  const key = makeCaller("key", POOL);
  assert.deepEqual(await key.headers({}), { "x-api-key": "da2-key" });
  assert.deepEqual(await key.realtimeHeader({}), { host: "127.0.0.1:4000", "x-api-key": "da2-key" });
  assert.equal(describeCaller(key), "API key · tenant default");

  const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "token" };
  const operator = makeCaller("operator", POOL, { credentials });
  const sent = await operator.headers({ url: POOL.graphqlUrl, body: '{"query":"{ x }"}' });
  assert.equal(sent.host, undefined); // the browser sets it
  assert.match(sent.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/appsync\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/);
  assert.equal(sent["x-amz-security-token"], "token");
  const handshake = await operator.realtimeHeader({ url: `${POOL.graphqlUrl}/connect`, body: "{}" });
  assert.equal(handshake.host, "127.0.0.1:4000");
  assert.equal(handshake["content-encoding"], "amz-1.0");
  assert.match(describeCaller(operator), /^operator AKIDEXAMPLE/);
});

test("operator credentials from the form or the JSON of aws configure export-credentials", () => {
  assert.deepEqual(parseCredentials('{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "S", "SessionToken": "T"}'), {
    accessKeyId: "A",
    secretAccessKey: "S",
    sessionToken: "T",
  });
  assert.deepEqual(parseCredentials("", { accessKeyId: " A ", secretAccessKey: "S", sessionToken: "" }), { accessKeyId: "A", secretAccessKey: "S" });
  assert.throws(() => parseCredentials("", { accessKeyId: "A" }), /secretAccessKey is missing/);
});

test("SigV4: the date format, the region of an AWS host, and a signature that depends on the body", async () => {
  assert.equal(amzDate(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), "20260102T030405Z");
  assert.equal(regionOfHost("abc.appsync-api.eu-west-1.amazonaws.com"), "eu-west-1");
  assert.equal(regionOfHost("127.0.0.1:4000"), null);
  const base = { url: "https://x.appsync-api.eu-west-1.amazonaws.com/graphql", credentials: { accessKeyId: "A", secretAccessKey: "S" }, region: "eu-west-1", service: "appsync", now: new Date(0) };
  const one = await signedHeaders({ ...base, body: "a" });
  const two = await signedHeaders({ ...base, body: "b" });
  assert.notEqual(one.authorization, two.authorization);
  assert.equal(one["x-amz-date"], "19700101T000000Z");
});
