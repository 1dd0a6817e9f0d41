#!/usr/bin/env node
// Validate one Amazon States Language definition with asl-validator (pinned in the root package.json).
// Input: the definition as JSON on stdin. Output: {"isValid": bool, "errors": [...]} on stdout.
// Exit 0 when valid, 1 when invalid, 2 when the input or the tool is unusable.
"use strict";

let validator;
try {
  validator = require("asl-validator");
} catch (error) {
  process.stderr.write(`asl-validator is not installed (${error.code}): run \`make install\` (npm ci)\n`);
  process.exit(2);
}
const validate = typeof validator === "function" ? validator : validator.default;

const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  let definition;
  try {
    definition = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (error) {
    process.stderr.write(`the definition on stdin is not JSON: ${error.message}\n`);
    process.exit(2);
  }
  let verdict;
  try {
    verdict = validate(definition, { checkPaths: true, checkArn: true });
  } catch (error) {
    process.stderr.write(`asl-validator crashed: ${error.stack}\n`);
    process.exit(2);
  }
  process.stdout.write(JSON.stringify({ isValid: verdict.isValid, errors: verdict.errors }) + "\n");
  process.exit(verdict.isValid ? 0 : 1);
});
