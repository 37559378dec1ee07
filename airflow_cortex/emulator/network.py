"""The emulator's network edge: counting requests, deduplicating retries, injecting faults.

These sit in front of fakesnow's HTTP routes as ASGI middleware, so the real connector sees
exactly what it would see from a flaky network or a struggling service: 503s, answers that
never arrive, slow answers. Nothing in the provider is mocked to produce them.

Snowflake executes a query request once per ``requestId``: the connector retries a request
with the same id, and the service answers a retry with the first execution's result. The
emulator does the same, which is what makes "CREATE ran but its answer was lost" a faithful
scenario rather than a duplicate job the real service would never have created.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REMEMBERED_ANSWERS = 512
_REMEMBERED_LOGINS = 100
_UNAVAILABLE_BODY = b"Service Unavailable (injected by the Cortex emulator)"


def _target(scope: Scope) -> str | None:
    path = str(scope.get("path", ""))
    if path.endswith("/login-request"):
        return "login"
    if path.endswith("/query-request"):
        return "query"
    if "/api/v2/statements" in path:
        return "sqlapi"
    return None


@dataclass
class _Rule:
    action: str
    target: str
    sql_contains: str | None
    remaining: int
    seconds: float = 0.0

    def matches(self, target: str, sql: str) -> bool:
        return (
            self.remaining > 0
            and self.target == target
            and (self.sql_contains is None or self.sql_contains in sql)
        )


@dataclass(frozen=True)
class _Answer:
    start: Message
    body: bytes


class ConnectionDropped(Exception):
    """Raised mid-answer to make the HTTP server close the connection (an injected fault)."""


class Faults:
    """Faults to inject into the next matching requests; each rule is used up as it fires.

    ``target`` is ``"query"`` (statements) or ``"login"``; ``sql_contains`` narrows a query rule
    to statements containing that text (e.g. ``"'DESCRIBE'"``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._lost: dict[str, _Rule] = {}
        self.injected: Counter[str] = Counter()

    def unavailable(self, times: int = 1, target: str = "query", sql_contains: str | None = None) -> None:
        """Answer 503 without executing, ``times`` times."""
        self._add(_Rule("unavailable", target, sql_contains, times))

    def lose_response(self, sql_contains: str | None = None, times: int = 1_000_000) -> None:
        """Execute the next matching statement, then answer 503 to it and up to ``times`` of
        its retries: the statement took effect, but the client never learns its result."""
        self._add(_Rule("lose_response", "query", sql_contains, times))

    def drop(self, times: int = 1, target: str = "query", sql_contains: str | None = None) -> None:
        """Handle matching requests, then break the connection half-way through the answer, as a
        reset by a load balancer: the statement took effect, the client reads a torn response."""
        self._add(_Rule("drop", target, sql_contains, times))

    def stall(
        self, seconds: float, times: int = 1, target: str = "query", sql_contains: str | None = None
    ) -> None:
        """Handle matching requests at once but hold their answers for ``seconds``: the
        statement has taken effect while the client is still waiting (or has given up)."""
        self._add(_Rule("stall", target, sql_contains, times, seconds))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._lost.clear()

    def _add(self, rule: _Rule) -> None:
        if rule.target not in ("query", "login"):
            raise ValueError("target must be 'query' or 'login'")
        with self._lock:
            self._rules.append(rule)

    def _take(self, target: str, sql: str, request_id: str | None) -> _Rule | None:
        """The rule this request triggers, if any, using one of its shots."""
        with self._lock:
            lost = self._lost.get(request_id) if request_id else None
            if lost is not None:  # a retry of a request whose answer is being lost
                if lost.remaining <= 0:
                    del self._lost[request_id]  # type: ignore[arg-type]
                    return None
                lost.remaining -= 1
                self.injected["lose_response"] += 1
                return lost
            for rule in self._rules:
                if rule.matches(target, sql):
                    if rule.action == "lose_response" and request_id:
                        # The rule follows this request from now on, and its retries.
                        self._rules.remove(rule)
                        self._lost[request_id] = rule
                    rule.remaining -= 1
                    self.injected[rule.action] += 1
                    return rule
        return None


class NetworkEdge:
    """ASGI middleware: counts logins and queries, replays retried requests, injects faults."""

    def __init__(
        self, app: ASGIApp, counts: Counter[str], faults: Faults, logins: list[dict[str, Any]] | None = None
    ) -> None:
        self.app = app
        self.counts = counts
        self.faults = faults
        self.logins = logins if logins is not None else []
        self._answers: OrderedDict[str, _Answer] = OrderedDict()
        self._answers_lock = threading.Lock()
        # fakesnow runs each statement on a worker thread against one shared DuckDB connection,
        # which breaks when a session sends statements concurrently (Snowflake allows that, and
        # triggers sharing a session do it). Statements are therefore run one at a time.
        self._statements: asyncio.Lock | None = None

    def new_event_loop(self) -> None:
        """Forget loop-bound state before serving from another event loop (after a restart)."""
        self._statements = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = _target(scope) if scope["type"] == "http" else None
        if target is None:
            await self.app(scope, receive, send)
            return
        self.counts[{"login": "logins", "query": "queries"}.get(target, "sqlapi_requests")] += 1
        body = await _read_body(receive)
        if target == "login":
            self.logins.append(_json_body(scope, body).get("data") or {})
            del self.logins[:-_REMEMBERED_LOGINS]
        # A statement is a statement on either transport: query rules apply to SQL API submissions.
        statement = target == "query" or (target == "sqlapi" and scope.get("method") == "POST")
        request_id = _request_id(scope) if statement else None
        rule = self.faults._take(
            "query" if statement else target, _sql_text(scope, body) if statement else "", request_id
        )
        if rule is not None and rule.action == "unavailable":
            await _send_unavailable(send)
            return
        if self._statements is None:
            self._statements = asyncio.Lock()
        async with self._statements:
            answer = self._remembered(request_id)
            if answer is None:
                answer = await self._execute(scope, body)
                self._remember(request_id, answer)
        if rule is not None and rule.action == "stall":
            await asyncio.sleep(rule.seconds)
        if rule is not None and rule.action == "lose_response":
            await _send_unavailable(send)
            return
        if rule is not None and rule.action == "drop":
            await send(answer.start)
            await send(
                {
                    "type": "http.response.body",
                    "body": answer.body[: len(answer.body) // 2],
                    "more_body": True,
                }
            )
            raise ConnectionDropped  # the server closes a connection whose answer it cannot finish
        await send(answer.start)
        await send({"type": "http.response.body", "body": answer.body, "more_body": False})

    async def _execute(self, scope: Scope, body: bytes) -> _Answer:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.app(scope, replay, capture)
        return _Answer(dict(start), b"".join(chunks))

    def _remembered(self, request_id: str | None) -> _Answer | None:
        if request_id is None:
            return None
        with self._answers_lock:
            return self._answers.get(request_id)

    def _remember(self, request_id: str | None, answer: _Answer) -> None:
        if request_id is None:
            return
        with self._answers_lock:
            self._answers[request_id] = answer
            while len(self._answers) > _REMEMBERED_ANSWERS:
                self._answers.popitem(last=False)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _request_id(scope: Scope) -> str | None:
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    values = query.get("requestId")
    return values[0] if values else None


def _json_body(scope: Scope, body: bytes) -> dict[str, Any]:
    headers = {bytes(k).lower(): bytes(v) for k, v in scope.get("headers", [])}
    try:
        if headers.get(b"content-encoding") == b"gzip":
            body = gzip.decompress(body)
        loaded = json.loads(body)
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _sql_text(scope: Scope, body: bytes) -> str:
    """The statement of a connector query request (``sqlText``) or a SQL API one (``statement``)."""
    loaded = _json_body(scope, body)
    return str(loaded.get("sqlText") or loaded.get("statement") or "")


async def _send_unavailable(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(_UNAVAILABLE_BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAVAILABLE_BODY, "more_body": False})
