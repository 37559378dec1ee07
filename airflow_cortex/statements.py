"""Building the four FINETUNE statements. Pure: no I/O, no Airflow.

Every check here runs before a statement exists, so invalid input never reaches Snowflake and a
user paying per trained token never pays for a job doomed by a typo. Values are always sent as
string literals built by :func:`airflow_cortex.literals.sql_string_literal`, never spliced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_cortex.base_models import DOCUMENT_MODELS, validate_base_model
from airflow_cortex.data_sources import (
    DATASET,
    STAGE,
    DataSource,
    classify,
    parse_dataset_uri,
    parse_stage_path,
)
from airflow_cortex.exceptions import CortexValidationError
from airflow_cortex.literals import sql_string_literal
from airflow_cortex.names import ModelName, parse_model_name
from airflow_cortex.sqltext import scan_query

FINETUNE_FUNCTION = "SNOWFLAKE.CORTEX.FINETUNE"
MIN_EPOCHS = 1
MAX_EPOCHS = 10
KNOWN_OPTIONS = frozenset({"max_epochs"})


@dataclass(frozen=True)
class FineTuneRequest:
    """A validated CREATE request; only :func:`build_finetune_request` makes one."""

    model_name: ModelName
    base_model: str
    training_data_query: str
    validation_data_query: str | None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def data_sources(self) -> list[tuple[str, DataSource]]:
        """``(parameter, source)`` for the training data and, if given, the validation data."""
        sources = [("training_data_query", data_source(self.training_data_query, "training_data_query"))]
        if self.validation_data_query is not None:
            sources.append(
                ("validation_data_query", data_source(self.validation_data_query, "validation_data_query"))
            )
        return sources

    @property
    def data_queries(self) -> list[tuple[str, str]]:
        """``(parameter, query)`` for the data given as queries: the ones pre-flight can profile."""
        return [(parameter, source.text) for parameter, source in self.data_sources if source.is_query]


def build_finetune_request(
    *,
    model_name: object,
    base_model: object,
    training_data_query: object,
    validation_data_query: object = None,
    options: object = None,
    max_epochs: object = None,
    allow_unknown_base_model: bool = False,
) -> FineTuneRequest:
    """Validate every CREATE argument; raise ``CortexValidationError`` at the first bad one."""
    base = validate_base_model(base_model, allow_unknown=allow_unknown_base_model)
    request = FineTuneRequest(
        model_name=parse_model_name(model_name, "model_name", at_prefix=base in DOCUMENT_MODELS),
        base_model=base,
        training_data_query=validate_data(training_data_query, "training_data_query"),
        validation_data_query=(
            None
            if validation_data_query is None
            else validate_data(
                validation_data_query,
                "validation_data_query",
                hint="pass None to let Snowflake split the training data instead",
            )
        ),
        options=normalize_options(options, max_epochs),
    )
    check_model_inputs(request.base_model, request.data_sources, request.options.get("max_epochs"))
    return request


def check_model_inputs(base_model: str, sources: list[tuple[str, DataSource]], epochs: object) -> None:
    """Rules a base model sets on the other arguments: a document model (``arctic-extract``)
    trains only on Dataset versions and takes its own range of epochs."""
    spec = DOCUMENT_MODELS.get(base_model)
    if spec is None:
        return
    for parameter, source in sources:
        if source.kind != DATASET:
            raise CortexValidationError(
                parameter,
                f"{base_model} trains on a Snowflake ML Dataset version, "
                f"snow://dataset/<name>/versions/<version>, not on a {source.kind} ({spec.source})",
                source.text,
            )
    if isinstance(epochs, int) and not spec.min_epochs <= epochs <= spec.max_epochs:
        raise CortexValidationError(
            "max_epochs",
            f"{base_model} takes {spec.min_epochs} to {spec.max_epochs} epochs ({spec.source})",
            epochs,
        )


def data_source(value: str, parameter: str) -> DataSource:
    """The parsed form of a data argument that :func:`validate_data` accepted."""
    kind = classify(value)
    if kind == DATASET:
        return parse_dataset_uri(value, parameter)
    if kind == STAGE:
        return parse_stage_path(value, parameter)
    return DataSource("query", value)


def validate_data(value: object, parameter: str, hint: str = "") -> str:
    """Check training or validation data in any form FINETUNE takes (see :mod:`.data_sources`):
    a query, a ``snow://dataset/...`` URI, or an ``@stage`` path to JSONL files."""
    if isinstance(value, str) and value.strip() and classify(value) != "query":
        return data_source(value, parameter).text
    return validate_query(value, parameter, hint)


