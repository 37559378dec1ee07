"""A small client for Snowflake's SQL API (``/api/v2/statements``), free of the connector.

The SQL API runs a statement over plain HTTPS with a stateless credential (a key-pair JWT, an
OAuth token or a programmatic access token) in every request: no login, no session to expire,
and nothing of ``snowflake-connector-python`` to import. The provider sends each of its
statements (the pre-flight profile, CREATE, DESCRIBE, SHOW, CANCEL) through it when a connection
selects that transport (see :mod:`airflow_cortex.hooks.finetune`).

Retries never run a statement twice. Every statement gets one ``requestId``; a retry after a
lost answer resubmits with the same id and ``retry=true``, and Snowflake answers with the first
submission's result instead of executing again (SQL API reference, "Resubmitting a request").
That is what makes a lost CREATE answer safe to ask again. Only the network and the service
(connection errors, 408, 429, 5xx) are retried; a statement Snowflake refused (422) or a
credential it refused (401, 403) fails at once.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import requests

STATEMENTS_PATH = "/api/v2/statements"
#: HTTP statuses worth retrying: the service or the path to it, never the statement.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_IN_PROGRESS_CODES = frozenset({"333333", "333334"})


class SqlApiError(Exception):
    """A SQL API request failed; subclasses say whether retrying could help."""


@dataclass
class SqlApiStatementError(SqlApiError):
    """Snowflake ran the statement and refused it (HTTP 422): the statement's own error."""

    code: str | None
    sql_state: str | None
    message: str
    handle: str | None = None

    def __str__(self) -> str:
        return f"{self.code or '?'} ({self.sql_state or '?'}): {self.message}"


class SqlApiAuthError(SqlApiError):
    """Snowflake refused the credential (HTTP 401 or 403): retrying cannot help."""


class SqlApiTransientError(SqlApiError):
    """The network or the service failed, every attempt: a later retry may work."""


@dataclass(frozen=True)
class SqlApiResult:
    """One statement's result: columns as (name, Snowflake type name), typed rows, its handle."""

    columns: list[tuple[str, str]]
    rows: list[tuple[Any, ...]]
    handle: str | None


@dataclass
class SqlApiClient:
    """Runs one statement at a time against ``base_url`` (``https://<account>.snowflakecomputing.com``).

    :param headers: Returns the authentication headers for the next request (a JWT is renewed
        by its generator, so they are asked for each time).
    :param context: ``database``, ``schema``, ``warehouse`` and ``role`` sent with each statement.
    :param attempts: Tries per statement for a retryable failure, with exponential backoff.
    """

    base_url: str
    headers: Callable[[], Mapping[str, str]]
    context: Mapping[str, str | None] = field(default_factory=dict)
    timeout: float = 60.0
    read_timeout: float | None = None
    """Seconds one answer may take to arrive (``timeout`` if unset); a late one is retried."""
    attempts: int = 4
    backoff: float = 0.5
    poll_interval: float = 0.2
    verify: str | bool = True
    session: requests.Session | None = None

    def execute(self, statement: str) -> SqlApiResult:
        """Run ``statement`` (exactly one: ``MULTI_STATEMENT_COUNT`` is 1) and return its result."""
        request_id = str(uuid.uuid4())
        answer = self._request(
            "POST", STATEMENTS_PATH, statement_body(statement, self.timeout, self.context), request_id
        )
        deadline = time.monotonic() + self.timeout
        while still_running(answer):
            if time.monotonic() > deadline:
                raise SqlApiTransientError(f"statement {answer.get('statementHandle')} still running")
            time.sleep(self.poll_interval)
            answer = self._request("GET", f"{STATEMENTS_PATH}/{answer['statementHandle']}")
        return parse_result(answer)

    def pinned(self) -> SqlApiClient:
        """A copy that sends this moment's headers and shares this client's connections.

        For a statement on another thread: asking for headers can call into Airflow (an OAuth
        refresh masks its new token through the task's channel to Airflow), and that channel must
        stay on the task's own thread. A header is good for minutes at least (a JWT is renewed
        five minutes before it expires), far longer than one statement.
        """
        import requests

        if self.session is None:
            self.session = requests.Session()
        fixed = dict(self.headers())
        return replace(self, headers=lambda: fixed)

    def close(self) -> None:
        """Close the kept HTTP connections."""
        if self.session is not None:
            self.session.close()
            self.session = None

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        import requests

        if self.session is None:
            self.session = requests.Session()  # kept: one connection pool for every statement
        session = self.session
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = session.request(
                    method,
                    self.base_url.rstrip("/") + path,
                    json=body,
                    params=request_params(request_id, attempt),
                    headers=request_headers(self.headers()),
                    timeout=(self.timeout, self.read_timeout or self.timeout),
                    verify=self.verify,
                )
            except requests.RequestException as error:
                last = f"{type(error).__name__}: {error}"
            else:
                answer = judge(response.status_code, response.text)
                if answer is not None:
                    return answer
                last = f"HTTP {response.status_code}"
            if attempt < self.attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise SqlApiTransientError(f"{method} {path} failed {self.attempts} times; last: {last}")


