"""A real Airflow deployment for system tests: PostgreSQL and each component in its own process.

``PostgresServer`` starts a private PostgreSQL cluster from Debian's ``postgresql`` package (as
the ``postgres`` user when run as root), on a free port, and removes it afterwards.
``RedisServer`` starts Debian's ``redis-server`` on a free port, as the Celery broker.
``Deployment`` runs Airflow's components as processes, each with its own pid, process group and
log, so a test can kill -9 one of them and start it again as an operator would: by default the
API server (with the task execution API), the scheduler with the LocalExecutor, the DAG
processor and the triggerer; or any set of named components (two schedulers, two triggerers,
Celery workers) with the settings of another executor. It talks to Airflow through its public
REST API and reads the metadata database with plain SQL.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: What each component runs: ``airflow <arguments>`` (the API server also gets its port).
DEFAULT_COMPONENTS: dict[str, tuple[str, ...]] = {name: (name,) for name in COMPONENTS}
#: Lines for the end of the test session's output (what a deployment test measured).
SUMMARY: list[str] = []


def component_hostname() -> str:
    """Airflow's ``[core] hostname_callable`` for a deployment on one machine: each component
    reports its own name (``CORTEX_COMPONENT``), so the ``job`` table says which scheduler or
    triggerer a row is and a task instance's ``hostname`` which Celery worker ran it."""
    return os.environ.get("CORTEX_COMPONENT") or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float, what: str, diagnostics=lambda: "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{diagnostics()}")
        time.sleep(0.2)


