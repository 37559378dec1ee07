"""What waiting for a job means, and the one loop that does it (blocking or on an event loop).

The operator waits in a worker thread, the sensor across pokes, the trigger in the triggerer's
event loop and ``cortex-jobs wait`` in a shell, but all must agree on everything a user sees:
when a job counts as done, how progress reads in the log, how long to back off after a network
error, when to give up, and the event the task concludes from. :class:`Waiter` holds those
decisions without doing any waiting; :func:`wait_blocking` and :func:`wait_async` are the two
drivers that sleep and poll as it says (the sensor's pokes feed it one observation each).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from airflow_cortex.exceptions import CortexFineTuneError, CortexTransientError, CortexValidationError
from airflow_cortex.jobcontrol.events import failure_event, finished_event, timeout_event

if TYPE_CHECKING:
    import logging
    from collections.abc import Awaitable, Callable

    from airflow_cortex.sql.results import FineTuneJob

DEFAULT_POLL_INTERVAL: Final = 60.0
#: Each poll waits the interval +/- this share, at random. Waiters that start together (a
#: triggerer restart re-creates them all at once) would otherwise poll in the same instant forever,
#: and hundreds of wake-ups in one event-loop iteration stall the loop.
POLL_JITTER: Final = 0.1


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for errors that may pass (network, service unavailable).

    ``max_attempts`` consecutive transient failures end the wait; a success resets the count.
    Delays carry jitter so that hundreds of triggers that lost the same network do not come back
    in lockstep.
    """

    max_attempts: int = 5
    initial_delay: float = 2.0
    max_delay: float = 60.0

    def delay(self, attempt: int, jitter: float | None = None) -> float:
        """Seconds to wait after the ``attempt``-th consecutive failure (1-based)."""
        share = random.random() if jitter is None else jitter  # noqa: S311 - not security
        ceiling = min(self.max_delay, self.initial_delay * 2.0 ** max(attempt - 1, 0))
        return ceiling * (0.5 + share / 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "initial_delay": self.initial_delay,
            "max_delay": self.max_delay,
        }


def validate_poll_interval(value: object, parameter: str = "poll_interval") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise CortexValidationError(parameter, "must be a positive number of seconds", value)
    return float(value)


def validate_timeout(value: object, parameter: str = "timeout") -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise CortexValidationError(parameter, "must be a positive number of seconds or a timedelta", value)
    return float(seconds)


def progress_message(job: FineTuneJob) -> str:
    """The log line for one observation of a job."""
    line = f"Fine-tuning job {job.id}: {job.status or 'UNKNOWN'}"
    if job.progress is not None:
        line += f", progress {round(job.progress * 100)}%"
    return line


@dataclass(frozen=True)
class Step:
    """What a waiting loop does next: fire ``event`` (and stop), or sleep ``sleep`` seconds."""

    event: dict[str, Any] | None = None
    sleep: float = 0.0


@dataclass
class Waiter:
    """The decisions of one wait, without the waiting: a driver feeds it each DESCRIBE result or
    error and does what it says, so every mode ends in the same event, handled by the same code.

    :param deadline: Absolute time (``clock()`` seconds) when the wait gives up, or ``None``.
    :param backoff: Whether a transient error is retried after a backoff delay; ``False`` where
        something else decides when to look again (a sensor's next poke).
    """

    job_id: str
    poll_interval: float
    deadline: float | None
    log: logging.Logger | Any
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.time
    jitter: Callable[[], float] = random.random
    """A number in [0, 1) per poll; 0.5 gives the exact interval."""
    failures: int = 0
    last: FineTuneJob | None = None
    backoff: bool = True
    _last_line: str = ""
    _started: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._started = self.clock()

    def first_delay(self) -> float:
        """Seconds before the first poll, at random within one interval: spreads waiters that
        start together across the interval instead of polling them all at once."""
        return self.poll_interval * self.jitter()

    def observed(self, job: FineTuneJob) -> Step:
        self.failures = 0
        self.last = job
        line = progress_message(job)
        if line != self._last_line:
            self.log.info("%s", line)
            self._last_line = line
        if job.is_finished:
            return Step(event=finished_event(job))
        return self._sleep(self.poll_interval * (1 - POLL_JITTER + 2 * POLL_JITTER * self.jitter()))

    def failed(self, error: CortexFineTuneError) -> Step:
        if not isinstance(error, CortexTransientError):
            return Step(event=failure_event(self.job_id, error))
        self.failures += 1
        tolerated = self.retry_policy.max_attempts
        if self.failures >= tolerated:
            self.log.error(
                "Giving up on job %s after %d failed attempts in a row", self.job_id, self.failures
            )
            return Step(event=failure_event(self.job_id, error))
        delay = self.retry_policy.delay(self.failures) if self.backoff else 0.0
        again = f"retrying in {delay:.1f} s" if self.backoff else "checking again at the next poke"
        self.log.warning(
            "Could not check job %s (%d of %d failures tolerated), %s: %s",
            self.job_id,
            self.failures,
            tolerated,
            again,
            error,
        )
        return self._sleep(delay)

    def _sleep(self, seconds: float) -> Step:
        if self.deadline is None:
            return Step(sleep=seconds)
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            return Step(event=timeout_event(self.job_id, self.clock() - self._started, self.last))
        return Step(sleep=min(seconds, remaining))


def wait_blocking(
    waiter: Waiter,
    describe: Callable[[], FineTuneJob],
    first: FineTuneJob | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> dict[str, Any]:
    """Poll ``describe()`` as ``waiter`` says, on this thread, until it gives the event.

    ``first`` is an observation made just before (the resume decision's DESCRIBE): no second
    poll is sent for it.
    """
    step = waiter.observed(first) if first is not None else Step()
    while step.event is None:
        sleep(step.sleep)
        try:
            job = describe()
        except CortexFineTuneError as error:
            step = waiter.failed(error)
        else:
            step = waiter.observed(job)
    return step.event


async def wait_async(
    waiter: Waiter, describe: Callable[[], Awaitable[FineTuneJob]], *, spread: bool = False
) -> dict[str, Any]:
    """:func:`wait_blocking` on an event loop: ``await describe()`` for each poll.

    ``spread``: start at a random point of the first interval (see :meth:`Waiter.first_delay`),
    so a thousand waiters that start in one turn of the loop do not poll in it too.
    """
    step = Step(sleep=waiter.first_delay() if spread else 0.0)
    while step.event is None:
        await asyncio.sleep(step.sleep)
        try:
            job = await describe()
        except CortexFineTuneError as error:
            step = waiter.failed(error)
        else:
            step = waiter.observed(job)
    return step.event
