"""The pre-flight verdict: what the profiled figures say about the data, and what the job will
cost, before anything is paid for. Pure.

Each problem is a sentence that names the query, the rows concerned and the fix, so a failed
task's log says what to change; the estimate is logged, pushed to XCom ``estimate`` and held
against ``max_trained_tokens``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_cortex.exceptions import CortexBudgetExceededError, CortexDataCheckError
from airflow_cortex.preflight.profile import SAMPLE_CHARS, TEXT_TYPES
from airflow_cortex.preflight.settings import DEFAULT_CHARS_PER_TOKEN
from airflow_cortex.sql.base_models import DEFAULT_EPOCHS, KNOWN_BASE_MODELS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_cortex.preflight.profile import DataProfile
    from airflow_cortex.preflight.settings import PreflightChecks
    from airflow_cortex.sql.base_models import BaseModelSpec

#: Said with a row-limit problem when the limit of Snowflake's default epochs was applied.
DEFAULT_EPOCHS_NOTE = (
    f" (max_epochs is not set, so Snowflake trains its default of {DEFAULT_EPOCHS} epochs, "
    "and this is the limit applied)"
)


@dataclass(frozen=True)
class Estimate:
    """What the job will cost, as far as can be known before it runs; pushed to XCom ``estimate``."""

    base_model: str
    training_rows: int
    validation_rows: int | None
    input_tokens: int
    epochs: int | None
    """``None`` when Snowflake chooses the number of epochs."""
    trained_tokens: int | None
    """Input tokens x epochs (what Snowflake bills); ``None`` when the epochs are not known."""
    chars_per_token: float
    truncated_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        epochs = (
            f"x {self.epochs} epoch(s) = {self.trained_tokens:,} trained tokens"
            if self.epochs
            else ("x the epochs Snowflake chooses")
        )
        validation = "" if self.validation_rows is None else f", {self.validation_rows:,} validation rows"
        return (
            f"Estimated cost: {self.input_tokens:,} input tokens {epochs} "
            f"({self.training_rows:,} training rows{validation}, {self.base_model}, "
            f"~{self.chars_per_token:g} characters per token)"
        )


def _quote(sample: str | None) -> str:
    if sample is None:
        return ""
    return f" {sample!r}{'...' if len(sample) >= SAMPLE_CHARS else ''}"


def _fraction(count: int, total: int) -> str:
    return f"{count:,} of {total:,} rows ({count / total:.1%})" if total else f"{count:,} rows"


def data_problems(
    profile: DataProfile, spec: BaseModelSpec | None, epochs: int | None, checks: PreflightChecks
) -> list[str]:
    """Everything wrong with one data query, each as a sentence that names rows and the fix."""
    problems: list[str] = []
    for column, type_name in (("prompt", profile.prompt_type), ("completion", profile.completion_type)):
        if type_name not in TEXT_TYPES:
            problems.append(
                f"column {column.upper()} is {type_name}, not text; cast it in the query "
                f"(e.g. {column}::VARCHAR AS {column})"
            )
    training = profile.parameter == "training_data_query"
    allowed_invalid = math.floor(checks.max_invalid_fraction * profile.rows)
    if profile.invalid_rows > allowed_invalid:
        details = []
        if profile.bad_prompts:
            details.append(
                f"{profile.bad_prompts:,} with a NULL or blank prompt (e.g. the row whose completion is"
                f"{_quote(profile.bad_prompt_sample)})"
            )
        if profile.bad_completions:
            details.append(
                f"{profile.bad_completions:,} with a NULL or blank completion (e.g. the row whose prompt is"
                f"{_quote(profile.bad_completion_sample)})"
            )
        problems.append(
            f"{_fraction(profile.invalid_rows, profile.rows)} are unusable: {'; '.join(details)}; "
            f"at most {checks.max_invalid_fraction:.1%} are allowed (preflight_checks.max_invalid_fraction). "
            "Filter them out (WHERE TRIM(prompt) <> '' AND TRIM(completion) <> '') or fix the source"
        )
    needed = checks.min_rows if training else 1
    if profile.usable_rows < needed:
        problems.append(
            f"has {profile.usable_rows:,} usable rows, fewer than the {needed:,} required"
            + (" (preflight_checks.min_rows)" if training else "")
            + "; is the data for this interval there yet?"
        )
    if spec is not None:
        allowed_truncated = math.floor(checks.max_truncated_fraction * profile.usable_rows)
        if profile.truncated_rows > allowed_truncated:
            problems.append(
                f"{_fraction(profile.truncated_rows, profile.usable_rows)} exceed {spec.name}'s window of "
                f"{spec.prompt_tokens:,} prompt / {spec.completion_tokens:,} completion tokens by the "
                f"estimate (longest: {profile.max_prompt_tokens or 0:,} / "
                f"{profile.max_completion_tokens or 0:,}; "
                f"e.g. the row whose prompt starts{_quote(profile.truncated_sample)}); Snowflake would "
                "truncate them. Shorten them, choose a base model with a larger window, or raise "
                "preflight_checks.max_truncated_fraction"
            )
        if training:
            limit_epochs = epochs or DEFAULT_EPOCHS
            limit = spec.max_rows(limit_epochs)
            if profile.usable_rows > limit:
                chosen = "" if epochs else DEFAULT_EPOCHS_NOTE
                lower = f" or set a lower max_epochs (1 allows {spec.max_rows_one_epoch:,})"
                problems.append(
                    f"has {profile.usable_rows:,} rows, over {spec.name}'s limit of {limit:,} rows for "
                    f"{limit_epochs} epoch(s) ({spec.max_rows_one_epoch:,} / {limit_epochs}){chosen}; sample "
                    "the data" + (lower if limit_epochs > 1 else "")
                )
    return [f"{profile.parameter}: {problem}" for problem in problems]


def evaluate(
    profiles: Sequence[DataProfile],
    base_model: str,
    epochs: int | None,
    checks: PreflightChecks | None,
    unprofiled: Sequence[str] = (),
) -> Estimate:
    """Judge the profiles (if ``checks``) and return the estimate; raise if any check fails.

    ``unprofiled`` names data given as a Dataset or stage files, which pre-flight cannot read.
    """
    spec = KNOWN_BASE_MODELS.get(base_model)
    if checks is not None:
        problems = [p for profile in profiles for p in data_problems(profile, spec, epochs, checks)]
        if problems:
            raise CortexDataCheckError(problems)
    training = next(p for p in profiles if p.parameter == "training_data_query")
    validation = next((p for p in profiles if p.parameter == "validation_data_query"), None)
    notes = []
    if spec is None:
        notes.append(f"{base_model} is not a known base model: tokens are not capped at its window")
    notes += [f"{parameter} is not a query, so it was not profiled" for parameter in unprofiled]
    if validation is None and "validation_data_query" not in unprofiled:
        notes.append(
            "no validation query: Snowflake holds out part of the training rows, so this is an upper bound"
        )
    return Estimate(
        base_model=base_model,
        training_rows=training.usable_rows,
        validation_rows=None if validation is None else validation.usable_rows,
        input_tokens=training.input_tokens,
        epochs=epochs,
        trained_tokens=None if epochs is None else training.input_tokens * epochs,
        chars_per_token=checks.chars_per_token if checks else DEFAULT_CHARS_PER_TOKEN,
        truncated_rows=training.truncated_rows,
        notes=notes,
    )


def check_budget(estimate: Estimate, max_trained_tokens: int | None) -> None:
    """Raise when the estimated trained tokens exceed the budget, saying by how much."""
    if max_trained_tokens is None or estimate.trained_tokens is None:
        return
    over = estimate.trained_tokens - max_trained_tokens
    if over > 0:
        raise CortexBudgetExceededError(
            f"Estimated {estimate.trained_tokens:,} trained tokens ({estimate.input_tokens:,} input tokens x "
            f"{estimate.epochs} epoch(s)) exceed max_trained_tokens={max_trained_tokens:,} by {over:,} "
            f"({over / max_trained_tokens:.1%}); no fine-tuning job was created. Lower max_epochs, sample "
            "the training data, or raise the budget.",
            estimate=estimate.trained_tokens,
            budget=max_trained_tokens,
        )
