// AWS Signature Version 4 with the Web Crypto API (browsers, and Node 20+ for the tests): how the
// console signs as an operator (IAM, `@aws_iam` on AppSync) with credentials entered in Settings.
// No AWS SDK is vendored for this: a POST to AppSync needs only the canonical request, the string
// to sign and the derived key, and tests/unit/test_console_js.py checks the result against botocore.

const encoder = new TextEncoder();

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function hmac(key, text) {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const imported = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", imported, encoder.encode(text));
}

/** `20260102T030405Z` (x-amz-date) of a Date. */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** The region of an AWS endpoint's host (`…appsync-api.eu-west-1.amazonaws.com`), else null. */
export function regionOfHost(host) {
  const match = /\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com$/.exec(host);
  return match ? match[1] : null;
}

function canonicalUri(path) {
  return (
    path
      .split("/")
      .map((part) => encodeURIComponent(decodeURIComponent(part)).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
      .join("/") || "/"
  );
}

function canonicalQuery(searchParams) {
  const encode = (text) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return [...searchParams.entries()]
    .map(([key, value]) => [encode(key), encode(value)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join("&");
}

/**
 * The headers of a signed request: the given ones plus host, x-amz-date, x-amz-security-token (with
 * a session token) and authorization. `credentials` = {accessKeyId, secretAccessKey, sessionToken?}.
 */
export async function signedHeaders({ method = "POST", url, headers = {}, body = "", credentials, region, service, now = new Date() }) {
  const target = new URL(url);
  const date = amzDate(now);
  const all = { ...headers, host: target.host, "x-amz-date": date };
  if (credentials.sessionToken) all["x-amz-security-token"] = credentials.sessionToken;
  const names = Object.keys(all)
    .map((name) => name.toLowerCase())
    .sort();
  const lowered = Object.fromEntries(Object.entries(all).map(([name, value]) => [name.toLowerCase(), String(value).trim().replace(/\s+/g, " ")]));
  const signed = names.join(";");
  const canonical = [
    method,
    canonicalUri(target.pathname),
    canonicalQuery(target.searchParams),
    names.map((name) => `${name}:${lowered[name]}\n`).join(""),
    signed,
    await sha256Hex(body),
  ].join("\n");
  const scope = `${date.slice(0, 8)}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac(`AWS4${credentials.secretAccessKey}`, date.slice(0, 8));
  for (const part of [region, service, "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  return {
    ...all,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
  };
}
