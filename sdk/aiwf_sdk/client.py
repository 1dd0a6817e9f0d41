"""`Client`: the task REST API (flows and tasks) and the GraphQL subscription, from Python.

    client = Client.from_outputs(".local/outputs.json")   # or Client.from_stack("dev"), Client(url, api_key)
    # Flow registration signs with AWS credentials (an operator's: `aws_credentials=`, the local
    # stack's `awsCredentials`, else the standard AWS chain); the rest uses `id_token=` or the key.
    client.flows.deploy(flow)                              # create-or-update: a new version only when changed
    state = client.tasks.run("hello", {"name": "Ada"})     # the final state (a quick run when it can be)

Every error answer raises a subclass of `ApiError` with the API's `code`, `message` and `details`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

import httpx

from aiwf_sdk import outputs as stack_outputs
from aiwf_sdk.errors import (
    AiwfError,
    NoLocalStackError,
    ServerError,
    StackOutputsError,
    TaskTimeoutError,
    UnavailableError,
    error_for_status,
)
from aiwf_sdk.flow import Flow
from aiwf_sdk.models import FINAL_STATUSES, FlowSummary, FlowVersion, Heartbeat, Page, TaskState
from aiwf_sdk.session import SessionAuth
from aiwf_sdk.signing import RequestAuth
from aiwf_sdk.steps import UNSET

# Hosts of a local stack: a refused connection there means it is not running.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

if TYPE_CHECKING:  # imported when first used: gql and its transports take a while to import
    from aiwf_sdk.watch import Board, Watcher

QUICK_RUN_WAIT_SECONDS = 25
"""The longest `wait` POST /tasks takes (API Gateway gives up on an integration at 29 s)."""

START_RETRY_DELAYS_SECONDS = (1.0, 2.0, 4.0)
"""After a 5xx or no answer, a start is sent again (with the same name) after these pauses."""


class Client:
    """A client of one stack's task API (and its GraphQL API, for `tasks.watch`)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        graphql_url: str | None = None,
        realtime_url: str | None = None,
        timeout: float = 30.0,
        start_retry_delays: Sequence[float] = START_RETRY_DELAYS_SECONDS,
        transport: httpx.BaseTransport | None = None,
        aws_credentials: Mapping[str, Any] | None = None,
        id_token: str | Callable[[], str] | None = None,
        auth: SessionAuth | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.auth = auth  # a signed-in user's session: its ID token instead of the API key
        self.graphql_url = graphql_url
        self.realtime_url = realtime_url
        self.start_retry_delays = tuple(start_retry_delays)
        self._http = httpx.Client(
            base_url=self.url,
            headers={"content-type": "application/json"},
            # A signed-in user's session (`aiwf login`) provides a fresh ID token for every request.
            auth=RequestAuth(
                api_key,
                id_token=auth.id_token if auth is not None else id_token,
                aws_credentials=aws_credentials,
                base_path=urlparse(self.url).path,
            ),
            timeout=timeout,
            transport=transport,
        )
        self.flows = FlowsApi(self)
        self.tasks = TasksApi(self)

    @classmethod
    def from_stack_outputs(cls, outputs: Mapping[str, Any], **options: Any) -> Client:
        """A client of the stack these outputs describe (`taskApiUrl`, `apiKey`, `graphqlUrl`, `realtimeUrl`;
        `awsCredentials`, the local stack's, sign operator requests)."""
        if outputs.get("awsCredentials") and "aws_credentials" not in options:
            options["aws_credentials"] = outputs["awsCredentials"]
        return cls(
            outputs["taskApiUrl"],
            outputs["apiKey"],
            graphql_url=outputs.get("graphqlUrl"),
            realtime_url=outputs.get("realtimeUrl"),
            **options,
        )

    @classmethod
    def from_outputs(cls, path: str | Path = stack_outputs.LOCAL_OUTPUTS, **options: Any) -> Client:
        """A client of the local stack (`make dev` writes `.local/outputs.json`), or of any outputs file."""
        return cls.from_stack_outputs(stack_outputs.from_file(path), **options)

    @classmethod
    def from_stack(cls, stack: str, **options: Any) -> Client:
        """A client of a deployed stage, from `pulumi stack output` (needs the Pulumi CLI and its login)."""
        return cls.from_stack_outputs(stack_outputs.from_stack(stack), **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = UNSET,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON body) of one call; an error answer raises its ApiError, no answer UnavailableError."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request(
                method,
                path,
                json=None if json is UNSET else json,
                params=query or None,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.ConnectError as exc:
            if urlparse(self.url).hostname in LOOPBACK_HOSTS:  # one line that says what to do
                raise NoLocalStackError(
                    "UNAVAILABLE", f"no local stack is answering at {self.url}: start it with make dev"
                ) from None
            raise UnavailableError("UNAVAILABLE", f"cannot reach the task API at {self.url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise UnavailableError("UNAVAILABLE", f"cannot reach the task API at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response.status_code, response.json() if response.content else None


def _segment(wait_id: str) -> str:
    """A wait id as a path segment; a whole `callbackUrl` gives its last segment."""
    return quote(wait_id.rstrip("/").rsplit("/", 1)[-1], safe="")


def _error(response: httpx.Response) -> AiwfError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        return error_for_status(status, f"HTTP_{status}", response.text[:200] or response.reason_phrase)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        details = error.get("details")
        return error_for_status(
            status,
            str(error.get("code") or f"HTTP_{status}"),
            str(error.get("message") or ""),
            details if isinstance(details, list) else None,
        )
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers (403 Forbidden, 502, 504)
        return error_for_status(status, f"HTTP_{status}", str(body["message"]))
    return error_for_status(status, f"HTTP_{status}", str(body)[:200])


@dataclass(frozen=True)
class Deployment:
    """What `flows.deploy` did: `created` is False when the document was unchanged (no new version)."""

    flow_id: str
    version: int
    created: bool

    def to_json(self) -> dict[str, Any]:
        """The API's answer: {flowId, version}."""
        return {"flowId": self.flow_id, "version": self.version}


class FlowsApi:
    """Register, read, list and retire flows."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def deploy(self, flow: Flow | Mapping[str, Any]) -> Deployment:
        """Create or update the flow: the API makes a new version (201) only when the document changed (200)."""
        document = flow.to_document() if isinstance(flow, Flow) else dict(flow)
        status, answer = self._client.request("PUT", f"/flows/{document.get('id')}", json=document)
        return Deployment(flow_id=answer["flowId"], version=answer["version"], created=status == 201)

    def get(self, flow_id: str, version: int | None = None) -> FlowVersion:
        """The latest version of a flow, or one version; `.document` is the flow document."""
        _, answer = self._client.request("GET", f"/flows/{flow_id}", params={"version": version})
        return FlowVersion.model_validate(answer)

    def page(self, limit: int | None = None, next_token: str | None = None) -> Page:
        """One page of GET /flows."""
        _, answer = self._client.request("GET", "/flows", params={"limit": limit, "nextToken": next_token})
        return Page.model_validate(answer)

    def list(self, limit: int | None = None) -> Iterator[FlowSummary]:
        """Every registered flow (the latest version of each), page after page."""
        token: str | None = None
        while True:
            page = self.page(limit, token)
            yield from (FlowSummary.model_validate(item) for item in page.items)
            token = page.next_token
            if not token:
                return

    def retire(self, flow_id: str) -> FlowSummary:
        """No new tasks of this flow (running ones finish on their version); a later deploy revives it."""
        _, answer = self._client.request("DELETE", f"/flows/{flow_id}")
        return FlowSummary.model_validate(answer)


def _resume_body(token: str, status: str, output: Any, error: Mapping[str, Any] | None) -> dict[str, Any]:
    """The body a resume and a callback share: the token, the outcome and what the wait receives."""
    body: dict[str, Any] = {"resumeToken": token, "status": status}
    if output is not UNSET:
        body["output"] = output
    if error is not None:
        body["error"] = dict(error)
    return body


class TasksApi:
    """Start, run, read, list, resume and control tasks; watch them change."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def start(
        self, flow_id: str, input: Mapping[str, Any] | None = None, *, name: str | None = None, wait: int | None = None
    ) -> TaskState:
        """Start a task; `name` is an idempotency key (the same name gives the same task).

        A start always carries a name (one is made up when none is given), so a start whose answer
        was lost (a gateway timeout, a dropped connection) is sent again and finds the task the first
        attempt created instead of leaving one nobody knows the id of. `wait` (1-25 s) makes it a
        quick run: the answer comes when the task ends or `wait` seconds pass.
        """
        task_input = {} if input is None else input  # anything else goes as it is: the API answers 400 for a non-object
        body: dict[str, Any] = {"flowId": flow_id, "input": task_input, "name": name or f"sdk-{uuid.uuid4()}"}
        timeout = None
        if wait is not None:
            body["wait"] = wait
            timeout = wait + 30.0
        delays = self._client.start_retry_delays
        for attempt in range(len(delays) + 1):
            try:
                _, answer = self._client.request("POST", "/tasks", json=body, timeout=timeout)
                return TaskState.model_validate(answer)
            except (ServerError, UnavailableError) as exc:
                if attempt == len(delays) or isinstance(exc, NoLocalStackError):
                    raise
            time.sleep(delays[attempt])
        raise AssertionError("unreachable: the last attempt returns or raises")

    def run(
        self,
        flow_id: str,
        input: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        timeout: float = 300.0,
        on_state: Callable[[TaskState], None] | None = None,
    ) -> TaskState:
        """Start a task and return its final state: a quick run (one round trip for a short flow), then,
        if it is still going, follow it until it ends; TaskTimeoutError after `timeout` seconds."""
        started = time.monotonic()
        wait = max(1, min(QUICK_RUN_WAIT_SECONDS, int(timeout)))
        state = self.start(flow_id, input, name=name, wait=wait)
        if state.is_final:
            return state
        return self._follow_until(state.task_id, started + timeout, timeout, on_state)

    def wait(
        self, task_id: str, *, timeout: float = 300.0, on_state: Callable[[TaskState], None] | None = None
    ) -> TaskState:
        """Read the task until it ends; `on_state` sees each status or step change. TaskTimeoutError after `timeout`."""
        return self._follow_until(task_id, time.monotonic() + timeout, timeout, on_state)

    def _follow_until(
        self, task_id: str, deadline: float, timeout: float, on_state: Callable[[TaskState], None] | None
    ) -> TaskState:
        last: tuple[str, str | None] | None = None
        delay = 0.2
        while True:
            state = self.get(task_id)
            if on_state is not None and (state.status, state.current_step) != last:
                on_state(state)
                last = (state.status, state.current_step)
            if state.is_final:
                return state
            if time.monotonic() > deadline:
                raise TaskTimeoutError(f"task {task_id} is still {state.status} after {timeout:g} s", state)
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def get(self, task_id: str) -> TaskState:
        _, answer = self._client.request("GET", f"/tasks/{task_id}")
        return TaskState.model_validate(answer)

    def page(
        self,
        *,
        status: str | None = None,
        flow_id: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> Page:
        """One page of GET /tasks, newest first."""
        params = {"status": status, "flowId": flow_id, "limit": limit, "nextToken": next_token}
        _, answer = self._client.request("GET", "/tasks", params=params)
        return Page.model_validate(answer)

    def list(
        self, *, status: str | None = None, flow_id: str | None = None, limit: int | None = None
    ) -> Iterator[TaskState]:
        """Tasks, newest first, page after page (`limit` is the page size)."""
        token: str | None = None
        while True:
            page = self.page(status=status, flow_id=flow_id, limit=limit, next_token=token)
            yield from (TaskState.model_validate(item) for item in page.items)
            token = page.next_token
            if not token:
                return

    def history(self, task_id: str) -> builtins.list[TaskState]:
        """Every recorded state change of the task, by seq (all pages: a page ends early when it would be too large)."""
        items: builtins.list[TaskState] = []
        token: str | None = None
        while True:
            _, page = self._client.request("GET", f"/tasks/{task_id}/history", params={"nextToken": token})
            items += [TaskState.model_validate(item) for item in page["items"]]
            token = page.get("nextToken")
            if not token:
                return items

    def resume(
        self,
        task_id: str,
        token: str,
        *,
        status: str = "SUCCEEDED",
        output: Any = UNSET,
        error: Mapping[str, Any] | None = None,
    ) -> TaskState:
        """Resume a task waiting at a `wait_for_event` step, with the token its notify URL received."""
        body = _resume_body(token, status, output, error)
        _, answer = self._client.request("PUT", f"/tasks/{task_id}", json=body)
        return TaskState.model_validate(answer)

    def cancel(self, task_id: str, reason: str | None = None) -> TaskState:
        """Stop a task in any non-final state; it ends ABORTED with the Cancelled error."""
        _, answer = self._client.request("POST", f"/tasks/{task_id}/cancel", json={"reason": reason} if reason else {})
        return TaskState.model_validate(answer)

    def redrive(self, task_id: str) -> TaskState:
        """Go on with a FAILED, TIMED_OUT or ABORTED task from the step where it ended."""
        _, answer = self._client.request("POST", f"/tasks/{task_id}/redrive")
        return TaskState.model_validate(answer)

    def heartbeat(self, task_id: str, token: str) -> Heartbeat:
        """Keep a waiting task's heartbeatSeconds wait alive (the external system is still working)."""
        _, answer = self._client.request("POST", f"/tasks/{task_id}/heartbeat", json={"resumeToken": token})
        return Heartbeat.model_validate(answer)

    # -- callbacks: the token alone (what an external system holding a wait's notification calls)
    def callback(
        self,
        wait_id: str,
        token: str,
        *,
        status: str = "SUCCEEDED",
        output: Any = UNSET,
        error: Mapping[str, Any] | None = None,
    ) -> TaskState:
        """Resume the wait `wait_id` (its notification's `waitId`, the last segment of its
        `callbackUrl`) with the token alone: `POST /callbacks/{waitId}`, which needs no credential."""
        body = _resume_body(token, status, output, error)
        _, answer = self._client.request("POST", f"/callbacks/{_segment(wait_id)}", json=body)
        return TaskState.model_validate(answer)

    def callback_heartbeat(self, wait_id: str, token: str) -> Heartbeat:
        """Keep the wait `wait_id`'s heartbeatSeconds clock going with the token alone."""
        _, answer = self._client.request(
            "POST", f"/callbacks/{_segment(wait_id)}/heartbeat", json={"resumeToken": token}
        )
        return Heartbeat.model_validate(answer)

    # -- watching ---------------------------------------------------------------------------------
    def watcher(self, *, retry_seconds: float = 1.0) -> Watcher:
        """The subscription follower behind `watch` (a live view of every task and branch, as `aiwf watch` shows)."""
        from aiwf_sdk.watch import Watcher

        if not (self._client.graphql_url and self._client.realtime_url):
            raise StackOutputsError("the stack outputs have no graphqlUrl / realtimeUrl (GraphQL API)")
        auth = self._client.auth
        return Watcher(
            self._client.graphql_url,
            self._client.realtime_url,
            self._client.api_key,
            retry_seconds=retry_seconds,
            id_token=auth.id_token if auth is not None else None,
        )

    async def awatch(
        self, *, task_id: str | None = None, flow_id: str | None = None, timeout: float | None = None
    ) -> AsyncIterator[TaskState]:
        """Each state change of one task (ending with its final state) or of every task of a flow (until
        stopped), as the subscription delivers it, gap-filled from the history; the async `watch`."""
        states: asyncio.Queue[TaskState | BaseException | None] = asyncio.Queue()
        running = asyncio.ensure_future(self._follow(task_id, flow_id, timeout, states.put_nowait))
        try:
            while True:
                item = await states.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)

    def watch(
        self, *, task_id: str | None = None, flow_id: str | None = None, timeout: float | None = None
    ) -> Iterator[TaskState]:
        """`awatch` for synchronous code (scripts, notebooks): the subscription runs on a thread of its own."""
        states: queue.Queue[TaskState | BaseException | None] = queue.Queue()
        loop = asyncio.new_event_loop()
        running: builtins.list[asyncio.Future[Any]] = []

        def follow() -> None:
            asyncio.set_event_loop(loop)
            running.append(asyncio.ensure_future(self._follow(task_id, flow_id, timeout, states.put)))
            try:
                loop.run_until_complete(asyncio.gather(*running, return_exceptions=True))
            finally:
                loop.close()

        thread = threading.Thread(target=follow, name="aiwf-watch", daemon=True)
        thread.start()
        try:
            while True:
                item = states.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # The follower may be closing its loop right now (it ended with the final state): then
            # there is nothing left to cancel.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: [future.cancel() for future in running])
            thread.join(timeout=10)

    async def _follow(
        self,
        task_id: str | None,
        flow_id: str | None,
        timeout: float | None,
        put: Callable[[TaskState | BaseException | None], None],
    ) -> None:
        """Run the watcher, handing each state to `put`, then None at the end (or the error that ended it)."""
        if (task_id is None) == (flow_id is None):
            put(ValueError("watch one task (task_id=) or every task of a flow (flow_id=)"))
            return
        try:
            watcher = self.watcher()

            def finished(board: Board) -> bool:
                state = board.task(task_id) if task_id else None
                return state is not None and state["status"] in FINAL_STATUSES

            run = watcher.run(
                task_id=task_id,
                flow_id=flow_id,
                on_state=lambda state: put(TaskState.model_validate(state)),
                stop=finished,
            )
            await asyncio.wait_for(run, timeout)
            put(None)
        except TimeoutError:
            put(TaskTimeoutError(f"watch of {task_id or flow_id} ended after {timeout:g} s", None) if task_id else None)
        except asyncio.CancelledError:
            put(None)
            raise
        except Exception as exc:
            put(exc)
