"""What one try of the operator knows: made fresh when the try starts, never carried over.

Airflow runs a task instance's tries (and a deferred try's resumption) on fresh copies of the
operator in fresh processes, except where it does not (``dag.test()`` runs every try on one
instance). Keeping a try's knowledge in one object made at its start means no try can read
another's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_cortex.operators.submission import DataChecks
    from airflow_cortex.sql.request import FineTuneRequest
    from airflow_cortex.sql.results import FineTuneJob


@dataclass
class Attempt:
    """One try (or its resumption after a deferral)."""

    context: Context
    """The running try's context; ``on_kill`` needs it, and Airflow calls that without one."""
    request: FineTuneRequest | None = None
    """The rendered arguments, validated once (also what lineage reports)."""
    data_checks: DataChecks | None = None
    """The pre-flight of this try, decided once (see :mod:`.submission`)."""
    job_id: str | None = None
    """The job this try has claimed (named in XCom, recorded as its owner)."""
    created: bool = False
    """This try's CREATE made the job: it cannot have finished yet, so no DESCRIBE is needed."""
    observed: FineTuneJob | None = None
    """The job as the resume decision just read it, used instead of a second DESCRIBE."""
    model_place: list[str | None] | None = None
    """Where the tuned model's page will be, as the deferring try read it (``None``: read it)."""
    snowsight_url: str | None = None
    """What the Snowsight link shows; ``None`` until this try knows (a reader asks XCom then)."""
    result: dict[str, Any] | None = None
    """The job's result once the try concluded."""

    @property
    def concluded(self) -> bool:
        return self.result is not None
