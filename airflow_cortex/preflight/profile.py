"""The pre-flight profile: one statement that measures the training and validation data, the
figures it returns, and what a query's columns say when that statement fails. Pure.

A fine-tuning job reads its training query only once it starts, so without this profile a
NULL-ridden or empty interval is found out by a failed (or, worse, a silently degraded) paid
job. One query profiles the training and the validation data together, and it reads each query
exactly as FINETUNE will (``SELECT "PROMPT", "COMPLETION" FROM (<query>)``), so what passes
here is what the job sees. The hook runs it; :mod:`.verdict` judges its row.

The token estimate is ``ceil(characters / chars_per_token)`` for the prompt and for the
completion of every usable row, each capped at the base model's prompt/completion window
(Snowflake truncates longer pairs rather than rejecting them). Four characters per token is
the usual figure for English with Llama- and Mistral-family tokenizers; code and other
languages need fewer characters per token, which ``chars_per_token`` lets a DAG say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_cortex.preflight.settings import DEFAULT_CHARS_PER_TOKEN
from airflow_cortex.sql.base_models import KNOWN_BASE_MODELS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_cortex.sql.base_models import BaseModelSpec
    from airflow_cortex.sql.request import FineTuneRequest

#: Characters of an offending row shown in an error: enough to find the row, not to leak it all.
SAMPLE_CHARS = 60
#: Where a part's columns come from in the profiling row: ``T_ROWS``, ``V_ROWS``, ...
PARTS = {"training_data_query": "T", "validation_data_query": "V"}
#: Snowflake type names (``snowflake.connector.constants.FIELD_ID_TO_NAME``) FINETUNE reads as text.
TEXT_TYPES = frozenset({"TEXT"})


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


def column_problems(parameter: str, columns: Sequence[tuple[str, str]]) -> list[str]:
    """What a data query's columns (name, Snowflake type name), as a ``LIMIT 0`` probe read them,
    say is wrong for FINETUNE: the explanation when the profile itself could not run."""
    problems = []
    names = {name.upper(): (name, type_name) for name, type_name in columns}
    # Columns the query returns that FINETUNE ignores: the likely sources of an alias.
    spare = [name for name, _ in columns if name.upper() not in ("PROMPT", "COMPLETION")]
    for column in ("PROMPT", "COMPLETION"):
        if column not in names:
            listed = ", ".join(name for name, _ in columns) or "none"
            source = spare.pop(0) if spare else "<a text column>"
            problems.append(
                f"{parameter}: returns no {column} column (it returns {listed}); alias one, "
                f"e.g. SELECT {source} AS {column.lower()}"
            )
        elif names[column][0] != column:
            problems.append(
                f"{parameter}: column {names[column][0]!r} is quoted in another case; FINETUNE reads "
                f'"{column}", so alias it without quotes'
            )
        elif names[column][1] not in TEXT_TYPES:
            problems.append(
                f"{parameter}: column {column} is {names[column][1]}, not text; cast it in the "
                f"query (e.g. {column.lower()}::VARCHAR AS {column.lower()})"
            )
    return problems
