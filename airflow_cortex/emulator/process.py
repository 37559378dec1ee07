"""The ``cortex-emulator`` command in a child process, for Airflow running in another one.

The in-process fixture cannot serve ``airflow dags test`` started as a subprocess, a triggerer
measured on its own, or any setup where the emulator must outlive one Python process. This
starts the command, waits until it has written its connection, and stops it again, handing
back what it printed (its last line counts the logins and queries it served).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airflow_cortex.emulator.service import Service


class EmulatorProcess(Service):
    """``with EmulatorProcess("--database", "ML") as emulator: env[...] = emulator.connection``.

    :param options: Command-line options of ``cortex-emulator`` (``--connection-file`` is set here).
    :param startup_timeout: Seconds to wait for the server to come up.
    """

    def __init__(self, *options: str, startup_timeout: float = 60.0) -> None:
        self.options = options
        self.startup_timeout = startup_timeout
        workdir = Path(tempfile.mkdtemp(prefix="cortex-emulator-"))
        self.connection_file = workdir / "connection.json"
        # A file, not a pipe: nobody reads while it runs, and a full pipe would block the server.
        self.log_file = workdir / "emulator.log"
        self.output = ""
        self.returncode: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connection(self) -> str:
        """The Airflow connection (JSON) that points at the running emulator."""
        return self.connection_file.read_text()

    @property
    def url(self) -> str:
        """The emulator's base address."""
        extra = json.loads(self.connection)["extra"]
        return f"{extra.get('protocol', 'https')}://{extra['host']}:{extra['port']}"

    def stats(self) -> dict[str, int]:
        """What it has served so far (logins, queries, SQL API requests, jobs): a caller takes
        the difference around the part it measures."""
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/cortex-emulator/stats", timeout=10) as response:  # noqa: S310
            return {key: int(value) for key, value in json.load(response).items()}

    def start(self) -> EmulatorProcess:
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own module, with our own options
                [
                    sys.executable,
                    "-m",
                    "airflow_cortex.emulator",
                    "--connection-file",
                    str(self.connection_file),
                    *self.options,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.startup_timeout
        while not self.connection_file.exists():
            if self._process.poll() is not None:
                raise RuntimeError(f"cortex-emulator exited at start:\n{self.stop()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"cortex-emulator did not start in {self.startup_timeout:.0f} s:\n{self.stop()}"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> str:
        """Stop the emulator (SIGTERM, as a user's Ctrl-C) and return everything it printed."""
        if self._process is not None:
            self._process.terminate()
            self.returncode = self._process.wait(timeout=30)
            self._process = None
            self.output = self.log_file.read_text(errors="replace")
        return self.output
