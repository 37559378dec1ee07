"""Which tables a fine-tuning job reads, and what it writes: OpenLineage naming. Pure.

The tables come from parsing the training and validation queries in Snowflake's dialect with
sqlglot's scope analysis, so a CTE is never mistaken for a table while a table a CTE reads
(even one a CTE shadows, as in ``WITH t AS (SELECT * FROM t)``) is kept; joins, subqueries,
``EXISTS`` and set operations all count. Stage reads (``@stage``) and table functions are not
tables and are left out. Names follow OpenLineage's Snowflake convention: ``DB.SCHEMA.TABLE``,
upper case unless quoted, defaults filled from the session's database and schema.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.sql.names import parse_model_name

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


def _normalized(identifier: Any) -> str | None:
    """An identifier's name as Snowflake resolves it: upper case unless quoted."""
    from sqlglot import exp

    if not isinstance(identifier, exp.Identifier):
        return None
    return str(identifier.this) if identifier.quoted else str(identifier.this).upper()


def _default(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) > 1 and value.startswith('"') and value.endswith('"'):
        return value[1:-1].replace('""', '"')
    return value.upper()


def tables_read(
    sql: str, default_database: str | None = None, default_schema: str | None = None
) -> list[str]:
    """Fully qualified names of the tables (and views) ``sql`` reads, each once, sorted.

    Returns ``[]`` when the text does not parse (lineage must never fail a task); the reason is
    logged.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.scope import traverse_scope

    try:
        # Snowflake takes words such as DESCRIBE or SHOW as bare table names; sqlglot reads them as
        # commands (``FROM describe d`` parses as a DESCRIBE of ``d``, silently). Quoting such words
        # where a table name stands first makes sqlglot read the tables Snowflake reads.
        tree = sqlglot.parse_one(_quote_keyword_tables(sql), read="snowflake")
        scopes = traverse_scope(tree)
    except (SqlglotError, RecursionError, ValueError) as error:
        log.warning("Could not parse the query for lineage (%s); no input tables reported", error)
        return []
    found: list[str] = []
    for scope in scopes:
        for source in scope.sources.values():
            if not isinstance(source, exp.Table):
                continue
            name = _normalized(source.this)
            if name is None:
                continue  # a stage (@stage/path), IDENTIFIER(...) or other non-table source
            database = _normalized(source.args.get("catalog")) or _default(default_database)
            schema = _normalized(source.args.get("db")) or _default(default_schema)
            qualified = ".".join(part for part in (database, schema, name) if part)
            if qualified not in found:
                found.append(qualified)
    return sorted(found)


def _quote_keyword_tables(sql: str) -> str:
    """``sql`` with each bare keyword that stands where a table name does (after ``FROM``,
    ``JOIN`` or a ``.``) quoted in upper case: the table Snowflake resolves the bare word to."""
    from sqlglot import TokenType
    from sqlglot.dialects.snowflake import Snowflake

    name_follows = {TokenType.FROM, TokenType.JOIN, TokenType.DOT}
    names = {TokenType.VAR, TokenType.IDENTIFIER}
    not_names = {"TABLE", "LATERAL"}  # FROM TABLE(...), FROM LATERAL FLATTEN(...)
    tokens = Snowflake().tokenize(sql)
    pieces: list[str] = []
    cursor = 0
    for i, token in enumerate(tokens[1:], start=1):
        calls = i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN
        word = token.text.replace("_", "").isalnum() and not token.text[0].isdigit()
        if (
            tokens[i - 1].token_type in name_follows
            and token.token_type not in names
            and word
            and not calls
            and token.text.upper() not in not_names
        ):
            pieces += [sql[cursor : token.start], f'"{token.text.upper()}"']
            cursor = token.end + 1
    pieces.append(sql[cursor:])
    return "".join(pieces)


def model_dataset_name(
    model: str, default_database: str | None = None, default_schema: str | None = None
) -> str:
    """The OpenLineage name of a tuned model: ``DB.SCHEMA.NAME`` without quotes."""
    parsed = parse_model_name(model, "model")
    database = parsed.database.text if parsed.database else _default(default_database)
    schema = parsed.schema.text if parsed.schema else _default(default_schema)
    return ".".join(part for part in (database, schema, parsed.name.text) if part)


def source_dataset_names(
    text: str, default_database: str | None = None, default_schema: str | None = None
) -> list[str]:
    """The OpenLineage input names for one training or validation argument, in any form.

    A query yields the tables it reads. A Snowflake ML Dataset version yields
    ``DB.SCHEMA.NAME/versions/V``: a version is an immutable snapshot, so each one is its own
    input, as each file is. Stage files yield ``@DB.SCHEMA.STAGE/path`` (``@~/path`` and
    ``@%TABLE/path`` as written); OpenLineage has no Snowflake stage convention, and the ``@``
    keeps a stage from being mistaken for a table.
    """
    from airflow_cortex.sql.sources import DATASET, STAGE, classify
    from airflow_cortex.sql.validation import data_source

    kind = classify(text)
    if kind not in (DATASET, STAGE):
        return tables_read(text, default_database, default_schema)
    source = data_source(text, "training_data_query")
    if source.name is None:
        return [source.text]
    name = model_dataset_name(source.name.raw, default_database, default_schema)
    if kind == DATASET:
        return [f"{name}/versions/{source.version}"]
    return [f"@{name}/{source.path}" if source.path else f"@{name}"]


def finetune_lineage(
    hook: Any,
    data: Sequence[object],
    model: str | None,
    job_id: str | None,
    create_sql: Callable[[], str],
) -> Any:
    """The operator's ``OperatorLineage``. Inputs: what the training and validation ``data``
    read (tables, a Dataset version, stage files); output: the tuned ``model``; the run's
    external query is the job, and the job's SQL is its CREATE (``create_sql()``, which raises
    :class:`CortexValidationError` for input the task failed on: then there is none)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset, ExternalQueryRunFacet, SQLJobFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    info = hook.get_openlineage_database_info(None)
    namespace = f"{info.scheme}://{info.authority}"
    database, schema = info.database, hook.get_openlineage_default_schema()
    names: list[str] = []
    for text in data:
        if isinstance(text, str):
            with suppress(CortexValidationError):  # a malformed source has no inputs to report
                names += [n for n in source_dataset_names(text, database, schema) if n not in names]
    outputs = []
    if model:
        outputs.append(Dataset(namespace=namespace, name=model_dataset_name(model, database, schema)))
    run_facets: dict[str, Any] = {}
    if job_id:
        run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=job_id, source=namespace)
    job_facets: dict[str, Any] = {}
    with suppress(CortexValidationError):  # a task that failed on this input still reports its inputs
        job_facets["sql"] = SQLJobFacet(query=create_sql())
    return OperatorLineage(
        inputs=[Dataset(namespace=namespace, name=name) for name in names],
        outputs=outputs,
        run_facets=run_facets,
        job_facets=job_facets,
    )
