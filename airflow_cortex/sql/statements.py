"""The text of the four FINETUNE statements. Pure: no I/O, no Airflow.

Values are always sent as string literals built by
:func:`airflow_cortex.sql.literals.sql_string_literal`, never spliced, and CREATE is built only
from a :class:`~airflow_cortex.sql.request.FineTuneRequest`, which exists only once every
argument passed validation.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from airflow_cortex.sql.literals import sql_string_literal
from airflow_cortex.sql.validation import validate_job_id

if TYPE_CHECKING:
    from airflow_cortex.sql.request import FineTuneRequest

FINETUNE_FUNCTION = "SNOWFLAKE.CORTEX.FINETUNE"


def create_statement(request: FineTuneRequest) -> str:
    """``FINETUNE('CREATE', ...)``; options go positionally after validation (NULL if none)."""
    args = [
        sql_string_literal("CREATE"),
        sql_string_literal(request.model_name.raw),
        sql_string_literal(request.base_model),
        sql_string_literal(request.training_data_query),
    ]
    if request.validation_data_query is not None or request.options:
        args.append(
            "NULL"
            if request.validation_data_query is None
            else sql_string_literal(request.validation_data_query)
        )
    if request.options:
        args.append(sql_string_literal(json.dumps(dict(request.options), sort_keys=True)))
    return _call(args)


def describe_statement(job_id: object) -> str:
    return _call([sql_string_literal("DESCRIBE"), sql_string_literal(validate_job_id(job_id))])


def cancel_statement(job_id: object) -> str:
    return _call([sql_string_literal("CANCEL"), sql_string_literal(validate_job_id(job_id))])


def show_statement() -> str:
    return _call([sql_string_literal("SHOW")])


def _call(args: list[str]) -> str:
    if len(args) <= 2:
        return f"SELECT {FINETUNE_FUNCTION}({', '.join(args)})"
    return f"SELECT {FINETUNE_FUNCTION}(\n  " + ",\n  ".join(args) + "\n)"
