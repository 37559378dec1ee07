"""The emulated Cortex fine-tuning service: job lifecycle, data accounting, model registry.

It trains nothing. It reproduces what a DAG can observe of Snowflake's service: the job id
CREATE returns, the PENDING -> IN_PROGRESS -> SUCCESS/ERROR/CANCELLED lifecycle with rising
progress on a clock you control, the errors Snowflake reports for unusable data, a fully
qualified model name (suffixed when the name is taken), and figures *computed from the data*
(trained tokens, and synthetic losses) so that changing the data changes the result. It also
answers ``SNOWFLAKE.CORTEX.COMPLETE`` so that a pipeline can evaluate what it tuned (emulation,
not inference: see :mod:`.training`).

This module is independent of the SQL plumbing (see :mod:`.server`): the engine is given the
FINETUNE arguments and, separately, the rows a job's queries return. It checks what it is given
with its own code (:mod:`.arguments`), never the provider's.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_cortex.emulator.arguments import parse_create
from airflow_cortex.emulator.identifiers import InvalidName, ObjectName, parse_name
from airflow_cortex.emulator.jobs import EmulatedJob, EmulatedSnowflakeError, ScriptedOutcome
from airflow_cortex.emulator.training import BASE_MODEL_ANSWER, Training, nearest_completion, train
from airflow_cortex.sql.base_models import KNOWN_BASE_MODELS

if TYPE_CHECKING:
    from airflow_cortex.emulator.jobs import Clock

#: Snowflake's error number and SQL state for an object it does not know.
_UNKNOWN_ERRNO, _UNKNOWN_SQLSTATE = 2003, "02000"
_SESSION_DATABASES = ("memory", "system", "temp")
"""What DuckDB reports as the current database when the session has none of its own."""


@dataclass(frozen=True)
class FinetuneCall:
    """One FINETUNE call exactly as the SQL layer decoded its arguments."""

    operation: str
    arguments: tuple[Any, ...]
    database: str | None
    schema: str | None


class CortexEngine:
    """Thread-safe store of emulated jobs; every public method is one FINETUNE form."""

    def __init__(
        self, clock: Clock | None = None, pending_seconds: float = 1.0, training_seconds: float = 5.0
    ) -> None:
        if pending_seconds < 0 or training_seconds <= 0:
            raise ValueError("pending_seconds must be >= 0 and training_seconds > 0")
        self.clock: Clock = clock or time.time
        self.pending_seconds = pending_seconds
        self.training_seconds = training_seconds
        self._lock = threading.RLock()
        self._jobs: dict[str, EmulatedJob] = {}
        self._models: dict[tuple[str, str, str], str] = {}
        """A tuned model's resolved name -> the job that produced it."""
        self._scripts: list[ScriptedOutcome] = []
        self.calls: list[FinetuneCall] = []
        self.completions: Counter[str] = Counter()
        """COMPLETE calls per model (one per row), e.g. to check an evaluation's cost."""
        self._replays: dict[tuple[str, str | None], str] = {}

    # --- scripting, for tests ---------------------------------------------------------------

    def script_next_job(self, outcome: ScriptedOutcome) -> None:
        """Make the next job CREATE books end as ``outcome`` (queued: one outcome per job)."""
        with self._lock:
            self._scripts.append(outcome)

    def replay(self, operation: str, text: str, job_id: str | None = None) -> None:
        """Answer ``FINETUNE(operation[, job_id])`` with ``text``, verbatim: a recorded answer of
        Snowflake's, so a test runs a published output through the connector and the hook."""
        with self._lock:
            self._replays[(operation.upper(), job_id)] = text

    def finish(self, job_id: object) -> None:
        """End a training job's training now, with success: its next DESCRIBE shows the model.

        For a test in another process that disrupts a deployment while a job trains: the job
        trains until the test has seen the deployment recover, so no fixed training time has to
        outlast a restart on a slow machine, and none makes a fast one wait.
        """
        with self._lock:
            now = self.clock()
            job = self._get(job_id)
            status = job.status(now)
            if status not in ("PENDING", "IN_PROGRESS") or not job.loaded or job.error or job.stuck:
                raise EmulatedSnowflakeError(
                    f"Cannot finish fine-tuning job {job.id}: it is {status}"
                    + (", scripted to fail or stay stuck" if job.error or job.stuck else "")
                )
            job.pending_seconds = min(job.pending_seconds, now - job.created_at)
            job.training_seconds = now - job.started_at  # SUCCESS from now on, on any clock

    def forget(self, job_id: str) -> None:
        """Garbage-collect a job as Snowflake does some time after a job ends."""
        with self._lock:
            self._get(job_id)
            del self._jobs[job_id]

    # --- the SQL entry point ----------------------------------------------------------------

    def call(self, arguments: list[Any], database: str | None, schema: str | None) -> str:
        """Dispatch one ``FINETUNE(...)`` call; returns the text Snowflake would return."""
        if not arguments or not isinstance(arguments[0], str):
            raise EmulatedSnowflakeError(
                "FINETUNE: the first argument must be one of CREATE, DESCRIBE, SHOW, CANCEL"
            )
        operation = arguments[0].upper()
        with self._lock:
            self.calls.append(FinetuneCall(operation, tuple(arguments[1:]), database, schema))
            replayed = self._replays.get((operation, arguments[1] if len(arguments) == 2 else None))
            if replayed is not None:
                return replayed
            if operation == "CREATE":
                return self.create(arguments[1:], database, schema)
            if operation == "SHOW" and len(arguments) == 1:
                return json.dumps(self.show())
            if operation == "DESCRIBE" and len(arguments) == 2:
                return json.dumps(self.describe(arguments[1]))
            if operation == "CANCEL" and len(arguments) == 2:
                return self.cancel(arguments[1])
        raise EmulatedSnowflakeError(
            f"FINETUNE: invalid arguments for {operation!r} ({len(arguments)} given); "
            "expected CREATE(name, base_model, training_query[, validation_query[, options]]), "
            "DESCRIBE(job_id), SHOW() or CANCEL(job_id)"
        )

    # --- CREATE -----------------------------------------------------------------------------

    def create(self, args: list[Any], database: str | None, schema: str | None) -> str:
        request = parse_create(args)
        has_database = bool(database) and database not in _SESSION_DATABASES
        if len(request.name.parts) < 3 and not has_database:
            raise EmulatedSnowflakeError(
                "Cannot perform CREATE MODEL. This session does not have a current database. "
                "Call 'USE DATABASE', or use a qualified name.",
                errno=90105,
                sqlstate="22000",
            )
        job = EmulatedJob(
            id=f"ft_{uuid.uuid4()}",
            model_name=request.model_name,
            name=request.name,
            base_model=request.base_model,
            training_query=request.training,
            validation_query=request.validation,
            options=request.options,
            database=database or "",
            schema=schema or "PUBLIC",
            created_at=self.clock(),
            pending_seconds=self.pending_seconds,
            training_seconds=self.training_seconds,
        )
        with self._lock:
            if self._scripts:
                job.script(self._scripts.pop(0))
            self._jobs[job.id] = job
        return job.id

    def jobs_to_load(self) -> list[EmulatedJob]:
        """Jobs whose data has not been read yet; the SQL layer reads it outside any UDF."""
        with self._lock:
            return [job for job in self._jobs.values() if not job.loaded]

    def load(
        self,
        job_id: str,
        training_rows: list[tuple[Any, Any]] | None,
        validation_rows: list[tuple[Any, Any]] | None,
        query_error: tuple[str, str] | None = None,
    ) -> None:
        """Record what a job's queries returned (or why they failed) and fix its outcome."""
        with self._lock:
            job = self._jobs[job_id]
            job.loaded = True
            epochs = job.options.get("max_epochs")
            outcome = query_error or train(
                job.base_model,
                epochs if isinstance(epochs, int) else None,
                training_rows or [],
                validation_rows,
                job.validation_query is not None,
            )
            if not isinstance(outcome, Training):
                job.fail(*outcome)
                return
            job.epochs, job.training, job.validation = outcome.epochs, outcome.training, outcome.validation
            job.trained_tokens = outcome.trained_tokens
            job.training_loss, job.validation_loss = outcome.training_loss, outcome.validation_loss

    # --- DESCRIBE / SHOW / CANCEL -----------------------------------------------------------

    def _get(self, job_id: object) -> EmulatedJob:
        job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise EmulatedSnowflakeError(
                f"Fine-tuning job not found: {job_id}", _UNKNOWN_ERRNO, _UNKNOWN_SQLSTATE
            )
        return job

    def _settle(self, now: float) -> None:
        """Give every job that has succeeded by ``now`` its model, in the order they finished."""
        finished = sorted(
            (j for j in self._jobs.values() if j.model is None and j.status(now) == "SUCCESS"),
            key=lambda j: (j.finishes_at, j.created_at),
        )
        for job in finished:
            candidate, n = job.name, 0
            while candidate.resolve(job.database, job.schema) in self._models:
                n += 1
                candidate = job.name.suffixed(n)
            self._models[candidate.resolve(job.database, job.schema)] = job.id
            job.model = candidate.reported(job.database, job.schema)

    def describe(self, job_id: object) -> dict[str, Any]:
        with self._lock:
            now = self.clock()
            self._settle(now)
            job = self._get(job_id)
            status = job.status(now)
            result: dict[str, Any] = {
                "id": job.id,
                "status": status,
                "progress": job.progress(now),
                "base_model": job.base_model,
                "created_on": int(job.created_at * 1000),
                "training_data": job.training_query,
                "validation_data": job.validation_query or "",
                "options": job.options,
            }
            ended = job.ended_at(now)
            if ended is not None:
                result["finished_on"] = int(ended * 1000)
            if status == "SUCCESS":
                result.update(
                    model=job.model,
                    trained_tokens=job.trained_tokens,
                    training_result={
                        "training_loss": job.training_loss,
                        "validation_loss": job.validation_loss,
                    },
                )
            elif status == "ERROR" and job.error:
                result["error"] = {"code": job.error[0], "message": job.error[1]}
            return result

    def show(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self.clock()
            self._settle(now)
            return [
                {
                    "id": j.id,
                    "status": j.status(now),
                    "base_model": j.base_model,
                    "created_on": int(j.created_at * 1000),
                }
                for j in sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)
            ]

    def cancel(self, job_id: object) -> str:
        with self._lock:
            now = self.clock()
            self._settle(now)
            job = self._get(job_id)
            status = job.status(now)
            if status in ("SUCCESS", "ERROR", "CANCELLED"):
                raise EmulatedSnowflakeError(
                    f"Cannot cancel fine-tuning job {job.id}: it already ended with status {status}"
                )
            job.cancelled_at = now
            return f"Canceled Cortex Fine-tuning job: {job.id}"

    # --- COMPLETE ----------------------------------------------------------------------------

    def complete(self, arguments: list[Any], database: str | None, schema: str | None) -> str | None:
        """``COMPLETE(model, prompt)``: see :mod:`.training` for how answers are made."""
        if len(arguments) != 2:
            raise EmulatedSnowflakeError(
                "COMPLETE: the emulator supports COMPLETE(model, prompt) only (no options or message arrays)"
            )
        model, prompt = arguments
        if not isinstance(model, str) or not model:
            raise EmulatedSnowflakeError("COMPLETE: model must be a non-empty string")
        if prompt is None:
            return None
        with self._lock:
            if "-" in model or model in KNOWN_BASE_MODELS:
                self.completions[model] += 1
                return BASE_MODEL_ANSWER
            self._settle(self.clock())
            job = self._tuned_model(model, database, schema)
            self.completions[job.model or model] += 1
            training = job.training
        return nearest_completion(str(prompt), training.pairs if training else ())

    def _tuned_model(self, model: str, database: str | None, schema: str | None) -> EmulatedJob:
        try:
            name: ObjectName | None = parse_name(model, what="model")
        except InvalidName:
            name = None
        job_id = self._models.get(name.resolve(database or "", schema or "PUBLIC")) if name else None
        if job_id is None or job_id not in self._jobs:
            raise EmulatedSnowflakeError(
                f"Requested model '{model}' does not exist or access is not authorized.",
                _UNKNOWN_ERRNO,
                _UNKNOWN_SQLSTATE,
            )
        return self._jobs[job_id]

    # --- inspection for tests ---------------------------------------------------------------

    def job(self, job_id: str) -> EmulatedJob:
        with self._lock:
            return self._get(job_id)

    @property
    def job_count(self) -> int:
        with self._lock:
            return len(self._jobs)

    def timeline(self) -> list[dict[str, Any]]:
        """Every job's life so far, oldest first: when it was created and (if it has) ended.

        What a test needs to prove "at most one job running at a time" for a task, and to count
        jobs created and cancelled, while the emulator serves another process; ``polls`` (the
        job's DESCRIBEs so far) tells it that a restarted waiter has taken up the job again, and
        ``cancel_requests`` (every CANCEL that reached the service, refused ones too) that no
        stale try or moved trigger tried to cancel it.
        """
        with self._lock:
            now = self.clock()
            self._settle(now)
            per_job = Counter(
                (call.operation, call.arguments[0])
                for call in self.calls
                if call.operation in ("DESCRIBE", "CANCEL") and call.arguments
            )
            return [
                {
                    "id": job.id,
                    "status": job.status(now),
                    "model_name": job.model_name,
                    "created_at": job.created_at,
                    "ended_at": job.ended_at(now),
                    "polls": per_job["DESCRIBE", job.id],
                    "cancel_requests": per_job["CANCEL", job.id],
                }
                for job in sorted(self._jobs.values(), key=lambda j: j.created_at)
            ]