def airflow_env(
    home: Path, dags_folder: Path, database_url: str, api_port: int, extra: dict[str, str]
) -> dict[str, str]:
    """The environment of every process of one deployment: this machine's, minus any Airflow
    settings of its own, plus ``extra`` (e.g. connections) and the deployment's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update(extra)
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # `airflow` on PATH
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        }
    )
    return env


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1; ``url`` is its SQLAlchemy URL for Airflow."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cortex-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"
        self.url = f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"
        self._as_user: list[str] = []

    @staticmethod
    def unavailable_reason() -> str | None:
        if not (_pg_bin("initdb") and _pg_bin("pg_ctl")):
            return "PostgreSQL's initdb/pg_ctl are not installed (Debian package 'postgresql')"
        if os.geteuid() == 0 and not shutil.which("runuser"):
            return "running as root without runuser to start PostgreSQL as another user"
        return None

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as_user, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self._as_user = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres")
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        self._run(str(initdb), "-D", str(self.data), "-U", "airflow", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(str(pg_ctl), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        self.sql("postgres", "CREATE DATABASE airflow")
        return self

    def sql(self, database: str, statement: str, *params: Any) -> list[tuple]:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname=database)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement, params or None)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def stop(self) -> None:
        pg_ctl = _pg_bin("pg_ctl")
        if pg_ctl and self.data.exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A throw-away Redis on 127.0.0.1 with nothing persisted; ``url`` is a Celery broker URL."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cortex-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    @staticmethod
    def unavailable_reason() -> str | None:
        if not shutil.which("redis-server"):
            return "redis-server is not installed (Debian package 'redis-server')"
        return None

    def start(self) -> RedisServer:
        with (self.root / "redis.log").open("wb") as log:
            self._process = subprocess.Popen(
                [
                    "redis-server",
                    *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._answers, 30, f"redis-server on port {self.port}", self.log)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def log(self) -> str:
        path = self.root / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


class EmulatorControl:
    """The Cortex emulator's control routes, as a test in another process reads them: its
    record of every job (status, polls, CANCEL requests) and the lever that ends training."""

    def __init__(self, url: str) -> None:
        self.emulator_url = url

    def emulator(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.emulator_url}/cortex-emulator/{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def jobs(self, model_prefix: str) -> list[dict[str, Any]]:
        """The jobs of the models whose names start with ``model_prefix`` (one scenario's)."""
        return [job for job in self.emulator("GET", "jobs") if job["model_name"].startswith(model_prefix)]

    def job(self, job_id: str) -> dict[str, Any]:
        return next(job for job in self.emulator("GET", "jobs") if job["id"] == job_id)

    def end_training(self, job: dict[str, Any]) -> None:
        """The job succeeds now (the emulator's finish route)."""
        self.emulator("POST", f"jobs/{job['id']}/finish", {})


class DeploymentStack(EmulatorControl):
    """A deployment under test and the emulator it talks to: what every scenario reads."""

    def __init__(self, deployment: Deployment, emulator_url: str) -> None:
        super().__init__(emulator_url)
        self.deployment = deployment

    def diagnostics(self) -> str:
        return f"emulator jobs: {self.emulator('GET', 'jobs')}\n{self.deployment.logs(2500)}"

    def task_log(self, dag_id: str, run_id: str, attempt: int, map_index: int = -1) -> str:
        """The ``finetune`` task's log for one try (its trigger's logs included)."""
        folder = f"logs/dag_id={dag_id}/run_id={run_id}/task_id=finetune"
        if map_index >= 0:
            folder += f"/map_index={map_index}"
        paths = self.deployment.home.glob(f"{folder}/attempt={attempt}.log*")
        return "\n".join(path.read_text(errors="replace") for path in sorted(paths))

    def run_ended(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Wait for the DAG run to succeed or fail; return which."""
        return str(
            wait_for(
                lambda: (s := self.deployment.run_state(dag_id, run_id)) in ("success", "failed") and s,
                timeout,
                f"{dag_id} {run_id} to end",
                self.diagnostics,
            )
        )


class Deployment:
    """Airflow's components as separate processes sharing one metadata database.

    ``components`` names each process and says what it runs (``DEFAULT_COMPONENTS``: the four
    of a LocalExecutor deployment); ``settings`` are Airflow settings that replace this class's
    (another executor, its broker).
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        database_url: str,
        extra_env: dict[str, str],
        components: dict[str, tuple[str, ...]] | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        env = airflow_env(home, dags_folder, database_url, self.api_port, extra_env)
        env.update(
            {
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": "cortex-deployment-test-secret",
                # Quick to notice a dead scheduler or triggerer, as the scenarios kill them.
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "6",
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "3",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
            }
        )
        env.update(settings or {})
        self.env = env
        self.components = dict(components or DEFAULT_COMPONENTS)
        self.processes: dict[str, subprocess.Popen] = {}
        self._groups: list[int] = []
        """Every process group started, killed ones included: a scheduler killed alone leaves its
        LocalExecutor workers behind in its group, and they must not outlive the test."""
        self.starts: dict[str, int] = dict.fromkeys(self.components, 0)
        self._token: str | None = None

    # --- processes --------------------------------------------------------------------------

    def log_path(self, component: str) -> Path:
        return self.home / f"{component}.{self.starts[component]}.log"

    def airflow(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
        return result.stdout

    def migrate_and_start(self) -> None:
        """Create the metadata database's schema, then start every component."""
        self.airflow("db", "migrate")
        for component in self.components:
            self.start(component)

    def start(self, component: str) -> int:
        self.starts[component] += 1
        args = list(self.components[component])
        if args == ["api-server"]:
            args += ["--port", str(self.api_port)]
        with self.log_path(component).open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env={**self.env, "CORTEX_COMPONENT": component},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a test can kill it alone
            )
        self.processes[component] = process
        self._groups.append(process.pid)
        return process.pid

    def kill(self, component: str, *, whole_group: bool) -> None:
        """SIGKILL the component: its main process only (children live on), or its whole group."""
        process = self.processes[component]
        if whole_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait(timeout=30)

    def stop(self) -> None:
        for group in self._groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        for group in self._groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)

    def logs(self, chars: int = 4000) -> str:
        parts = []
        for path in sorted(self.home.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    # --- the REST API -----------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if not path.startswith("/auth/"):
            if self._token is None:
                self._token = self.request("GET", "/auth/token")["access_token"]
            headers["Authorization"] = f"Bearer {self._token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def healthy(self, component: str) -> bool:
        """The API server answers and, for a scheduler, triggerer or DAG processor, says that
        kind of component is healthy (any one of them, where several run)."""
        try:
            health = self.request("GET", "/api/v2/monitor/health")
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return False
        key = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}.get(
            self.components[component][0]
        )
        if key is None:
            return True
        return (health.get(key) or {}).get("status") == "healthy"

    def dag_parsed(self, dag_id: str) -> bool:
        try:
            return self.request("GET", f"/api/v2/dags/{dag_id}")["dag_id"] == dag_id
        except OSError:
            return False

    def wait_parsed(self, dag_ids: tuple[str, ...], timeout: float, diagnostics: Callable[[], str]) -> None:
        """Wait until the DAG processor has given the API each of ``dag_ids``."""
        for dag_id in dag_ids:
            wait_for(lambda d=dag_id: self.dag_parsed(d), timeout, f"{dag_id} parsed", diagnostics)

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def mark(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        self.request(
            "PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", {"new_state": state}
        )

    def clear(self, dag_id: str, run_id: str, task_id: str) -> None:
        self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "only_failed": False,
                "include_downstream": True,
                "reset_dag_runs": True,
            },
        )
