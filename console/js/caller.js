// Who the console acts as, and the credential each request carries. Each caller has exactly its
// authority on the Workflow State API:
//  - user: a person signed in to the stage's user pool, the default when the stage has one; its ID
//    token goes in `Authorization` (GraphQL over HTTP, the real-time handshake's `header` and each
//    `start`), and it sees only its tenant's tasks (claim `custom:tenant`);
//  - operator: AWS credentials entered in Settings (kept in this browser session): SigV4, every
//    tenant (`@aws_iam`);
//  - key: the stage's API key (tenant `default`), when the stage has no user pool or the person
//    chose it in Settings.
// Pure functions (no DOM): `node --test console/test` checks them.

import { regionOfHost, signedHeaders } from "./sigv4.js";

/** The claims of a JWT, unverified (the API verifies it): who is signed in, and until when. */
export function claimsOf(token) {
  const part = String(token).split(".")[1];
  if (!part) throw new Error("not a JWT");
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (part.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** {username, tenant, groups, expiresAt (ms)} of an ID token. */
export function identityOf(idToken) {
  const claims = claimsOf(idToken);
  return {
    username: claims["cognito:username"] || claims.username || claims.sub,
    tenant: claims["custom:tenant"] ?? null,
    groups: claims["cognito:groups"] || [],
    expiresAt: (claims.exp || 0) * 1000,
  };
}

/** The stage's user pool from the config (outputs `userPoolId`, `userPoolClientId`; locally the
 * embedded AWS at `awsEndpointUrl` answers for Cognito), or null when the stage has none. */
export function poolOf(config) {
  if (!config || !config.userPoolId || !config.userPoolClientId) return null;
  return {
    UserPoolId: config.userPoolId,
    ClientId: config.userPoolClientId,
    ...(config.awsEndpointUrl ? { endpoint: `${config.awsEndpointUrl.replace(/\/$/, "")}/` } : {}),
  };
}

/**
 * Which caller the console is: `chosen` is what the person picked in Settings ({kind: "key"} or
 * {kind: "operator", credentials}), `idToken` the signed-in user's (null when nobody is).
 * Returns {kind: "user" | "operator" | "key" | "signin"}: "signin" asks for a sign-in first.
 */
export function callerKind(config, { chosen = null, signedIn = false } = {}) {
  if (chosen && chosen.kind === "operator" && chosen.credentials) return "operator";
  if (signedIn) return "user";
  if (chosen && chosen.kind === "key" && config.apiKey) return "key";
  if (poolOf(config)) return "signin";
  return config.apiKey ? "key" : "signin";
}

const APPSYNC_IAM_HEADERS = {
  accept: "application/json, text/javascript",
  "content-encoding": "amz-1.0",
  "content-type": "application/json; charset=UTF-8",
};

/**
 * A caller: `headers({url, body})` for a GraphQL POST, and `realtimeHeader({url, body})` for the
 * real-time handshake (url = graphqlUrl + "/connect", body "{}") and each `start` (url = graphqlUrl,
 * body = the start's `data`), as AppSync reads them. `idToken` is a function giving a valid ID token.
 */
export function makeCaller(kind, config, { idToken = null, identity = null, credentials = null } = {}) {
  const host = new URL(config.graphqlUrl).host;
  if (kind === "user") {
    return {
      kind,
      identity,
      headers: async () => ({ authorization: await idToken() }),
      realtimeHeader: async () => ({ host, Authorization: await idToken() }),
    };
  }
  if (kind === "operator") {
    const region = regionOfHost(host) || credentials.region || "us-east-1";
    const sign = (url, body, headers) => signedHeaders({ method: "POST", url, headers, body, credentials, region, service: "appsync" });
    return {
      kind,
      identity: { username: credentials.accessKeyId, tenant: null, groups: [] },
      headers: async ({ url, body }) => {
        const signed = await sign(url, body, { "content-type": "application/json" });
        delete signed.host; // the browser sends it (and may not be told to)
        return signed;
      },
      realtimeHeader: async ({ url, body }) => sign(url, body, APPSYNC_IAM_HEADERS),
    };
  }
  return {
    kind: "key",
    identity: { username: null, tenant: "default", groups: [] },
    headers: async () => ({ "x-api-key": config.apiKey }),
    realtimeHeader: async () => ({ host, "x-api-key": config.apiKey }),
  };
}

/** One line for the header: who the console acts as. */
export function describeCaller(caller) {
  if (caller.kind === "user") {
    const { username, tenant, groups } = caller.identity;
    return `${username} · tenant ${tenant ?? "none"}${groups.length ? ` · ${groups.join(", ")}` : ""}`;
  }
  if (caller.kind === "operator") return `operator ${caller.identity.username} · every tenant`;
  return "API key · tenant default";
}

/** Operator credentials from the Settings form (or the JSON of `aws configure export-credentials`). */
export function parseCredentials(text, fields = {}) {
  let credentials = {};
  if (text && text.trim()) {
    const parsed = JSON.parse(text);
    credentials = {
      accessKeyId: parsed.AccessKeyId || parsed.accessKeyId,
      secretAccessKey: parsed.SecretAccessKey || parsed.secretAccessKey,
      sessionToken: parsed.SessionToken || parsed.sessionToken,
      region: parsed.region || parsed.Region,
    };
  }
  for (const [key, value] of Object.entries(fields)) if (value && value.trim()) credentials[key] = value.trim();
  for (const key of ["accessKeyId", "secretAccessKey"]) if (!credentials[key]) throw new Error(`${key} is missing`);
  for (const key of Object.keys(credentials)) if (!credentials[key]) delete credentials[key];
  return credentials;
}
