"""Workflow states as they change, over the AppSync subscription, with nothing missed.

Every state carries a per-record `seq` (a task, or one of its parallel branches), so a gap shows
up as a jump; after a dropped connection the watcher reconnects and fills what it missed from
`getWorkflowHistory(afterSeq)` before it trusts the subscription again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.appsync_auth import AppSyncApiKeyAuthentication, AppSyncAuthentication, AppSyncJWTAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from gql.transport.exceptions import TransportClosed, TransportConnectionFailed, TransportServerError
from websockets.exceptions import ConnectionClosed

from aiwf_sdk.models import FINAL_STATUSES

FINAL = FINAL_STATUSES
FIELDS = """taskId flowId flowVersion status seq currentStep branchId waitingFor output
  error { errorName errorMessage errorDetails retryable stepId branchId } startedAt updatedAt redriveCount tenantId"""
SUBSCRIPTION = gql(
    "subscription Watch($taskId: ID, $flowId: String) {"
    f" workflowStateUpdated(taskId: $taskId, flowId: $flowId) {{ {FIELDS} }} }}"
)
FLOW_TASKS = gql(
    "query FlowTasks($flowId: String, $nextToken: String) {"
    f" listWorkflowStates(flowId: $flowId, limit: 100, nextToken: $nextToken) {{ items {{ {FIELDS} }} nextToken }} }}"
)
# `watch --flow` shows at most this many of the flow's tasks at once (newest first), then every change.
FLOW_TASKS_SHOWN = 200
HISTORY = gql(
    "query History($taskId: ID!, $afterSeq: Int) {"
    f" getWorkflowHistory(taskId: $taskId, afterSeq: $afterSeq) {{ {FIELDS} }} }}"
)
# A dropped or refused connection: reconnect and catch up. Anything else (a query error) is real.
RECONNECTABLE = (TransportClosed, TransportConnectionFailed, TransportServerError, ConnectionClosed, OSError)

Key = tuple[str, str | None]  # (taskId, branchId): each record has its own seq


@dataclass
class Board:
    """What the watcher knows: the latest state of every task and branch, and the last seq of each."""

    states: dict[Key, dict[str, Any]] = field(default_factory=dict)
    reconnects: int = 0
    filled: int = 0

    def last_seq(self, key: Key) -> int:
        return self.states[key]["seq"] if key in self.states else 0

    def apply(self, state: dict[str, Any]) -> bool:
        """Keep `state` if it is newer than what we have; redeliveries and stale states are dropped."""
        key = (state["taskId"], state.get("branchId"))
        if state["seq"] <= self.last_seq(key):
            return False
        self.states[key] = _decoded(state)
        return True

    def task(self, task_id: str) -> dict[str, Any] | None:
        return self.states.get((task_id, None))


def _decoded(state: dict[str, Any]) -> dict[str, Any]:
    """AWSJSON fields arrive as JSON text; show them as values."""
    shown = dict(state)
    for name in ("output", "waitingFor"):
        if isinstance(shown.get(name), str):
            shown[name] = json.loads(shown[name])
    return shown


class Watcher:
    """Follows the subscription (re-subscribing after drops) and fills gaps from the history query."""

    def __init__(
        self,
        graphql_url: str,
        realtime_url: str,
        api_key: str,
        *,
        retry_seconds: float = 1.0,
        id_token: Callable[[], str] | None = None,
    ) -> None:
        self._graphql_url = graphql_url
        self._realtime_url = realtime_url
        self._api_key = api_key
        self._id_token = id_token  # a signed-in user's (fresh at each connection): used instead of the key
        self._retry_seconds = retry_seconds
        self.board = Board()

    def _subscription_transport(self) -> AppSyncWebsocketsTransport:
        host = urlparse(self._graphql_url).netloc
        auth: AppSyncAuthentication = (
            AppSyncJWTAuthentication(host=host, jwt=self._id_token())
            if self._id_token is not None
            else AppSyncApiKeyAuthentication(host=host, api_key=self._api_key)
        )
        return AppSyncWebsocketsTransport(url=self._realtime_url, auth=auth)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self._id_token()} if self._id_token is not None else {"x-api-key": self._api_key}

    async def _query(self, document: Any, variables: dict[str, Any]) -> dict[str, Any]:
        transport = AIOHTTPTransport(url=self._graphql_url, headers=self._headers())
        async with Client(transport=transport) as session:
            result: dict[str, Any] = await session.execute(GraphQLRequest(document, variable_values=variables))
            return result

    async def catch_up(self, task_id: str, on_state: Callable[[dict[str, Any]], None]) -> None:
        """Fill the task's record from its history: everything after the last seq we have (an
        answer is bounded by its size, so ask again after the last seq received until none is new)."""
        after = self.board.last_seq((task_id, None))
        while True:
            result = await self._query(HISTORY, {"taskId": task_id, "afterSeq": after})
            states = result["getWorkflowHistory"]
            if not states:
                return
            for state in states:
                if self.board.apply(state):
                    self.board.filled += 1
                    on_state(self.board.states[(state["taskId"], state.get("branchId"))])
            after = max(state["seq"] for state in states)

    async def show_flow(self, flow_id: str, on_state: Callable[[dict[str, Any]], None]) -> None:
        """The flow's tasks as they are now (newest first, up to FLOW_TASKS_SHOWN): a `watch --flow`
        shows them at once instead of an empty board until the next change."""
        token: str | None = None
        seen = 0
        while seen < FLOW_TASKS_SHOWN:
            page = (await self._query(FLOW_TASKS, {"flowId": flow_id, "nextToken": token}))["listWorkflowStates"]
            for state in page["items"]:
                seen += 1
                if self.board.apply(state):
                    on_state(self.board.states[(state["taskId"], state.get("branchId"))])
            token = page.get("nextToken")
            if not token:
                return

    async def _catch_up_all(self, task_id: str | None, on_state: Callable[[dict[str, Any]], None]) -> None:
        # Tasks that ended have nothing left to miss (a redrive is a change the subscription brings).
        open_tasks = {key[0] for key, state in self.board.states.items() if state["status"] not in FINAL}
        for known in open_tasks | ({task_id} if task_id else set()):
            await self.catch_up(known, on_state)

    async def run(
        self,
        *,
        task_id: str | None,
        flow_id: str | None,
        on_state: Callable[[dict[str, Any]], None],
        stop: Callable[[Board], bool],
        idle_seconds: float = 5.0,
        on_connected: Callable[[bool], None] | None = None,
    ) -> Board:
        """Subscribe (and re-subscribe after drops) until `stop(board)` says so.

        History is read after subscribing, after a gap, and after `idle_seconds` of silence: a
        state committed while the subscription was still being set up is never lost for long.
        Watching a flow starts with its tasks as they are. `on_connected(again)` is told each time
        the real-time connection is up (again: after a drop).
        """
        variables = {key: value for key, value in (("taskId", task_id), ("flowId", flow_id)) if value}
        while True:
            try:
                async with Client(transport=self._subscription_transport()) as session:
                    if on_connected is not None:
                        on_connected(self.board.reconnects > 0)
                    stream = session.subscribe(GraphQLRequest(SUBSCRIPTION, variable_values=variables))
                    pending = asyncio.ensure_future(anext(stream))
                    try:
                        if flow_id:
                            await self.show_flow(flow_id, on_state)
                        await self._catch_up_all(task_id, on_state)
                        while not stop(self.board):
                            done, _ = await asyncio.wait({pending}, timeout=idle_seconds)
                            if not done:
                                await self._catch_up_all(task_id, on_state)
                                continue
                            state = pending.result()["workflowStateUpdated"]
                            pending = asyncio.ensure_future(anext(stream))
                            key = (state["taskId"], state.get("branchId"))
                            if state.get("branchId") is None and state["seq"] > self.board.last_seq(key) + 1:
                                await self.catch_up(state["taskId"], on_state)  # a gap: fill it first
                            if self.board.apply(state):
                                on_state(self.board.states[key])
                        return self.board
                    finally:
                        pending.cancel()
            except (*RECONNECTABLE, StopAsyncIteration):
                self.board.reconnects += 1
                await asyncio.sleep(self._retry_seconds)
