"""APPSYNC_JS resolver code run by a real JS engine (V8 through PyPI `mini-racer`), not re-implemented.

The code is the very text the program deployed. AppSync evaluates it as an ES module importing
`@aws-appsync/utils`; V8's script mode has no modules, so the import lines and `export` keywords
are stripped and a small `util` / `runtime` stand in for the AppSync globals our resolvers may use.
"""

from __future__ import annotations

import atexit
import json
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from py_mini_racer import MiniRacer

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
};
const runtime = { earlyReturn(value) { throw {__early: true, value}; } };
let __appended = [];
let __ids = [];
function __unit(ctx, ids, none) {
  // A UNIT resolver in one call: request, then (NONE data source) its payload as ctx.result, response.
  const first = __run('request', ctx, ids);
  if (!first.ok || first.early || !none) { return {...first, stage: 'request'}; }
  ctx.result = first.value && typeof first.value === 'object' ? first.value.payload : null;
  return {...__run('response', ctx, []), stage: 'response', appended: first.appended};
}
function __run(handler, ctx, ids) {
  __appended = []; __ids = ids;
  try {
    return {ok: true, value: globalThis[handler](ctx), appended: __appended};
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


class JsResolver:
    """One deployed resolver's code in its own V8 context; calls are serialized (V8 is single-threaded)."""

    def __init__(self, code: str) -> None:
        self._ctx = MiniRacer()
        self._lock = threading.Lock()
        self._closed = False
        self._ctx.eval(_PRELUDE)
        self._ctx.eval(to_script(code))
        atexit.register(self.close)  # a live V8 context keeps the interpreter from exiting

    def call(self, handler: str, ctx: dict[str, Any]) -> tuple[Any, bool]:
        """Run `request` or `response` with the AppSync context object; (value, returned early)."""
        with self._lock:
            outcome = self._ctx.call("__run", handler, ctx, [str(uuid.uuid4()) for _ in range(4)])
        if isinstance(outcome, str):  # some mini-racer versions hand back JSON text
            outcome = json.loads(outcome)
        if not outcome.get("ok"):
            error = outcome.get("error") or {}
            raise ResolverError(error.get("message") or "", error.get("type"), error.get("data"), error.get("info"))
        return outcome.get("value"), bool(outcome.get("early"))

    def resolve_none(self, ctx: dict[str, Any]) -> Any:
        """A UNIT resolver on a NONE data source: request, payload as `ctx.result`, response, in one V8 call."""
        with self._lock:
            outcome = self._ctx.call("__unit", ctx, [str(uuid.uuid4()) for _ in range(4)], True)
        if isinstance(outcome, str):
            outcome = json.loads(outcome)
        if not outcome.get("ok"):
            error = outcome.get("error") or {}
            raise ResolverError(error.get("message") or "", error.get("type"), error.get("data"), error.get("info"))
        return outcome.get("value")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._ctx.close()
        atexit.unregister(self.close)