def validate_query(value: object, parameter: str, hint: str = "") -> str:
    """Check that ``value`` can stand inside ``SELECT "PROMPT", "COMPLETION" FROM (<value>)``."""
    suffix = f"; {hint}" if hint else ""
    if not isinstance(value, str):
        raise CortexValidationError(
            parameter,
            "must be a SQL query, a snow://dataset/... URI or an @stage path, "
            f"not {type(value).__name__}{suffix}",
        )
    if not value.strip():
        raise CortexValidationError(parameter, f"must not be empty or whitespace only{suffix}", value)
    shape = scan_query(value)
    if shape.unterminated:
        raise CortexValidationError(parameter, f"has an unterminated {shape.unterminated}", value)
    if not shape.has_code:
        raise CortexValidationError(parameter, "holds only comments, no query", value)
    if shape.code_after_separator:
        raise CortexValidationError(
            parameter,
            "must be a single query, but ';' separates more than one statement "
            "(build the data in an upstream task and select from it here)",
            value,
        )
    if shape.stray_close is not None:
        raise CortexValidationError(
            parameter,
            f"closes a parenthesis it never opened (offset {shape.stray_close}): Snowflake wraps the "
            'query as SELECT "PROMPT", "COMPLETION" FROM (<query>), and that ")" would close the wrapper',
            value,
        )
    if shape.open_parens:
        raise CortexValidationError(
            parameter,
            f"leaves {shape.open_parens} parenthesis(es) open, so it is not a complete query",
            value,
        )
    if shape.trailing_separator:
        raise CortexValidationError(
            parameter,
            "must not end with ';': Snowflake wraps it as "
            'SELECT "PROMPT", "COMPLETION" FROM (<query>), where a ";" is a syntax error',
            value,
        )
    if shape.ends_in_line_comment:
        raise CortexValidationError(
            parameter,
            "must not end inside a '--' or '//' comment: Snowflake wraps the query in parentheses "
            "and the comment would swallow the closing one (end the query with a newline)",
            value,
        )
    return value


def normalize_options(options: object, max_epochs: object = None) -> dict[str, Any]:
    """Merge ``options`` (a mapping or a JSON object string) with ``max_epochs`` and check them.

    Templated values arrive as strings (``{"max_epochs": "{{ params.epochs }}"}`` renders to
    ``"3"``), so digit strings are accepted where an integer is expected.
    """
    merged: dict[str, Any]
    if options is None or options == "":
        merged = {}
    elif isinstance(options, str):
        try:
            loaded = json.loads(options)
        except json.JSONDecodeError as exc:
            raise CortexValidationError("options", f"is not valid JSON ({exc.msg})", options) from None
        if not isinstance(loaded, dict):
            raise CortexValidationError("options", "must be a JSON object", options)
        merged = dict(loaded)
    elif isinstance(options, Mapping):
        merged = dict(options)
    else:
        raise CortexValidationError(
            "options", f"must be a mapping or a JSON object string, not {type(options).__name__}"
        )

    unknown = sorted(str(k) for k in merged if k not in KNOWN_OPTIONS)
    if unknown:
        raise CortexValidationError(
            "options",
            f"has unknown key(s) {', '.join(unknown)}; FINETUNE knows {', '.join(sorted(KNOWN_OPTIONS))}",
        )

    if max_epochs is not None and max_epochs != "":
        epochs = _epochs(max_epochs, "max_epochs")
        if "max_epochs" in merged and _epochs(merged["max_epochs"], "options.max_epochs") != epochs:
            raise CortexValidationError(
                "max_epochs", f"is {epochs} but options.max_epochs is {merged['max_epochs']!r}; give it once"
            )
        merged["max_epochs"] = epochs
    elif "max_epochs" in merged:
        merged["max_epochs"] = _epochs(merged["max_epochs"], "options.max_epochs")
    return merged


def _epochs(value: object, parameter: str) -> int:
    if isinstance(value, bool):
        raise CortexValidationError(parameter, f"must be an integer from {MIN_EPOCHS} to {MAX_EPOCHS}", value)
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value.strip())
    if not isinstance(value, int):
        raise CortexValidationError(parameter, f"must be an integer from {MIN_EPOCHS} to {MAX_EPOCHS}", value)
    if not MIN_EPOCHS <= value <= MAX_EPOCHS:
        raise CortexValidationError(parameter, f"must be from {MIN_EPOCHS} to {MAX_EPOCHS}", value)
    return value


def _job_id(job_id: object) -> str:
    # Job ids come in more than one shape (ft_<uuid>, CortexFineTuningWorkflow_<uuid>), so only
    # emptiness is checked; the literal encoding makes any text safe to send.
    if not isinstance(job_id, str) or not job_id.strip():
        raise CortexValidationError("job_id", "must be a non-empty string", job_id)
    return job_id


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
    return _call([sql_string_literal("DESCRIBE"), sql_string_literal(_job_id(job_id))])


def cancel_statement(job_id: object) -> str:
    return _call([sql_string_literal("CANCEL"), sql_string_literal(_job_id(job_id))])


def show_statement() -> str:
    return _call([sql_string_literal("SHOW")])


def _call(args: list[str]) -> str:
    if len(args) <= 2:
        return f"SELECT {FINETUNE_FUNCTION}({', '.join(args)})"
    return f"SELECT {FINETUNE_FUNCTION}(\n  " + ",\n  ".join(args) + "\n)"
