"""Pre-flight settings: how strict the data checks are, and the budget rule. Pure.

What a DAG author writes (``preflight_checks=...``, ``max_trained_tokens=...``) is validated
here when the DAG is parsed; the checks themselves (the profiling statement and the verdict on
its result) live in :mod:`.profile` and :mod:`.verdict`, which are imported only when a task runs,
so that parsing a DAG file stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_cortex.exceptions import CortexValidationError

if TYPE_CHECKING:
    from airflow_cortex.sql.sources import DataSource

#: Characters per token of the estimate (see :mod:`.profile`).
DEFAULT_CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class PreflightChecks:
    """How strict the pre-flight data checks are. ``CortexFineTuneOperator(preflight_checks=...)``.

    :param min_rows: Usable training rows required (an empty or near-empty interval is the
        commonest way a scheduled retraining goes wrong). Validation data needs at least one.
    :param max_invalid_fraction: Share of rows allowed to have a NULL or blank prompt or
        completion. Such rows teach nothing; ``0`` fails on the first one, so a query change that
        starts producing NULLs is caught instead of training on fewer rows than intended.
    :param max_truncated_fraction: Share of rows allowed to exceed the base model's prompt or
        completion window by the estimate. Snowflake truncates those, so the model learns cut-off
        answers.
    :param chars_per_token: The token estimate's divisor (see :mod:`.profile`).
    """

    min_rows: int = 10
    max_invalid_fraction: float = 0.0
    max_truncated_fraction: float = 0.0
    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN

    def __post_init__(self) -> None:
        if isinstance(self.min_rows, bool) or not isinstance(self.min_rows, int) or self.min_rows < 1:
            raise CortexValidationError("preflight_checks.min_rows", "must be an integer >= 1", self.min_rows)
        for name in ("max_invalid_fraction", "max_truncated_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise CortexValidationError(f"preflight_checks.{name}", "must be a number from 0 to 1", value)
        value = self.chars_per_token
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value <= 20:
            raise CortexValidationError("preflight_checks.chars_per_token", "must be from 0.5 to 20", value)


def resolve_checks(value: object) -> PreflightChecks | None:
    """The operator's ``preflight_checks`` argument: ``True`` (defaults), ``False``/``None``, or a
    :class:`PreflightChecks` or mapping of its fields."""
    if value is True:
        return PreflightChecks()
    if value is False or value is None:
        return None
    if isinstance(value, PreflightChecks):
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(PreflightChecks.__dataclass_fields__))
        if unknown:
            raise CortexValidationError(
                "preflight_checks",
                f"has unknown key(s) {', '.join(unknown)}; known: "
                f"{', '.join(PreflightChecks.__dataclass_fields__)}",
            )
        return PreflightChecks(**value)
    raise CortexValidationError(
        "preflight_checks", "must be True, False, a PreflightChecks or a dict of its fields", value
    )


@dataclass(frozen=True)
class PreflightPlan:
    """What one try's pre-flight profiles and judges: the checks (``None``: the budget alone),
    the epochs and budget the estimate is held against, and the data it cannot profile."""

    checks: PreflightChecks | None
    epochs: int | None
    budget: int | None
    unprofiled: list[str]

    @property
    def chars_per_token(self) -> float:
        return (self.checks or PreflightChecks()).chars_per_token


def validate_budget(value: object, max_epochs: object) -> int | None:
    """``max_trained_tokens``: a positive integer, and only with ``max_epochs`` fixed.

    Without ``max_epochs`` Snowflake picks the number of epochs when the job starts, so the
    trained tokens (input tokens x epochs) cannot be bounded beforehand.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CortexValidationError("max_trained_tokens", "must be a positive integer", value)
    if max_epochs is None or max_epochs == "":
        raise CortexValidationError(
            "max_trained_tokens",
            "needs max_epochs (or options.max_epochs): without it Snowflake chooses the number of "
            "epochs when the job starts, so the trained tokens cannot be bounded before paying",
        )
    return value


def require_profiled_training(budget: int | None, training: DataSource | None) -> None:
    """``max_trained_tokens`` needs training data pre-flight can estimate: a query, not a Dataset
    version or stage files, which FINETUNE reads itself."""
    if budget is not None and training is not None and not training.is_query:
        raise CortexValidationError(
            "max_trained_tokens",
            f"needs training data given as a query: the trained tokens of {training.describe()} cannot be "
            "estimated before CREATE; drop the budget or select the data with a query",
        )
