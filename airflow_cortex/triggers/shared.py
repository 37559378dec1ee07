"""Living in the triggerer's event loop, shared by every Cortex trigger of one triggerer process.

A triggerer runs hundreds of triggers on one event loop, so nothing a trigger does may block it:
blocking calls (the connector, reading a connection) go to a small thread pool of their own, a
module's first import happens off the loop, and triggers on the same connection settings share
one client (one connector session, or one SQL API HTTP session and JWT) instead of one each.

Each triggerer process keeps its own: a deployment with several triggerers holds one client per
connection in each, and a trigger that moves to another triggerer (its own stopped heartbeating)
acquires that triggerer's client there.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable
    from types import ModuleType

T = TypeVar("T")
C = TypeVar("C")

#: Threads that run blocking calls (the connector, reading a connection) for every Cortex trigger
#: in this process. Bounded, and separate from the event loop's default executor, so hundreds of
#: waiting jobs neither block the loop nor crowd out other triggers' threads.
MAX_THREADS = 8
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _blocking_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="cortex-trigger")
        return _executor


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` on the Cortex triggers' thread pool."""
    return await asyncio.get_running_loop().run_in_executor(_blocking_executor(), function, *args)


_imported: dict[str, ModuleType] = {}


async def imported(name: str) -> ModuleType:
    """``name``'s module: imported off the loop the first time (a first import runs the module's
    code, and loading the connector takes a third of a second), then from memory. A thousand
    triggers that start together (a triggerer restart) would otherwise queue a thousand
    thread-pool calls, and their answers, in one turn of the loop."""
    module = _imported.get(name)
    if module is None:
        module = _imported[name] = await off_loop(importlib.import_module, name)
    return module


class SharedClients(Generic[C]):
    """One client per key (a trigger's connection settings), shared by every trigger using it.

    A triggerer waiting for 500 jobs on one connection then holds one session, not 500, and
    logs in (or signs a JWT) once. ``make`` is blocking and runs off the loop; the last trigger
    to release a client closes it.
    """

    def __init__(self, close: Callable[[C], Awaitable[object]]) -> None:
        self._close = close
        self._clients: dict[Hashable, tuple[C, int]] = {}
        self._lock = asyncio.Lock()  # bound to the loop at first use

    async def acquire(self, key: Hashable, make: Callable[[], C]) -> C:
        async with self._lock:
            found = self._clients.get(key)
            client, users = found if found is not None else (await off_loop(make), 0)
            self._clients[key] = (client, users + 1)
            return client

    async def release(self, key: Hashable) -> None:
        async with self._lock:
            client, users = self._clients[key]
            if users > 1:
                self._clients[key] = (client, users - 1)
                return
            del self._clients[key]
        await self._close(client)

    def __len__(self) -> int:
        return len(self._clients)


_pools: dict[tuple[int, str], SharedClients[Any]] = {}
"""Per event loop (an asyncio lock, and HTTP sessions, belong to one loop) and kind of client."""


def shared_clients(kind: str, close: Callable[[Any], Awaitable[object]]) -> SharedClients[Any]:
    """This event loop's pool of ``kind`` clients."""
    key = (id(asyncio.get_running_loop()), kind)
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = SharedClients(close)
    return pool
