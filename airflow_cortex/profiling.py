"""Pre-flight data checks and the cost estimate: the profiling statement and the verdict. Pure.

The statement is built here and its one result row is judged here; the hook runs it. A
fine-tuning job reads its training query only once it starts, so without these checks a
NULL-ridden or empty interval is found out by a failed (or, worse, a silently degraded) paid
job. One query profiles the training and the validation data together, and it reads each query
exactly as FINETUNE will (``SELECT "PROMPT", "COMPLETION" FROM (<query>)``), so what passes
here is what the job sees.

The token estimate is ``ceil(characters / chars_per_token)`` for the prompt and for the
completion of every usable row, each capped at the base model's prompt/completion window
(Snowflake truncates longer pairs rather than rejecting them). Four characters per token is
the usual figure for English with Llama- and Mistral-family tokenizers; code and other
languages need fewer characters per token, which ``chars_per_token`` lets a DAG say.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_cortex.base_models import DEFAULT_EPOCHS, KNOWN_BASE_MODELS
from airflow_cortex.exceptions import CortexBudgetExceededError, CortexDataCheckError
from airflow_cortex.preflight import DEFAULT_CHARS_PER_TOKEN

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_cortex.base_models import BaseModelSpec
    from airflow_cortex.preflight import PreflightChecks
    from airflow_cortex.statements import FineTuneRequest

#: Said with a row-limit problem when the limit of Snowflake's default epochs was applied.
DEFAULT_EPOCHS_NOTE = (
    f" (max_epochs is not set, so Snowflake trains its default of {DEFAULT_EPOCHS} epochs, "
    "and this is the limit applied)"
)
#: Characters of an offending row shown in an error: enough to find the row, not to leak it all.
SAMPLE_CHARS = 60
#: Where a part's columns come from in the profiling row: ``T_ROWS``, ``V_ROWS``, ...
PARTS = {"training_data_query": "T", "validation_data_query": "V"}
#: Snowflake type names (``snowflake.connector.constants.FIELD_ID_TO_NAME``) FINETUNE reads as text.
TEXT_TYPES = frozenset({"TEXT"})


# --- the profiling statement ------------------------------------------------------------------


def _part_sql(prefix: str, query: str, spec: BaseModelSpec | None, chars_per_token: float) -> str:
    p, c = 'CAST("PROMPT" AS VARCHAR)', 'CAST("COMPLETION" AS VARCHAR)'
    divisor = f"{float(chars_per_token):.6g}"
    prompt_cap = spec.prompt_tokens if spec else None
    completion_cap = spec.completion_tokens if spec else None
    capped_p = f"LEAST(PT, {prompt_cap})" if prompt_cap else "PT"
    capped_c = f"LEAST(CT, {completion_cap})" if completion_cap else "CT"
    truncated = f"(PT > {prompt_cap} OR CT > {completion_cap})" if spec else "FALSE"
    # The innermost SELECT is exactly how FINETUNE reads the query, so a query that passes here
    # resolves the same columns in the job. ANY_VALUE keeps each column's type for the result's
    # metadata, which is how the column types are checked without a second query.
    return f"""(
  SELECT
    COUNT(*) AS {prefix}_ROWS,
    COUNT_IF(BAD_P OR BAD_C) AS {prefix}_INVALID,
    COUNT_IF(BAD_P) AS {prefix}_BAD_PROMPTS,
    COUNT_IF(BAD_C) AS {prefix}_BAD_COMPLETIONS,
    MIN(CASE WHEN BAD_P THEN LEFT(COALESCE(C, 'NULL'), {SAMPLE_CHARS}) END) AS {prefix}_BAD_PROMPT_SAMPLE,
    MIN(CASE WHEN BAD_C THEN LEFT(COALESCE(P, 'NULL'), {SAMPLE_CHARS}) END) AS {prefix}_BAD_COMPLETION_SAMPLE,
    COUNT_IF(NOT (BAD_P OR BAD_C) AND {truncated}) AS {prefix}_TRUNCATED,
    MIN(CASE WHEN NOT (BAD_P OR BAD_C) AND {truncated} THEN LEFT(P, {SAMPLE_CHARS}) END)
      AS {prefix}_TRUNCATED_SAMPLE,
    MAX(CASE WHEN NOT (BAD_P OR BAD_C) THEN PT END) AS {prefix}_MAX_PROMPT_TOKENS,
    MAX(CASE WHEN NOT (BAD_P OR BAD_C) THEN CT END) AS {prefix}_MAX_COMPLETION_TOKENS,
    COALESCE(SUM(CASE WHEN NOT (BAD_P OR BAD_C) THEN {capped_p} + {capped_c} END), 0) AS {prefix}_TOKENS,
    ANY_VALUE(PROMPT_COLUMN) AS {prefix}_PROMPT_TYPE,
    ANY_VALUE(COMPLETION_COLUMN) AS {prefix}_COMPLETION_TYPE
  FROM (
    SELECT
      "PROMPT" AS PROMPT_COLUMN,
      "COMPLETION" AS COMPLETION_COLUMN,
      {p} AS P,
      {c} AS C,
      ({p} IS NULL OR TRIM({p}) = '') AS BAD_P,
      ({c} IS NULL OR TRIM({c}) = '') AS BAD_C,
      CEIL(LENGTH({p}) / {divisor}) AS PT,
      CEIL(LENGTH({c}) / {divisor}) AS CT
    FROM (SELECT "PROMPT", "COMPLETION" FROM ({query}))
  )
) AS {prefix}"""


def profile_statement(request: FineTuneRequest, chars_per_token: float = DEFAULT_CHARS_PER_TOKEN) -> str:
    """One query returning one row that profiles the training and validation data together."""
    spec = KNOWN_BASE_MODELS.get(request.base_model)
    parts = [
        _part_sql(PARTS[parameter], query, spec, chars_per_token) for parameter, query in request.data_queries
    ]
    return "SELECT *\nFROM " + "\nCROSS JOIN ".join(parts)


def probe_statement(query: str) -> str:
    """Column names and types of ``query`` without reading its rows: for explaining a failure."""
    return f"SELECT * FROM ({query}) LIMIT 0"


# --- judging the result -----------------------------------------------------------------------


@dataclass(frozen=True)
class DataProfile:
    """One data query's figures, as the profiling statement computed them."""

    parameter: str
    rows: int
    invalid_rows: int
    bad_prompts: int
    bad_completions: int
    bad_prompt_sample: str | None
    bad_completion_sample: str | None
    truncated_rows: int
    truncated_sample: str | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    input_tokens: int
    prompt_type: str
    completion_type: str

    @property
    def usable_rows(self) -> int:
        return self.rows - self.invalid_rows

    @classmethod
    def from_row(cls, parameter: str, row: Mapping[str, Any], types: Mapping[str, str]) -> DataProfile:
        """``row`` maps the profiling statement's column names to values, ``types`` to type names."""
        prefix = PARTS[parameter]

        def number(name: str) -> int:
            value = row.get(f"{prefix}_{name}")
            return 0 if value is None else int(value)

        def optional(name: str) -> int | None:
            value = row.get(f"{prefix}_{name}")
            return None if value is None else int(value)

        def text(name: str) -> str | None:
            value = row.get(f"{prefix}_{name}")
            return None if value is None else str(value)

        return cls(
            parameter=parameter,
            rows=number("ROWS"),
            invalid_rows=number("INVALID"),
            bad_prompts=number("BAD_PROMPTS"),
            bad_completions=number("BAD_COMPLETIONS"),
            bad_prompt_sample=text("BAD_PROMPT_SAMPLE"),
            bad_completion_sample=text("BAD_COMPLETION_SAMPLE"),
            truncated_rows=number("TRUNCATED"),
            truncated_sample=text("TRUNCATED_SAMPLE"),
            max_prompt_tokens=optional("MAX_PROMPT_TOKENS"),
            max_completion_tokens=optional("MAX_COMPLETION_TOKENS"),
            input_tokens=number("TOKENS"),
            prompt_type=types.get(f"{prefix}_PROMPT_TYPE", "UNKNOWN"),
            completion_type=types.get(f"{prefix}_COMPLETION_TYPE", "UNKNOWN"),
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
