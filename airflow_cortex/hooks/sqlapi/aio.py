"""The SQL API client for the triggerer: natively async (aiohttp), no thread pool, no connector.

The same protocol as :class:`~airflow_cortex.hooks.sqlapi.client.SqlApiClient` (one ``requestId`` per
statement, resubmitted with ``retry=true``; 422 and 401/403 final; the network, 408, 429 and
5xx retried with backoff), awaiting instead of blocking, so one triggerer can poll a thousand
jobs on one event loop. Triggers on one connection share one instance and its HTTP session.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from airflow_cortex.hooks.sqlapi.client import (
    STATEMENTS_PATH,
    SqlApiResult,
    SqlApiTransientError,
    judge,
    parse_result,
    request_headers,
    request_params,
    statement_body,
    still_running,
)

if TYPE_CHECKING:
    import ssl

    import aiohttp

    from airflow_cortex.hooks.sqlapi.credentials import ConnectionCredentials

IN_FLIGHT = 100
"""Requests one client has inside aiohttp at once: its connection pool's size (aiohttp's default).

Past the pool, aiohttp would queue each request already built (headers, URL, timers, a dozen
coroutines and closures: ~50 objects the garbage collector walks on every young-generation pass
while they wait); a thousand triggers polling a slow service made those passes take 40 ms. Waiting
at this semaphore instead costs one future each.
"""


class AsyncSqlApiClient:
    """Runs statements for one connection; :meth:`close` ends its HTTP session."""

    def __init__(
        self,
        credentials: ConnectionCredentials,
        *,
        timeout: float = 60.0,
        attempts: int = 4,
        backoff: float = 0.5,
        poll_interval: float = 0.2,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Build it off the event loop: importing aiohttp and reading the CA bundle block."""
        import aiohttp  # noqa: F401 - imported here, off the loop, so the loop never waits for it

        from airflow_cortex.hooks.sqlapi.credentials import ssl_context

        self.tls = tls or ssl_context()
        self.credentials = credentials
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.poll_interval = poll_interval
        self._session: aiohttp.ClientSession | None = None
        self._in_flight = asyncio.Semaphore(IN_FLIGHT)  # bound to the loop at first use

    async def _http(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.tls, limit=IN_FLIGHT),
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_read=self.credentials.read_timeout),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def execute(self, statement: str) -> SqlApiResult:
        request_id = str(uuid.uuid4())
        body = statement_body(statement, self.timeout, self.credentials.context)
        answer = await self._request("POST", STATEMENTS_PATH, body, request_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while still_running(answer):
            if loop.time() > deadline:
                raise SqlApiTransientError(f"statement {answer.get('statementHandle')} still running")
            await asyncio.sleep(self.poll_interval)
            answer = await self._request("GET", f"{STATEMENTS_PATH}/{answer['statementHandle']}")
        return parse_result(answer)

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        import aiohttp

        session = await self._http()
        url = self.credentials.base_url.rstrip("/") + path
        last = ""
        for attempt in range(1, self.attempts + 1):
            headers = request_headers(self.credentials.headers())
            try:
                async with (
                    self._in_flight,
                    session.request(
                        method, url, json=body, params=request_params(request_id, attempt), headers=headers
                    ) as response,
                ):
                    status, text = response.status, await response.text()
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                last = f"{type(error).__name__}: {error}"
            else:
                answer = judge(status, text)
                if answer is not None:
                    return answer
                last = f"HTTP {status}"
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        raise SqlApiTransientError(f"{method} {path} failed {self.attempts} times; last: {last}")
