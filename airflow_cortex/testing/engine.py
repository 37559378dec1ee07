"""The emulated Cortex fine-tuning service: job lifecycle, data accounting, model registry.

It trains nothing. It reproduces what a DAG can observe of Snowflake's service: the job id
CREATE returns, the PENDING -> IN_PROGRESS -> SUCCESS/ERROR/CANCELLED lifecycle with rising
progress on a clock you control, the errors Snowflake reports for unusable data, a fully
qualified model name (suffixed when the name is taken), and figures *computed from the data*
(trained tokens, and synthetic losses) so that changing the data changes the result.

It also answers ``SNOWFLAKE.CORTEX.COMPLETE`` so that a pipeline can evaluate what it tuned.
That is emulation, not inference: a tuned model answers a prompt with the completion of the
training pair whose prompt shares the most words with it (ties: the earlier pair), so it is
deterministic and reflects its training data; a base model gives one fixed, generic answer.

This module is independent of the SQL plumbing (see :mod:`airflow_cortex.testing.server`):
the engine is given the FINETUNE arguments and, separately, the rows a job's queries return.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from airflow_cortex.base_models import DOCUMENT_MODELS, KNOWN_BASE_MODELS
from airflow_cortex.data_sources import classify
from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.names import IdentifierPart, ModelName, parse_model_name
from airflow_cortex.statements import normalize_options

Clock = Callable[[], float]

# Emulator choices where Snowflake's behaviour is not documented; see the module docs.
DEFAULT_EPOCHS_CAP = 3
_NO_LIMIT = 10**12
CHARS_PER_TOKEN = 4
VALIDATION_SPLIT_EVERY = 10
BASE_MODEL_ANSWER = "I am a general-purpose assistant and do not know this product. Please contact support."


class ManualClock:
    """A clock that moves only when told to, for tests that step a job through its life."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now


class EmulatedSnowflakeError(Exception):
    """An error FINETUNE reports synchronously, as a SQL error with Snowflake's codes."""

    def __init__(self, message: str, errno: int = 100357, sqlstate: str = "22023") -> None:
        self.message = message
        self.errno = errno
        self.sqlstate = sqlstate
        super().__init__(message)


def _suffixed(name: ModelName, n: int) -> ModelName:
    """``name`` with Snowflake's suffix for a taken name (``_1``, ``_2``, ...) on its last part;
    the numbering is a guess, the suffix itself is documented."""
    last = name.name
    if last.quoted:
        part = IdentifierPart(f"{last.text}_{n}", quoted=True)
    else:
        written = f"{last.as_written()}_{n}"
        part = IdentifierPart(written.upper(), quoted=False, written=written)
    return ModelName(raw=name.raw, parts=(*name.parts[:-1], part))


def estimate_tokens(text: str) -> int:
    """The emulator's token count: one token per four characters, rounded up.

    The same rule as the provider's pre-flight estimate, so on the emulator the estimate and
    DESCRIBE's ``trained_tokens`` agree exactly; on Snowflake they differ by the tokenizer.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def usable(value: Any) -> bool:
    """A prompt or completion that teaches something: not NULL, not blank (SQL ``TRIM`` blank)."""
    return value is not None and str(value).strip(" ") != ""


def words(text: str) -> frozenset[str]:
    return frozenset(text.lower().split())


def _nearest_completion(prompt: str, pairs: Iterable[tuple[str, str]]) -> str:
    """The completion of the pair whose prompt shares the most words with ``prompt``."""
    asked = words(prompt)
    best, best_score = BASE_MODEL_ANSWER, -1.0
    for known, completion in pairs:
        seen = words(known)
        union = asked | seen
        score = len(asked & seen) / len(union) if union else 0.0
        if score > best_score:
            best, best_score = completion, score
    return best


@dataclass(frozen=True)
class DataSummary:
    """What a job's data amounts to, once rows with a NULL prompt or completion are dropped."""

    rows: int
    input_tokens: int
    """Prompt plus completion tokens, each truncated to the base model's window."""
    distinct_completions: int
    vocabulary: frozenset[str]
    pairs: tuple[tuple[str, str], ...] = ()
    """The usable pairs, in order: what a tuned model's emulated COMPLETE answers from."""

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[Any, Any]], prompt_limit: int, completion_limit: int
    ) -> DataSummary:
        count = tokens = 0
        completions: set[str] = set()
        vocabulary: set[str] = set()
        pairs: list[tuple[str, str]] = []
        for prompt, completion in rows:
            if not (usable(prompt) and usable(completion)):
                continue
            prompt_text, completion_text = str(prompt), str(completion)
            pairs.append((prompt_text, completion_text))
            count += 1
            tokens += min(estimate_tokens(prompt_text), prompt_limit)
            tokens += min(estimate_tokens(completion_text), completion_limit)
            completions.add(completion_text)
            vocabulary.update(words(completion_text))
        return cls(count, tokens, len(completions), frozenset(vocabulary), tuple(pairs))


