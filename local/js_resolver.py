"""APPSYNC_JS resolver code run by a real JS engine (QuickJS through PyPI `quickjs`), not re-implemented.

The code is the very text the program deployed. AppSync evaluates it as an ES module importing
`@aws-appsync/utils`; the script is run without its import lines and `export` keywords, and a
small `util` / `runtime` stand in for the AppSync globals our resolvers may use.

Why QuickJS: it is embedded in this interpreter and called synchronously, ~35 us for a small
resolver. V8 through mini-racer (used before) hands every call to its own threads and back,
~0.5 ms even for `eval("1")`, which was a fifth of a published state change's whole trip through
the local stack. Like AppSync's runtime, a resolver gets a time budget: code that loops forever
fails its field with a `Code` error instead of hanging the server.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import quickjs

_IMPORT = re.compile(r"^\s*import\s+[^;]*?from\s+['\"][^'\"]+['\"];?\s*$", re.MULTILINE)
_EXPORT = re.compile(r"^(\s*)export\s+(default\s+)?", re.MULTILINE)

# The subset of the APPSYNC_JS runtime utilities a NONE or Lambda resolver typically uses.
_PRELUDE = r"""
class __AppSyncError extends Error {
  constructor(message, type, data, info) { super(message); this.__appsync = {message, type, data, info}; }
}
const util = {
  error(message, type, data, info) { throw new __AppSyncError(message, type || null, data || null, info || null); },
  appendError(message, type, data, info) {
    __appended.push({message, errorType: type || null, data: data || null, errorInfo: info || null});
  },
  autoId() { return __ids.shift() || 'id'; },
  time: { nowISO8601() { return new Date().toISOString(); }, nowEpochMilliSeconds() { return Date.now(); },
          nowEpochSeconds() { return Math.floor(Date.now() / 1000); } },
  isNull(v) { return v === null || v === undefined; },
  isNullOrEmpty(v) { return v === null || v === undefined || v === ''; },
  unauthorized() { throw new __AppSyncError('Unauthorized', 'Unauthorized', null, null); },
  transform: {
    toSubscriptionFilter(filter, ignoredFields) {
      // {field: {operator: value}, ..., or: [{...}, ...]} -> {filterGroup: [{filters: [...]}]}:
      // the top-level fields hold in every group, each `or` entry adds its own conditions.
      const skip = ignoredFields || [];
      const conditions = (object) => Object.keys(object || {})
        .filter((name) => name !== 'or' && name !== 'and' && skip.indexOf(name) < 0)
        .flatMap((name) => Object.keys(object[name]).map(
          (operator) => ({fieldName: name, operator, value: object[name][operator]})));
      const common = conditions(filter);
      const alternatives = (filter && filter.or) || [{}];
      return {filterGroup: alternatives.map((entry) => ({filters: common.concat(conditions(entry))}))};
    },
  },
};
const runtime = { earlyReturn(value) { throw {__early: true, value}; } };
const extensions = {
  setSubscriptionFilter(filter) { __subscriptionFilter = filter; },
  setSubscriptionInvalidationFilter() {},
  invalidateSubscriptions() {},
};
let __appended = [];
let __ids = [];
let __subscriptionFilter = null;
function __unit(ctx, ids, none) {
  // A UNIT resolver in one call: request, then (NONE data source) its payload as ctx.result, response.
  const first = __run('request', ctx, ids);
  if (!first.ok || first.early || !none) { return {...first, stage: 'request'}; }
  ctx.result = first.value && typeof first.value === 'object' ? first.value.payload : null;
  return {...__run('response', ctx, []), stage: 'response', appended: first.appended};
}
function __entry(name, argumentsJson) {
  // One call per resolution: the arguments arrive as JSON text and the outcome leaves as JSON text,
  // so nothing is compiled per call (a script with the context as a literal cost ~0.3 ms).
  const args = JSON.parse(argumentsJson);
  return JSON.stringify(name === 'unit' ? __unit(...args) : __run(...args));
}
function __run(handler, ctx, ids) {
  __appended = []; __ids = ids; __subscriptionFilter = null;
  try {
    const value = globalThis[handler](ctx);
    return {ok: true, value, appended: __appended, subscriptionFilter: __subscriptionFilter};
  } catch (e) {
    if (e && e.__early) { return {ok: true, early: true, value: e.value, appended: __appended}; }
    if (e && e.__appsync) { return {ok: false, error: e.__appsync, appended: __appended}; }
    return {ok: false, error: {message: String(e && e.message || e), type: 'Code', data: null, info: null}};
  }
}
"""


def to_script(code: str) -> str:
    """An APPSYNC_JS module as a plain script: imports dropped, `export` keywords removed."""
    return _EXPORT.sub(r"\1", _IMPORT.sub("", code))


@dataclass
class ResolverError(Exception):
    """`util.error(...)` or a runtime error in the resolver code: becomes a GraphQL error."""

    message: str
    error_type: str | None = None
    data: Any = None
    info: Any = None


# AppSync stops a resolver after its execution budget; a runaway loop here fails the field instead.
TIME_LIMIT_SECONDS = 1.0


class JsResolver:
    """One deployed resolver's code in its own QuickJS context; calls are serialized (a context is
    not thread-safe, and the HTTP server may run operations on its loop or on worker threads)."""

    def __init__(self, code: str) -> None:
        self._ctx = quickjs.Context()
        self._ctx.set_time_limit(TIME_LIMIT_SECONDS)
        self._lock = threading.Lock()
        self._ctx.eval(_PRELUDE)
        self._ctx.eval(to_script(code))
        self._entry = self._ctx.get("__entry")

    def _call(self, function: str, *args: Any) -> dict[str, Any]:
        """Call `__unit` or `__run` with JSON arguments; its JSON-encoded answer, decoded."""
        text = json.dumps(args, separators=(",", ":"), default=str)
        with self._lock:
            try:
                outcome = self._entry(function, text)
            except quickjs.JSException as exc:  # the time limit, or an error outside the handlers
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return {"ok": False, "error": {"message": message, "type": "Code"}}
        return json.loads(outcome)

    def call(self, handler: str, ctx: dict[str, Any]) -> tuple[Any, bool]:
        """Run `request` or `response` with the AppSync context object; (value, returned early)."""
        outcome = self._call("run", handler, ctx, [str(uuid.uuid4()) for _ in range(4)])
        _raise_for(outcome)
        return outcome.get("value"), bool(outcome.get("early"))

    def resolve_none(self, ctx: dict[str, Any]) -> Any:
        """A UNIT resolver on a NONE data source: request, payload as `ctx.result`, response, in one call."""
        outcome = self._call("unit", ctx, [str(uuid.uuid4()) for _ in range(4)], True)
        _raise_for(outcome)
        return outcome.get("value")

    def subscription_filter(self, ctx: dict[str, Any]) -> dict[str, Any] | None:
        """A subscription field's resolver run at subscribe time (request, then response, NONE
        source): the filter its `extensions.setSubscriptionFilter` set, or None when it set none.
        A refusal (`util.unauthorized()`, `util.error`) raises ResolverError: the start fails."""
        outcome = self._call("unit", ctx, [str(uuid.uuid4()) for _ in range(4)], True)
        _raise_for(outcome)
        found = outcome.get("subscriptionFilter")
        return found if isinstance(found, dict) else None

    def close(self) -> None:
        """Nothing to release early (the context goes with the object); kept for the API's `close`."""


def _raise_for(outcome: dict[str, Any]) -> None:
    if not outcome.get("ok"):
        error = outcome.get("error") or {}
        raise ResolverError(error.get("message") or "", error.get("type"), error.get("data"), error.get("info"))