# --- the protocol, shared by this client and the async one (:mod:`.aio`) -----------------------


def statement_body(statement: str, timeout: float, context: Mapping[str, str | None]) -> dict[str, Any]:
    """The JSON body submitting ``statement``: one statement only, in the connection's context."""
    return {
        "statement": statement,
        "timeout": int(timeout),
        "parameters": {"MULTI_STATEMENT_COUNT": "1"},
        **{key.lower(): value for key, value in context.items() if value},
    }


def request_params(request_id: str | None, attempt: int) -> dict[str, str]:
    """``requestId`` on every attempt, ``retry=true`` on every one after the first."""
    if not request_id:
        return {}
    return {"requestId": request_id, **({"retry": "true"} if attempt > 1 else {})}


def request_headers(auth: Mapping[str, str]) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": "airflow-cortex",
        **auth,
    }


def still_running(answer: Mapping[str, Any]) -> bool:
    """An accepted statement whose result is not there yet (poll its handle)."""
    return answer.get("code") in _IN_PROGRESS_CODES and "data" not in answer


def judge(status: int, text: str) -> dict[str, Any] | None:
    """The answer of a request that succeeded; ``None`` for one worth retrying; else raise."""
    try:
        loaded = json.loads(text) if text else {}
    except ValueError:
        loaded = {}
    answer: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
    if status in (200, 202):
        return answer
    if status == 422:
        raise SqlApiStatementError(
            answer.get("code"),
            answer.get("sqlState"),
            str(answer.get("message") or text),
            answer.get("statementHandle"),
        )
    if status in (401, 403):
        raise SqlApiAuthError(
            f"Snowflake refused the credentials (HTTP {status}, code {answer.get('code')}): "
            f"{answer.get('message') or text}"
        )
    if status in RETRYABLE_STATUSES:
        return None
    raise SqlApiStatementError(answer.get("code"), answer.get("sqlState"), f"HTTP {status}: {text}")


def parse_result(answer: Mapping[str, Any]) -> SqlApiResult:
    """Columns and typed rows of a ``jsonv2`` answer, where every value arrives as a string."""
    meta = answer.get("resultSetMetaData") or {}
    row_type = meta.get("rowType") or []
    columns = [(str(c.get("name")), str(c.get("type") or "text").upper()) for c in row_type]
    scales = [int(c.get("scale") or 0) for c in row_type]
    rows = [
        tuple(
            _typed(value, columns[i][1], scales[i]) if i < len(columns) else value
            for i, value in enumerate(row)
        )
        for row in answer.get("data") or []
    ]
    return SqlApiResult(columns, rows, answer.get("statementHandle"))


def _typed(value: Any, type_name: str, scale: int) -> Any:
    """A ``jsonv2`` string as the connector would have returned it (numbers as numbers)."""
    if value is None or not isinstance(value, str):
        return value
    if type_name == "FIXED":
        return int(value) if scale == 0 and "." not in value else Decimal(value)
    if type_name == "REAL":
        return float(value)
    if type_name == "BOOLEAN":
        return value.lower() == "true"
    return value