@dataclass(frozen=True)
class FinetuneCall:
    """One FINETUNE call exactly as the SQL layer decoded its arguments."""

    operation: str
    arguments: tuple[Any, ...]
    database: str | None
    schema: str | None


@dataclass
class EmulatedJob:
    id: str
    model_name: ModelName
    base_model: str
    training_query: str
    validation_query: str | None
    options: dict[str, Any]
    database: str
    schema: str
    created_at: float
    pending_seconds: float
    training_seconds: float
    loaded: bool = False
    epochs: int = 1
    training: DataSummary | None = None
    validation: DataSummary | None = None
    error: tuple[str, str] | None = None
    cancelled_at: float | None = None
    model: str | None = None
    trained_tokens: int | None = None
    training_loss: float | None = None
    validation_loss: float | None = None

    error_after: float = 0.0
    """Seconds into training when ``error`` strikes (0: as soon as the job starts)."""
    stuck: bool = False

    @property
    def started_at(self) -> float:
        return self.created_at + self.pending_seconds

    @property
    def finishes_at(self) -> float:
        if self.stuck:
            return math.inf
        if self.error is not None:
            return self.started_at + self.error_after
        return self.started_at + self.training_seconds

    def status(self, now: float) -> str:
        if (
            self.cancelled_at is not None
            and self.cancelled_at < self.finishes_at
            and now >= self.cancelled_at
        ):
            return "CANCELLED"
        if now < self.started_at or not self.loaded:
            return "PENDING"
        if now < self.finishes_at:
            return "IN_PROGRESS"
        return "ERROR" if self.error is not None else "SUCCESS"

    def progress(self, now: float) -> float:
        status = self.status(now)
        if status == "SUCCESS":
            return 1.0
        if status == "PENDING":
            return 0.0
        at = min(now, self.finishes_at, self.cancelled_at if self.cancelled_at is not None else now)
        return round(max(0.0, min((at - self.started_at) / self.training_seconds, 0.99)), 2)


@dataclass(frozen=True)
class ScriptedOutcome:
    """How the next job ends regardless of its data: what tests need to reach every branch.

    ``ERROR`` fails ``after`` seconds into training with ``code``/``message``; ``CANCELLED`` is
    cancelled by the service ``after`` seconds into training; ``STUCK`` never leaves IN_PROGRESS.
    """

    status: str
    message: str = "Fine-tuning failed: an internal error occurred in the training service."
    code: str = "INTERNAL_ERROR"
    after: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in ("ERROR", "CANCELLED", "STUCK"):
            raise ValueError("A scripted outcome is ERROR, CANCELLED or STUCK")


