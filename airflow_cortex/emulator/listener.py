"""The emulator's HTTP listener: uvicorn serving one ASGI app from a thread of this process.

A test suite starts and stops an emulator for every test, so a stop must not cost what
uvicorn's does when run as a service: its main loop looks for a stop every 0.1 s, and its
shutdown then gives open connections another 0.1 s to close. That was 0.2 s of idle wall time
per test. Here a stop wakes the loop at once, lets the requests being answered finish (they
use the emulator's database, which is closed next) and drops the idle connections clients keep
open, as a front end that goes away drops them. :meth:`Listener.stop` with ``linger=True`` keeps
uvicorn's own shutdown for a simulated outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from pathlib import Path

#: How long a stop waits for the requests being answered (uvicorn, stopped with force, waited 0.1 s).
IN_FLIGHT_SECONDS = 2.0


class _PromptServer(uvicorn.Server):
    """uvicorn's server, woken by a stop instead of finding it at its next tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.linger = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.linger:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + IN_FLIGHT_SECONDS
        while self.server_state.tasks and loop.time() < deadline:
            await asyncio.sleep(0.005)

    def wake(self, *, linger: bool) -> None:
        """Ask the serving thread to stop now (callable from any thread)."""
        self.linger = linger
        self.should_exit = True
        # Without this, uvicorn waits for each TLS connection a client keeps open (a kept
        # session, the connector's pool) to finish its close handshake: seconds per stop.
        self.force_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(wake.set)


class Listener:
    """One bound port serving ``app`` until :meth:`stop`; :attr:`port` is the one bound."""

    def __init__(self, app: Any, host: str, port: int, tls_files: tuple[Path, Path] | None) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.port: int = sock.getsockname()[1]
        tls: dict[str, Any] = {}
        if tls_files is not None:
            tls = {"ssl_certfile": str(tls_files[0]), "ssl_keyfile": str(tls_files[1])}
        self._server = _PromptServer(uvicorn.Config(app, log_level="warning", lifespan="off", **tls))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="cortex-emulator", daemon=True
        )
        self._thread.start()
        while self._thread.is_alive() and not self._server.started:
            time.sleep(0.005)
        if not self._server.started:
            raise RuntimeError(f"Cortex emulator failed to start on {host}:{self.port}")

    def stop(self, *, linger: bool = False) -> None:
        """Stop serving and wait for the thread; ``linger`` gives requests in flight uvicorn's grace."""
        self._server.wake(linger=linger)
        self._thread.join(timeout=10)