class CortexEngine:
    """Thread-safe store of emulated jobs; every public method is one FINETUNE form."""

    def __init__(
        self,
        clock: Clock | None = None,
        pending_seconds: float = 1.0,
        training_seconds: float = 5.0,
    ) -> None:
        if pending_seconds < 0 or training_seconds <= 0:
            raise ValueError("pending_seconds must be >= 0 and training_seconds > 0")
        self.clock: Clock = clock or time.time
        self.pending_seconds = pending_seconds
        self.training_seconds = training_seconds
        self._lock = threading.RLock()
        self._jobs: dict[str, EmulatedJob] = {}
        self._models: dict[tuple[str, str, str], str] = {}
        """A tuned model's resolved name (``ModelName.key``) -> the job that produced it."""
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
            if operation in ("DESCRIBE", "CANCEL") and len(arguments) == 2:
                job_id = arguments[1]
                if operation == "DESCRIBE":
                    return json.dumps(self.describe(job_id))
                return self.cancel(job_id)
        raise EmulatedSnowflakeError(
            f"FINETUNE: invalid arguments for {operation!r} ({len(arguments)} given); "
            "expected CREATE(name, base_model, training_query[, validation_query[, options]]), "
            "DESCRIBE(job_id), SHOW() or CANCEL(job_id)"
        )

    # --- CREATE -----------------------------------------------------------------------------

    def create(self, args: list[Any], database: str | None, schema: str | None) -> str:
        if not 3 <= len(args) <= 5:
            raise EmulatedSnowflakeError("FINETUNE('CREATE') takes 4 to 6 arguments")
        name, base_model, training_query = args[0], args[1], args[2]
        validation_query = args[3] if len(args) > 3 else None
        raw_options = args[4] if len(args) > 4 else None
        for label, value in (
            ("name", name),
            ("base_model", base_model),
            ("training_data_query", training_query),
        ):
            if not isinstance(value, str) or not value:
                raise EmulatedSnowflakeError(f"FINETUNE('CREATE'): {label} must be a non-empty string")
        if validation_query == "":
            validation_query = None
        try:
            model_name = parse_model_name(name, "name", at_prefix=base_model in DOCUMENT_MODELS)
            options = normalize_options(raw_options)
        except CortexValidationError as exc:
            raise EmulatedSnowflakeError(f"FINETUNE('CREATE'): {exc}") from None
        spec = KNOWN_BASE_MODELS.get(base_model) or DOCUMENT_MODELS.get(base_model)
        if spec is None or not spec.available:
            # The table's status decides, as Snowflake's current list does; the wording is a guess.
            raise EmulatedSnowflakeError(
                f"FINETUNE('CREATE'): base model {base_model!r} is not supported for fine-tuning"
            )
        if base_model in DOCUMENT_MODELS and any(
            isinstance(data, str) and classify(data) != "dataset"
            for data in (training_query, validation_query)
        ):
            # Documented: arctic-extract trains on Dataset versions. The wording is a guess.
            raise EmulatedSnowflakeError(
                f"FINETUNE('CREATE'): {base_model} requires Snowflake ML Dataset versions as training "
                "and validation data"
            )
        has_database = bool(database) and database not in ("memory", "system", "temp")
        if model_name.database is None and not has_database:
            raise EmulatedSnowflakeError(
                "Cannot perform CREATE MODEL. This session does not have a current database. "
                "Call 'USE DATABASE', or use a qualified name.",
                errno=90105,
                sqlstate="22000",
            )
        job = EmulatedJob(
            id=f"ft_{uuid.uuid4()}",
            model_name=model_name,
            base_model=base_model,
            training_query=training_query,
            validation_query=validation_query,
            options=options,
            database=database or "",
            schema=schema or "PUBLIC",
            created_at=self.clock(),
            pending_seconds=self.pending_seconds,
            training_seconds=self.training_seconds,
        )
        if self._scripts:
            self._apply(job, self._scripts.pop(0))
        self._jobs[job.id] = job
        return job.id

    @staticmethod
    def _apply(job: EmulatedJob, outcome: ScriptedOutcome) -> None:
        if outcome.status == "STUCK":
            job.stuck = True
        elif outcome.status == "CANCELLED":
            job.cancelled_at = job.started_at + outcome.after
        else:
            job.error = (outcome.code, outcome.message)
            job.error_after = outcome.after

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
            if query_error is not None:
                job.error_after, job.error = 0.0, query_error
                return
            # A document model (arctic-extract) publishes no windows or row limits: none apply.
            spec = KNOWN_BASE_MODELS.get(job.base_model)
            prompt_cap = spec.prompt_tokens if spec else _NO_LIMIT
            completion_cap = spec.completion_tokens if spec else _NO_LIMIT
            max_rows = spec.max_rows if spec else (lambda _epochs: _NO_LIMIT)
            rows = training_rows or []
            if job.validation_query is None and len(rows) >= VALIDATION_SPLIT_EVERY:
                # Snowflake splits the training data itself when no validation query is given.
                validation_rows = rows[VALIDATION_SPLIT_EVERY - 1 :: VALIDATION_SPLIT_EVERY]
                rows = [
                    r for i, r in enumerate(rows) if i % VALIDATION_SPLIT_EVERY != VALIDATION_SPLIT_EVERY - 1
                ]
            training = DataSummary.from_rows(rows, prompt_cap, completion_cap)
            validation = DataSummary.from_rows(
                validation_rows if validation_rows is not None else rows,
                prompt_cap,
                completion_cap,
            )
            if training.rows == 0:
                job.error_after, job.error = (
                    0.0,
                    (
                        "INVALID_PARAMETER_VALUE",
                        "Training data is empty: the training query returned no rows with a non-blank "
                        "prompt and completion.",
                    ),
                )
                return
            if job.validation_query is not None and validation.rows == 0:
                job.error_after, job.error = (
                    0.0,
                    (
                        "INVALID_PARAMETER_VALUE",
                        "Validation data is empty: the validation query returned no rows with a non-blank "
                        "prompt and completion.",
                    ),
                )
                return
            requested = job.options.get("max_epochs")
            epochs = (
                int(requested) if requested else max(1, min(DEFAULT_EPOCHS_CAP, max_rows(1) // training.rows))
            )
            if training.rows > max_rows(epochs):
                job.error_after, job.error = (
                    0.0,
                    (
                        "INVALID_PARAMETER_VALUE",
                        f"Training data has {training.rows} rows; {job.base_model} allows at most "
                        f"{max_rows(epochs)} rows with {epochs} epoch(s).",
                    ),
                )
                return
            job.epochs = epochs
            job.training, job.validation = training, validation
            job.trained_tokens = training.input_tokens * epochs
            # Synthetic but data-driven: more varied completions are "harder" to learn, more
            # epochs lower the training loss, and validation data whose words the training
            # data never shows costs more.
            variety = training.distinct_completions / training.rows
            job.training_loss = round(0.15 + 1.6 * variety / (1 + 0.5 * epochs), 4)
            union = training.vocabulary | validation.vocabulary
            overlap = len(training.vocabulary & validation.vocabulary) / len(union) if union else 1.0
            job.validation_loss = round(job.training_loss + 0.05 + 0.8 * (1 - overlap), 4)

    # --- DESCRIBE / SHOW / CANCEL -----------------------------------------------------------

    def _get(self, job_id: object) -> EmulatedJob:
        job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise EmulatedSnowflakeError(f"Fine-tuning job not found: {job_id}", errno=2003, sqlstate="02000")
        return job

    def _settle(self, now: float) -> None:
        """Give every job that has succeeded by ``now`` its model, in the order they finished."""
        finished = sorted(
            (j for j in self._jobs.values() if j.model is None and j.status(now) == "SUCCESS"),
            key=lambda j: (j.finishes_at, j.created_at),
        )
        for job in finished:
            name = job.model_name
            candidate, n = name, 0
            while candidate.key(job.database, job.schema) in self._models:
                n += 1
                candidate = _suffixed(name, n)
            self._models[candidate.key(job.database, job.schema)] = job.id
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
            if status == "SUCCESS":
                result.update(
                    finished_on=int(job.finishes_at * 1000),
                    model=job.model,
                    trained_tokens=job.trained_tokens,
                    training_result={
                        "training_loss": job.training_loss,
                        "validation_loss": job.validation_loss,
                    },
                )
            elif status == "ERROR" and job.error:
                result.update(
                    finished_on=int(job.finishes_at * 1000),
                    error={"code": job.error[0], "message": job.error[1]},
                )
            elif status == "CANCELLED" and job.cancelled_at is not None:
                result.update(finished_on=int(job.cancelled_at * 1000))
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
        """``COMPLETE(model, prompt)``: see the module docs for how answers are made."""
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
        return _nearest_completion(str(prompt), training.pairs if training else ())

    def _tuned_model(self, model: str, database: str | None, schema: str | None) -> EmulatedJob:
        try:
            key: tuple[str, str, str] | None = parse_model_name(model, "model").key(
                database or "", schema or "PUBLIC"
            )
        except CortexValidationError:
            key = None
        job_id = self._models.get(key) if key is not None else None
        if job_id is None or job_id not in self._jobs:
            raise EmulatedSnowflakeError(
                f"Requested model '{model}' does not exist or access is not authorized.",
                errno=2003,
                sqlstate="02000",
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
        job's DESCRIBEs so far) tells it that a restarted waiter has taken up the job again.
        """
        with self._lock:
            now = self.clock()
            self._settle(now)
            polls = Counter(
                call.arguments[0] for call in self.calls if call.operation == "DESCRIBE" and call.arguments
            )
            rows = []
            for job in sorted(self._jobs.values(), key=lambda j: j.created_at):
                status = job.status(now)
                ended = None
                if status == "CANCELLED":
                    ended = job.cancelled_at
                elif status in ("SUCCESS", "ERROR"):
                    ended = job.finishes_at
                rows.append(
                    {
                        "id": job.id,
                        "status": status,
                        "model_name": job.model_name.raw,
                        "created_at": job.created_at,
                        "ended_at": ended,
                        "polls": polls[job.id],
                    }
                )
            return rows
